// A thin RAII layer over SQLite: Db (a connection), Stmt (a prepared statement) and Transaction
// (a guard that rolls back unless committed). Every SQLite error becomes a Status
// (Code::Failed, "<context>: <sqlite3_errmsg> (SQLite <extended code>)"); nothing throws.
//
// Thread-safety: none of these types may be used from two threads at once. A Db and the Stmts
// and Transactions made from it belong together: use them from one thread at a time (the
// Catalog guards its connection with a mutex). Connections are opened in SQLite's multi-thread
// mode (no per-connection mutex), so distinct Db objects may be used in parallel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace vmrepl::sqlite {

class Db;

// A prepared statement. Made by Db::prepare; finalized on destruction. Move-only.
// Parameter indexes start at 1 (as in SQL "?1"); column indexes start at 0.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Status bind_int(int idx, int64_t v);
  Status bind_text(int idx, std::string_view v);  // copied; an empty view binds '' (not NULL)
  Status bind_null(int idx);
  Status bind_opt_int(int idx, const std::optional<int64_t>& v);  // NULL when unset

  // Advances: true when a row is ready to read, false when the statement is done.
  Result<bool> step();
  // Steps to the end, ignoring any rows (INSERT/UPDATE/DELETE).
  Status run();
  // Makes the statement ready to run again and clears its bindings.
  Status reset();

  bool column_is_null(int col) const;
  int64_t column_int(int col) const;
  std::string column_text(int col) const;  // "" for NULL

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Status check(int rc, std::string_view what) const;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

// A connection. Closed on destruction (after its statements are finalized). Move-only.
class Db {
 public:
  // Opens (creating if missing) the database file `path` read-write, with extended result
  // codes. Connection settings (pragmas, busy timeout) are the caller's business.
  static Result<Db> open(const std::string& path);

  Db() = default;
  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs one or more statements that return no rows of interest.
  Status exec(std::string_view sql);
  // Prepares exactly one statement (trailing whitespace and ';' allowed, nothing else).
  Result<Stmt> prepare(std::string_view sql);
  // Runs a statement that yields one integer (e.g. "PRAGMA user_version").
  Result<int64_t> query_int(std::string_view sql);

  Status set_busy_timeout(int ms);
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t changes() const;
  // True inside an explicit transaction.
  bool in_transaction() const;
  sqlite3* handle() const { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// Builds the Failed status for an error `rc` on `db` (which may be null when opening failed).
Status error_status(sqlite3* db, int rc, std::string_view context);

// BEGIN on construction, ROLLBACK on destruction unless commit() or rollback() ran first.
// Move-only; nesting is not supported (SQLite refuses a BEGIN inside a transaction).
class Transaction {
 public:
  enum class Kind {
    Deferred,   // takes locks when first needed: for reads
    Immediate,  // takes the write lock at once, so a writer never fails half-way on BUSY
  };
  static Result<Transaction> begin(Db& db, Kind kind = Kind::Immediate);

  Transaction(Transaction&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status commit();
  Status rollback();
  bool active() const { return db_ != nullptr; }

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;
};

}  // namespace vmrepl::sqlite
