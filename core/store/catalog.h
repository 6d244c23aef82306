// Catalog: the host's durable registry, `catalog.db` (SQLite). It holds the VMs and their
// disks (written by VmStore), finished and running jobs, and host-wide settings (meta); later
// schema versions add relationships, recovery points and authorization entries.
//
// Durability: WAL journal with synchronous=FULL, so a transaction that committed survives a
// crash or power loss — unless it asked for Durability::Ordered: then it is committed without
// an fsync and becomes durable with the next Full transaction or checkpoint (WAL frames are
// synced in order, so a crash loses a suffix of Ordered transactions, never one before a Full
// one that follows it). Foreign keys are enforced; a busy database is retried for
// kBusyTimeoutMs before an operation fails.
//
// Schema evolution: PRAGMA user_version is the schema version. Catalog::migrations() is the
// ordered list of migration scripts (entry i takes version i to i+1); open() applies the
// missing ones, each in its own transaction together with the new user_version, so a crash
// leaves the database at some whole version. Adding a migration = appending one entry in
// catalog_migrations.cpp. A database whose version is newer than the list is refused with
// NotSupported (32770) and left untouched.
//
// Thread-safety: every method may be called from any thread; one internal mutex serializes
// use of the connection. The callbacks given to transact()/read() run with that mutex held and
// must not call back into the same Catalog.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/status.h"
#include "core/store/sqlite.h"

namespace vmrepl {

// One row of the jobs table.
struct JobRow {
  std::string instance_id;
  uint16_t job_type = 0;
  uint16_t job_state = 0;              // CIM_ConcreteJob JobState number
  std::optional<int64_t> finished_us;  // unset while the job has not finished
  std::string properties;              // JSON object text, as the caller gave it
};

class Catalog {
 public:
  static constexpr int kBusyTimeoutMs = 5000;
  // PRAGMA application_id of a vmrepl catalog ("VMRP"); another SQLite file is refused.
  static constexpr int32_t kApplicationId = 0x564D5250;
  static constexpr size_t kMaxJobIdBytes = 256;

  // Opens or creates the catalog at `path` and brings its schema to latest_version().
  static Result<std::unique_ptr<Catalog>> open(const std::string& path);
  // Same with an explicit migration list (tests and tools; production uses migrations()).
  static Result<std::unique_ptr<Catalog>> open(const std::string& path,
                                               std::span<const std::string_view> migrations);

  // The schema history; see catalog_migrations.cpp.
  static std::span<const std::string_view> migrations();
  static int latest_version() { return static_cast<int>(migrations().size()); }

  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;
  ~Catalog();

  const std::string& path() const { return path_; }
  // The schema version of the open database (its user_version).
  int schema_version() const { return version_; }

  enum class Durability {
    Full,     // durable when transact() returns
    Ordered,  // visible at once, durable with the next Full transaction (see above)
  };
  // Runs `fn` inside one IMMEDIATE transaction; commits when `fn` returns OK, otherwise rolls
  // back and returns `fn`'s status.
  Status transact(const std::function<Status(sqlite::Db&)>& fn,
                  Durability durability = Durability::Full);
  // Runs `fn` inside one read transaction: every query in it sees the same snapshot.
  Status read(const std::function<Status(sqlite::Db&)>& fn) const;

  // --- jobs ---
  // Inserts or replaces the job `instance_id`. `properties_json` must be a JSON object;
  // `instance_id` non-empty and at most kMaxJobIdBytes. Else InvalidParameter.
  Status put_job(std::string_view instance_id, uint16_t job_type, uint16_t job_state,
                 std::optional<int64_t> finished_us, std::string_view properties_json,
                 Durability durability = Durability::Full);
  // The job's properties JSON, or nullopt when there is no such job.
  Result<std::optional<std::string>> get_job(std::string_view instance_id) const;
  // Every job, in the order they were first put.
  Result<std::vector<JobRow>> list_jobs() const;
  // Deletes the jobs that finished before `older_than_us` (running jobs stay); returns how many.
  Result<uint64_t> prune_jobs(int64_t older_than_us);

  // --- meta: host-wide key/value settings ---
  Status put_meta(std::string_view key, std::string_view value);
  Result<std::optional<std::string>> get_meta(std::string_view key) const;

 private:
  Catalog(std::string path, sqlite::Db db, int version);

  const std::string path_;
  mutable std::mutex mu_;
  mutable sqlite::Db db_;
  const int version_;
};

}  // namespace vmrepl
