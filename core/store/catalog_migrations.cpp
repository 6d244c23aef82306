// The catalog's schema history. Entry i takes user_version i to i+1 and runs in one transaction
// with the version bump. Append only: an entry that has shipped is never edited; a change is a
// new entry (ALTER TABLE, or create-copy-drop-rename for what ALTER cannot do).
//
// CHECK constraints are kept to facts that can never change (shapes of keys, sizes > 0):
// widening a CHECK in SQLite means rebuilding the table, so ranges that may grow (enabled
// states, job states) are validated in code instead.
#include "core/store/catalog.h"

namespace vmrepl {

namespace {

constexpr std::string_view kMigrations[] = {
    // 1: VMs and their disks, jobs, host-wide settings.
    R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE vms (
  id            TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36 AND id = upper(id)),
  name          TEXT NOT NULL UNIQUE,
  enabled_state INTEGER NOT NULL,
  created_us    INTEGER NOT NULL,
  generation    INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

CREATE TABLE disks (
  vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  idx        INTEGER NOT NULL CHECK (idx >= 0),
  size_bytes INTEGER NOT NULL CHECK (size_bytes > 0),
  file       TEXT NOT NULL,
  PRIMARY KEY (vm_id, idx)
) WITHOUT ROWID;

CREATE TABLE jobs (
  instance_id TEXT PRIMARY KEY NOT NULL,
  job_type    INTEGER NOT NULL,
  job_state   INTEGER NOT NULL,
  finished_us INTEGER,
  properties  TEXT NOT NULL
);
CREATE INDEX jobs_by_finished ON jobs(finished_us) WHERE finished_us IS NOT NULL;
)sql",

    // 2: replica stores (core/store/replica_store.h). replica_images.image_seq is the seq of the
    // newest apply wholly in the replica's disk images; recovery_points are the committed
    // points, roots the comma-separated hex Merkle roots by disk index; has_undo tells whether
    // the point's undo log (undo/<seq>.undo) is kept.
    R"sql(
CREATE TABLE replica_images (
  vm_id     TEXT PRIMARY KEY NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  image_seq INTEGER NOT NULL CHECK (image_seq >= 0)
) WITHOUT ROWID;

CREATE TABLE recovery_points (
  vm_id            TEXT NOT NULL REFERENCES replica_images(vm_id) ON DELETE CASCADE,
  seq              INTEGER NOT NULL CHECK (seq > 0),
  point_type       INTEGER NOT NULL,
  created_us       INTEGER NOT NULL,
  replication_type INTEGER NOT NULL,
  hash_algorithm   INTEGER NOT NULL,
  roots            TEXT NOT NULL,
  has_undo         INTEGER NOT NULL CHECK (has_undo IN (0, 1)),
  PRIMARY KEY (vm_id, seq)
) WITHOUT ROWID;
)sql",

    // 3: replication relationships (core/engine/relationship.h), one per VM of this catalog;
    // the record is the relationship as JSON so new fields need no migration.
    R"sql(
CREATE TABLE relationships (
  vm_id  TEXT PRIMARY KEY NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  record TEXT NOT NULL CHECK (json_valid(record))
) WITHOUT ROWID;
)sql",
};

}  // namespace

std::span<const std::string_view> Catalog::migrations() { return kMigrations; }

}  // namespace vmrepl
