#include "core/store/sqlite.h"

#include <sqlite3.h>

#include <climits>

namespace vmrepl::sqlite {

Status error_status(sqlite3* db, int rc, std::string_view context) {
  std::string m(context);
  m += ": ";
  int code = rc;
  if (db != nullptr) {
    m += sqlite3_errmsg(db);
    code = sqlite3_extended_errcode(db);
  } else {
    m += sqlite3_errstr(rc);
  }
  m += " (SQLite " + std::to_string(code) + ")";
  return Status::Failed(std::move(m));
}

// --- Stmt ---

Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) {
  o.db_ = nullptr;
  o.s_ = nullptr;
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    o.db_ = nullptr;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(s_); }

Status Stmt::check(int rc, std::string_view what) const {
  if (rc == SQLITE_OK) return Status::OK();
  std::string ctx(what);
  if (s_ != nullptr) {
    ctx += " [";
    ctx += sqlite3_sql(s_);
    ctx += "]";
  }
  return error_status(db_, rc, ctx);
}

Status Stmt::bind_int(int idx, int64_t v) {
  return check(sqlite3_bind_int64(s_, idx, static_cast<sqlite3_int64>(v)), "bind");
}

Status Stmt::bind_text(int idx, std::string_view v) {
  // A null data pointer would bind SQL NULL; an empty view must bind ''.
  const char* data = v.empty() ? "" : v.data();
  return check(sqlite3_bind_text64(s_, idx, data, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
}

Status Stmt::bind_null(int idx) { return check(sqlite3_bind_null(s_, idx), "bind"); }

Status Stmt::bind_opt_int(int idx, const std::optional<int64_t>& v) {
  return v ? bind_int(idx, *v) : bind_null(idx);
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return check(rc, "step");
}

Status Stmt::run() {
  for (;;) {
    auto r = step();
    if (!r.ok()) return r.status();
    if (!*r) return Status::OK();
  }
}

Status Stmt::reset() {
  // sqlite3_reset repeats the last step's error; that error was already reported by step().
  sqlite3_reset(s_);
  return check(sqlite3_clear_bindings(s_), "clear bindings");
}

bool Stmt::column_is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

int64_t Stmt::column_int(int col) const {
  return static_cast<int64_t>(sqlite3_column_int64(s_, col));
}

std::string Stmt::column_text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  if (p == nullptr) return {};
  int n = sqlite3_column_bytes(s_, col);
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

// --- Db ---

Result<Db> Db::open(const std::string& path) {
  if (path.find('\0') != std::string::npos)
    return Status::InvalidParameter("database path contains a NUL byte");
  sqlite3* raw = nullptr;
  // NOMUTEX: multi-thread mode; the owner serializes use of the connection.
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // closes `raw` on every path below, including failure
  if (rc != SQLITE_OK) return error_status(raw, rc, "open " + path);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Db::Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    sqlite3_close_v2(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

// close_v2 defers the close until any statement still alive is finalized, instead of failing.
Db::~Db() { sqlite3_close_v2(db_); }

Status Db::exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return Status::OK();
  std::string ctx = "exec [" + text.substr(0, 80) + (text.size() > 80 ? "...]" : "]");
  return error_status(db_, rc, ctx);
}

Result<Stmt> Db::prepare(std::string_view sql) {
  if (sql.size() > static_cast<size_t>(INT_MAX))
    return Status::Failed("prepare: statement too long");
  sqlite3_stmt* s = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, &tail);
  Stmt stmt(db_, s);
  if (rc != SQLITE_OK) return error_status(db_, rc, "prepare [" + std::string(sql) + "]");
  if (s == nullptr) return Status::Failed("prepare: no statement in [" + std::string(sql) + "]");
  for (const char* p = tail; p != nullptr && p < sql.data() + sql.size(); ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';')
      return Status::Failed("prepare: more than one statement in [" + std::string(sql) + "]");
  }
  return stmt;
}

Result<int64_t> Db::query_int(std::string_view sql) {
  auto st = prepare(sql);
  if (!st.ok()) return st.status();
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Failed("query returned no row [" + std::string(sql) + "]");
  return st->column_int(0);
}

Status Db::set_busy_timeout(int ms) {
  int rc = sqlite3_busy_timeout(db_, ms);
  return rc == SQLITE_OK ? Status::OK() : error_status(db_, rc, "busy_timeout");
}

int64_t Db::changes() const { return static_cast<int64_t>(sqlite3_changes64(db_)); }

bool Db::in_transaction() const { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }

// --- Transaction ---

Result<Transaction> Transaction::begin(Db& db, Kind kind) {
  VMREPL_RETURN_IF_ERROR(db.exec(kind == Kind::Immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)rollback();
}

Status Transaction::commit() {
  if (db_ == nullptr) return Status::Failed("commit: transaction already finished");
  Status st = db_->exec("COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. BUSY); then the destructor rolls back.
  if (st.ok() || !db_->in_transaction()) db_ = nullptr;
  return st;
}

Status Transaction::rollback() {
  if (db_ == nullptr) return Status::OK();
  Db* db = db_;
  db_ = nullptr;
  // SQLite may already have rolled back by itself (after some I/O or full errors).
  if (!db->in_transaction()) return Status::OK();
  return db->exec("ROLLBACK");
}

}  // namespace vmrepl::sqlite
