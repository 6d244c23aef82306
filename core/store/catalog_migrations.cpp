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
};

}  // namespace

std::span<const std::string_view> Catalog::migrations() { return kMigrations; }

}  // namespace vmrepl
