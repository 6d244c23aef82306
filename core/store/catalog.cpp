#include "core/store/catalog.h"

#include <utility>

namespace vmrepl {

namespace {

using sqlite::Db;
using sqlite::Transaction;

// A database that never ran a migration must be empty: migration 1 would otherwise add our
// tables to somebody else's file. A migrated one must carry our application_id.
Status check_identity(Db& db, const std::string& path, int64_t version) {
  if (version == 0) {
    auto tables = db.query_int("SELECT count(*) FROM sqlite_schema");
    if (!tables.ok()) return tables.status();
    if (*tables != 0)
      return Status::Failed(path + " is not a vmrepl catalog: it has tables but no schema version");
    return Status::OK();
  }
  auto app = db.query_int("PRAGMA application_id");
  if (!app.ok()) return app.status();
  if (*app != Catalog::kApplicationId)
    return Status::Failed(path + " is not a vmrepl catalog (application_id " +
                          std::to_string(*app) + ")");
  return Status::OK();
}

Status too_new(const std::string& path, int64_t version, size_t known) {
  return Status::NotSupported(path + " has catalog schema version " + std::to_string(version) +
                              "; this build knows versions up to " + std::to_string(known) +
                              " (a newer vmrepl wrote it)");
}

// Applies the missing migrations, one transaction each; returns the final version.
Result<int> migrate(Db& db, const std::string& path, std::span<const std::string_view> migrations) {
  for (;;) {
    auto tx = Transaction::begin(db, Transaction::Kind::Immediate);
    if (!tx.ok()) return tx.status();
    // Read inside the write transaction: another process may have migrated meanwhile.
    auto version = db.query_int("PRAGMA user_version");
    if (!version.ok()) return version.status();
    const int64_t v = *version;
    if (v < 0 || static_cast<uint64_t>(v) > migrations.size())
      return too_new(path, v, migrations.size());
    VMREPL_RETURN_IF_ERROR(check_identity(db, path, v));
    if (static_cast<size_t>(v) == migrations.size()) {
      VMREPL_RETURN_IF_ERROR(tx->commit());
      return static_cast<int>(v);
    }
    const std::string to = std::to_string(v + 1);
    VMREPL_RETURN_IF_ERROR(
        db.exec(migrations[static_cast<size_t>(v)]).Annotate("catalog migration to version " + to));
    if (v == 0)
      VMREPL_RETURN_IF_ERROR(
          db.exec("PRAGMA application_id = " + std::to_string(Catalog::kApplicationId)));
    // user_version lives in the database header and is part of this transaction.
    VMREPL_RETURN_IF_ERROR(db.exec("PRAGMA user_version = " + to));
    VMREPL_RETURN_IF_ERROR(tx->commit().Annotate("catalog migration to version " + to));
  }
}

Result<std::string> query_text(Db& db, std::string_view sql) {
  auto st = db.prepare(sql);
  if (!st.ok()) return st.status();
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Failed("query returned no row [" + std::string(sql) + "]");
  return st->column_text(0);
}

}  // namespace

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& path) {
  return open(path, migrations());
}

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& path,
                                               std::span<const std::string_view> list) {
  auto opened = Db::open(path);
  if (!opened.ok()) return opened.status();
  Db db = std::move(opened).value();
  VMREPL_RETURN_IF_ERROR(db.set_busy_timeout(kBusyTimeoutMs));

  // Refuse a newer schema before changing anything in the file (journal mode included).
  auto version = db.query_int("PRAGMA user_version");
  if (!version.ok()) return version.status().Annotate(path);
  if (*version < 0 || static_cast<uint64_t>(*version) > list.size())
    return too_new(path, *version, list.size());

  auto mode = query_text(db, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status().Annotate(path);
  if (*mode != "wal")
    return Status::Failed(path + ": cannot use WAL journal (journal_mode is " + *mode + ")");
  // FULL: the WAL is synced at every commit, so a committed transaction survives power loss.
  VMREPL_RETURN_IF_ERROR(db.exec("PRAGMA synchronous = FULL"));
  VMREPL_RETURN_IF_ERROR(db.exec("PRAGMA foreign_keys = ON"));
  auto fk = db.query_int("PRAGMA foreign_keys");
  if (!fk.ok()) return fk.status();
  if (*fk != 1) return Status::Failed("this SQLite build does not enforce foreign keys");

  auto final_version = migrate(db, path, list);
  if (!final_version.ok()) return final_version.status();
  return std::unique_ptr<Catalog>(new Catalog(path, std::move(db), *final_version));
}

Catalog::Catalog(std::string path, sqlite::Db db, int version)
    : path_(std::move(path)), db_(std::move(db)), version_(version) {}

Catalog::~Catalog() = default;

Status Catalog::transact(const std::function<Status(sqlite::Db&)>& fn, Durability durability) {
  std::lock_guard lock(mu_);
  // In WAL mode NORMAL commits without syncing the WAL; the next FULL commit syncs it whole.
  // The setting belongs to the connection, which the mutex keeps to this transaction.
  const bool ordered = durability == Durability::Ordered;
  if (ordered) VMREPL_RETURN_IF_ERROR(db_.exec("PRAGMA synchronous = NORMAL"));
  auto run = [&]() -> Status {
    auto tx = Transaction::begin(db_, Transaction::Kind::Immediate);
    if (!tx.ok()) return tx.status();
    Status st = fn(db_);
    if (!st.ok()) {
      (void)tx->rollback();  // the caller's status says more than a rollback error would
      return st;
    }
    return tx->commit();
  };
  Status st = run();
  if (ordered) {
    Status back = db_.exec("PRAGMA synchronous = FULL");
    if (st.ok()) st = back;
  }
  return st;
}

Status Catalog::read(const std::function<Status(sqlite::Db&)>& fn) const {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_, Transaction::Kind::Deferred);
  if (!tx.ok()) return tx.status();
  Status st = fn(db_);
  if (!st.ok()) return st;  // the guard ends the read transaction
  return tx->commit();
}

