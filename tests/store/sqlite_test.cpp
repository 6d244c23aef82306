// The RAII layer over SQLite: values round-trip through bind/column, errors come back as
// Failed with SQLite's words, and a Transaction guard rolls back unless committed.
#include "core/store/sqlite.h"

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "store/temp_dir.h"

namespace vmrepl {
namespace {

using sqlite::Db;
using sqlite::Transaction;

struct Fixture {
  test::TempDir dir;
  Db db;
  Fixture() {
    auto r = Db::open(dir / "t.db");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    db = std::move(r).value();
    BOOST_REQUIRE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, n INTEGER)").ok());
  }
  int64_t count() {
    auto n = db.query_int("SELECT count(*) FROM t");
    BOOST_REQUIRE(n.ok());
    return *n;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sqlite_tests, Fixture)

BOOST_AUTO_TEST_CASE(values_round_trip_through_bind_and_column) {
  const std::string with_nul("a\0b", 3);
  auto ins = db.prepare("INSERT INTO t(k, v, n) VALUES(?1, ?2, ?3)");
  BOOST_REQUIRE(ins.ok());
  BOOST_TEST(ins->bind_text(1, with_nul).ok());
  BOOST_TEST(ins->bind_int(2, INT64_MIN).ok());
  BOOST_TEST(ins->bind_opt_int(3, std::nullopt).ok());
  BOOST_TEST(ins->run().ok());
  BOOST_TEST(db.changes() == 1);
  // The same statement again after reset, with an empty text: it must bind '' and not NULL.
  BOOST_TEST(ins->reset().ok());
  BOOST_TEST(ins->bind_text(1, std::string_view()).ok());
  BOOST_TEST(ins->bind_int(2, INT64_MAX).ok());
  BOOST_TEST(ins->bind_opt_int(3, int64_t{7}).ok());
  BOOST_TEST(ins->run().ok());

  auto sel = db.prepare("SELECT k, v, n, k IS NULL FROM t ORDER BY v");
  BOOST_REQUIRE(sel.ok());
  auto row = sel->step();
  BOOST_REQUIRE(row.ok() && *row);
  BOOST_TEST(sel->column_text(0) == with_nul);
  BOOST_TEST(sel->column_int(1) == INT64_MIN);
  BOOST_TEST(sel->column_is_null(2));
  row = sel->step();
  BOOST_REQUIRE(row.ok() && *row);
  BOOST_TEST(sel->column_text(0) == "");
  BOOST_TEST(sel->column_int(3) == 0);  // '' is not NULL
  BOOST_TEST(sel->column_int(1) == INT64_MAX);
  BOOST_TEST(sel->column_int(2) == 7);
  row = sel->step();
  BOOST_REQUIRE(row.ok());
  BOOST_TEST(!*row);
}

BOOST_AUTO_TEST_CASE(errors_are_failed_with_sqlite_message) {
  auto bad = db.prepare("SELEKT 1");
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().number() == 32768u);
  BOOST_TEST(bad.status().message().find("syntax error") != std::string::npos);

  BOOST_REQUIRE(db.exec("INSERT INTO t(k, v) VALUES('x', 1)").ok());
  auto dup = db.prepare("INSERT INTO t(k, v) VALUES('x', 2)");
  BOOST_REQUIRE(dup.ok());
  Status st = dup->run();
  BOOST_TEST(st.number() == 32768u);
  BOOST_TEST(st.message().find("UNIQUE constraint failed: t.k") != std::string::npos);
  BOOST_TEST(st.message().find("SQLite 1555") !=
             std::string::npos);  // SQLITE_CONSTRAINT_PRIMARYKEY

  Status ex = db.exec("INSERT INTO nowhere VALUES(1)");
  BOOST_TEST(ex.number() == 32768u);
  BOOST_TEST(ex.message().find("no such table: nowhere") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(prepare_takes_exactly_one_statement) {
  auto two = db.prepare("SELECT 1; SELECT 2");
  BOOST_TEST(two.status().number() == 32768u);
  BOOST_TEST(two.status().message().find("more than one statement") != std::string::npos);
  BOOST_TEST(db.prepare("SELECT 1 ;\n ").ok());
  BOOST_TEST(db.prepare("   ").status().number() == 32768u);
}

BOOST_AUTO_TEST_CASE(transaction_rolls_back_unless_committed) {
  {
    auto tx = Transaction::begin(db);
    BOOST_REQUIRE(tx.ok());
    BOOST_REQUIRE(db.exec("INSERT INTO t(k, v) VALUES('dropped', 1)").ok());
    BOOST_TEST(db.in_transaction());
  }  // destroyed without commit
  BOOST_TEST(!db.in_transaction());
  BOOST_TEST(count() == 0);

  {
    auto tx = Transaction::begin(db);
    BOOST_REQUIRE(tx.ok());
    BOOST_REQUIRE(db.exec("INSERT INTO t(k, v) VALUES('rolled', 1)").ok());
    BOOST_TEST(tx->rollback().ok());
    BOOST_TEST(!tx->active());
  }
  BOOST_TEST(count() == 0);

  {
    auto tx = Transaction::begin(db, Transaction::Kind::Deferred);
    BOOST_REQUIRE(tx.ok());
    BOOST_REQUIRE(db.exec("INSERT INTO t(k, v) VALUES('kept', 1)").ok());
    BOOST_TEST(tx->commit().ok());
    BOOST_TEST(tx->commit().number() == 32768u);  // finished already
  }
  BOOST_TEST(count() == 1);
}

BOOST_AUTO_TEST_CASE(nested_begin_is_refused) {
  auto outer = Transaction::begin(db);
  BOOST_REQUIRE(outer.ok());
  auto inner = Transaction::begin(db);
  BOOST_TEST(inner.status().number() == 32768u);
  BOOST_TEST(inner.status().message().find("within a transaction") != std::string::npos);
  BOOST_TEST(outer->commit().ok());
}

BOOST_AUTO_TEST_CASE(opening_something_that_is_not_a_database_fails_cleanly) {
  {
    std::ofstream f(dir / "junk.db");
    f << std::string(4096, 'j');
  }
  auto junk = Db::open(dir / "junk.db");
  BOOST_REQUIRE(junk.ok());  // SQLite reads lazily
  auto v = junk->query_int("PRAGMA user_version");
  BOOST_TEST(v.status().number() == 32768u);
  BOOST_TEST(v.status().message().find("file is not a database") != std::string::npos);

  auto missing_dir = Db::open(dir / "no/such/dir/x.db");
  BOOST_TEST(missing_dir.status().number() == 32768u);
  BOOST_TEST(Db::open(std::string("a\0b", 3)).status().number() == 32773u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