// --- jobs ---

Status Catalog::put_job(std::string_view instance_id, uint16_t job_type, uint16_t job_state,
                        std::optional<int64_t> finished_us, std::string_view properties_json,
                        Durability durability) {
  if (instance_id.empty()) return Status::InvalidParameter("InstanceID: must not be empty");
  if (instance_id.size() > kMaxJobIdBytes)
    return Status::InvalidParameter("InstanceID: " + std::to_string(instance_id.size()) +
                                    " bytes; at most " + std::to_string(kMaxJobIdBytes) +
                                    " allowed");
  return transact([&](Db& db) -> Status {
    // SQLite's JSON parser bounds its nesting depth, so a hostile text costs little. CASE keeps
    // json_type from seeing text json_valid rejected.
    auto check =
        db.prepare("SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END");
    if (!check.ok()) return check.status();
    VMREPL_RETURN_IF_ERROR(check->bind_text(1, properties_json));
    auto row = check->step();
    if (!row.ok()) return row.status();
    if (!*row || check->column_int(0) != 1)
      return Status::InvalidParameter("properties of job " + std::string(instance_id) +
                                      ": not a JSON object");

    auto st = db.prepare(
        "INSERT INTO jobs(instance_id, job_type, job_state, finished_us, properties) VALUES(?1, "
        "?2, ?3, ?4, ?5) "
        "ON CONFLICT(instance_id) DO UPDATE SET job_type = excluded.job_type, job_state = "
        "excluded.job_state, "
        "finished_us = excluded.finished_us, properties = excluded.properties");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, instance_id));
    VMREPL_RETURN_IF_ERROR(st->bind_int(2, job_type));
    VMREPL_RETURN_IF_ERROR(st->bind_int(3, job_state));
    VMREPL_RETURN_IF_ERROR(st->bind_opt_int(4, finished_us));
    VMREPL_RETURN_IF_ERROR(st->bind_text(5, properties_json));
    return st->run();
  }, durability);
}

Result<std::optional<std::string>> Catalog::get_job(std::string_view instance_id) const {
  std::optional<std::string> out;
  Status s = read([&](Db& db) -> Status {
    auto st = db.prepare("SELECT properties FROM jobs WHERE instance_id = ?1");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, instance_id));
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (*row) out = st->column_text(0);
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<JobRow>> Catalog::list_jobs() const {
  std::vector<JobRow> out;
  Status s = read([&](Db& db) -> Status {
    // rowid survives the upsert in put_job, so this is the order the jobs were first put.
    auto st = db.prepare(
        "SELECT instance_id, job_type, job_state, finished_us, properties FROM jobs ORDER BY "
        "rowid");
    if (!st.ok()) return st.status();
    for (;;) {
      auto row = st->step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::OK();
      JobRow j;
      j.instance_id = st->column_text(0);
      j.job_type = static_cast<uint16_t>(st->column_int(1));
      j.job_state = static_cast<uint16_t>(st->column_int(2));
      if (!st->column_is_null(3)) j.finished_us = st->column_int(3);
      j.properties = st->column_text(4);
      out.push_back(std::move(j));
    }
  });
  if (!s.ok()) return s;
  return out;
}

Result<uint64_t> Catalog::prune_jobs(int64_t older_than_us) {
  uint64_t removed = 0;
  Status s = transact([&](Db& db) -> Status {
    auto st = db.prepare("DELETE FROM jobs WHERE finished_us IS NOT NULL AND finished_us < ?1");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_int(1, older_than_us));
    VMREPL_RETURN_IF_ERROR(st->run());
    removed = static_cast<uint64_t>(db.changes());
    return Status::OK();
  });
  if (!s.ok()) return s;
  return removed;
}

// --- meta ---

Status Catalog::put_meta(std::string_view key, std::string_view value) {
  if (key.empty()) return Status::InvalidParameter("meta key: must not be empty");
  return transact([&](Db& db) -> Status {
    auto st = db.prepare(
        "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = "
        "excluded.value");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, key));
    VMREPL_RETURN_IF_ERROR(st->bind_text(2, value));
    return st->run();
  });
}

Result<std::optional<std::string>> Catalog::get_meta(std::string_view key) const {
  std::optional<std::string> out;
  Status s = read([&](Db& db) -> Status {
    auto st = db.prepare("SELECT value FROM meta WHERE key = ?1");
    if (!st.ok()) return st.status();
    VMREPL_RETURN_IF_ERROR(st->bind_text(1, key));
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (*row) out = st->column_text(0);
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace vmrepl
