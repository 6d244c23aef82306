// The catalog: schema migrations (fresh, incremental, refused when newer, atomic when one
// fails), connection settings, constraints, and the jobs and meta tables.
#include "core/store/catalog.h"

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <iterator>
#include <set>

#include "store/temp_dir.h"

namespace vmrepl {
namespace {

using sqlite::Db;

struct Fixture {
  test::TempDir dir;
  std::string path = dir / "catalog.db";

  std::unique_ptr<Catalog> open_ok(
      std::span<const std::string_view> migrations = Catalog::migrations()) {
    auto c = Catalog::open(path, migrations);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }
};

std::set<std::string> tables(const Catalog& c) {
  std::set<std::string> out;
  Status s = c.read([&](Db& db) -> Status {
    auto st = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'");
    if (!st.ok()) return st.status();
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::OK();
      out.insert(st->column_text(0));
    }
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return out;
}

int64_t pragma(Catalog& c, const std::string& sql) {
  int64_t v = -1;
  Status s = c.transact([&](Db& db) -> Status {
    auto r = db.query_int(sql);
    if (!r.ok()) return r.status();
    v = *r;
    return Status::OK();
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return v;
}

std::string file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

constexpr std::string_view kOne[] = {"CREATE TABLE a (x INTEGER);"};
constexpr std::string_view kTwo[] = {"CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(catalog_tests, Fixture)

BOOST_AUTO_TEST_CASE(fresh_catalog_is_migrated_to_latest_with_durable_settings) {
  auto c = open_ok();
  BOOST_TEST(Catalog::latest_version() >= 1);
  BOOST_TEST(c->schema_version() == Catalog::latest_version());
  BOOST_TEST(pragma(*c, "PRAGMA user_version") == Catalog::latest_version());
  BOOST_TEST(pragma(*c, "PRAGMA application_id") == Catalog::kApplicationId);
  BOOST_TEST(pragma(*c, "PRAGMA synchronous") == 2);  // FULL
  BOOST_TEST(pragma(*c, "PRAGMA foreign_keys") == 1);
  auto t = tables(*c);
  for (const char* want : {"vms", "disks", "jobs", "meta"}) BOOST_TEST(t.count(want) == 1, want);
  Status mode = c->read([&](Db& db) -> Status {
    auto st = db.prepare("PRAGMA journal_mode");
    if (!st.ok()) return st.status();
    auto row = st->step();
    BOOST_REQUIRE(row.ok() && *row);
    BOOST_TEST(st->column_text(0) == "wal");
    return Status::OK();
  });
  BOOST_TEST(mode.ok());
}

BOOST_AUTO_TEST_CASE(reopen_at_the_same_version_runs_nothing_and_keeps_data) {
  {
    auto c = open_ok(kOne);
    BOOST_TEST(c->schema_version() == 1);
    BOOST_TEST(c->transact([](Db& db) { return db.exec("INSERT INTO a VALUES (7)"); }).ok());
  }
  // Re-running migration 1 would fail ("table a already exists").
  auto c = open_ok(kOne);
  BOOST_TEST(c->schema_version() == 1);
  BOOST_TEST(pragma(*c, "SELECT x FROM a") == 7);

  // The production list, opened twice, keeps its rows.
  test::TempDir other;
  const std::string p = other / "catalog.db";
  {
    auto prod = Catalog::open(p);
    BOOST_REQUIRE(prod.ok());
    BOOST_TEST((*prod)->put_meta("host", "a").ok());
  }
  auto prod = Catalog::open(p);
  BOOST_REQUIRE(prod.ok());
  BOOST_TEST((*prod)->schema_version() == Catalog::latest_version());
  auto host = (*prod)->get_meta("host");
  BOOST_REQUIRE(host.ok());
  BOOST_TEST(host->value_or("") == "a");
}

BOOST_AUTO_TEST_CASE(an_appended_migration_is_applied_on_reopen) {
  {
    auto c = open_ok(kOne);
    BOOST_TEST(c->transact([](Db& db) { return db.exec("INSERT INTO a VALUES (42)"); }).ok());
  }
  auto c = open_ok(kTwo);
  BOOST_TEST(c->schema_version() == 2);
  auto t = tables(*c);
  BOOST_TEST(t.count("a") == 1);
  BOOST_TEST(t.count("b") == 1);
  BOOST_TEST(pragma(*c, "SELECT x FROM a") == 42);
}

BOOST_AUTO_TEST_CASE(a_newer_database_is_refused_and_left_untouched) {
  { open_ok(kTwo); }
  const std::string before = file_bytes(path);
  auto c = Catalog::open(path, kOne);
  BOOST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().number() == 32770u);
  BOOST_TEST(c.status().message().find("schema version 2") != std::string::npos,
             c.status().message());
  BOOST_TEST(c.status().message().find("up to 1") != std::string::npos);
  BOOST_TEST(file_bytes(path) == before);

  // Same through the production list, with a version far in the future.
  test::TempDir other;
  const std::string p = other / "catalog.db";
  {
    auto db = Db::open(p);
    BOOST_REQUIRE(db.ok());
    BOOST_REQUIRE(db->exec("PRAGMA user_version = 999").ok());
  }
  auto future = Catalog::open(p);
  BOOST_TEST(future.status().number() == 32770u);
  BOOST_TEST(future.status().message().find("999") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_failing_migration_changes_nothing) {
  { open_ok(kOne); }
  constexpr std::string_view broken[] = {kOne[0],
                                         "CREATE TABLE b (y INTEGER); CREATE TABLE broken ("};
  auto c = Catalog::open(path, broken);
  BOOST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().number() == 32768u);
  BOOST_TEST(c.status().message().find("migration to version 2") != std::string::npos,
             c.status().message());
  auto again = open_ok(kOne);
  BOOST_TEST(again->schema_version() == 1);
  BOOST_TEST(tables(*again).count("b") == 0);  // the first statement of migration 2 was rolled back
}

BOOST_AUTO_TEST_CASE(a_foreign_database_is_refused) {
  {
    auto db = Db::open(path);
    BOOST_REQUIRE(db.ok());
    BOOST_REQUIRE(db->exec("CREATE TABLE theirs (z)").ok());
  }
  auto c = Catalog::open(path);
  BOOST_TEST(c.status().number() == 32768u);
  BOOST_TEST(c.status().message().find("not a vmrepl catalog") != std::string::npos);

  test::TempDir other;
  const std::string p = other / "catalog.db";
  {
    auto db = Db::open(p);
    BOOST_REQUIRE(db.ok());
    BOOST_REQUIRE(db->exec("PRAGMA user_version = 1").ok());  // versioned, but not ours
  }
  auto c2 = Catalog::open(p);
  BOOST_TEST(c2.status().number() == 32768u);
  BOOST_TEST(c2.status().message().find("application_id") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(transact_rolls_back_when_the_callback_fails) {
  auto c = open_ok();
  Status s = c->transact([](Db& db) -> Status {
    VMREPL_RETURN_IF_ERROR(db.exec("INSERT INTO meta VALUES ('k', 'v')"));
    return Status::InvalidParameter("changed my mind");
  });
  BOOST_TEST(s.number() == 32773u);
  auto v = c->get_meta("k");
  BOOST_REQUIRE(v.ok());
  BOOST_TEST(!v->has_value());
}

BOOST_AUTO_TEST_CASE(an_ordered_transaction_commits_without_sync_and_leaves_the_connection_full) {
  test::TempDir d;
  const std::string p = d / "catalog.db";
  {
    auto c = Catalog::open(p);
    BOOST_REQUIRE(c.ok());
    int64_t inside = -1;
    Status s = (*c)->transact(
        [&](Db& db) -> Status {
          auto sync = db.query_int("PRAGMA synchronous");
          if (sync.ok()) inside = *sync;
          return db.exec("INSERT INTO meta VALUES ('ordered', '1')");
        },
        Catalog::Durability::Ordered);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    BOOST_TEST(inside == 1);                               // NORMAL: no WAL sync at commit
    BOOST_TEST(pragma(**c, "PRAGMA synchronous") == 2);  // FULL again for everyone else
    auto v = (*c)->get_meta("ordered");
    BOOST_REQUIRE(v.ok());
    BOOST_TEST(v->value_or("") == "1");
    // A failing one rolls back and restores FULL too.
    s = (*c)->transact(
        [](Db& db) -> Status {
          VMREPL_RETURN_IF_ERROR(db.exec("INSERT INTO meta VALUES ('lost', '1')"));
          return Status::InvalidParameter("no");
        },
        Catalog::Durability::Ordered);
    BOOST_TEST(s.number() == 32773u);
    BOOST_TEST(pragma(**c, "PRAGMA synchronous") == 2);
    BOOST_TEST((*c)->put_job("J", 1, 7, 5, "{}", Catalog::Durability::Ordered).ok());
    BOOST_TEST((*c)->put_meta("full", "1").ok());  // syncs the WAL, the ordered rows with it
  }
  auto c = Catalog::open(p);
  BOOST_REQUIRE(c.ok());
  for (const char* k : {"ordered", "full"}) {
    auto v = (*c)->get_meta(k);
    BOOST_REQUIRE(v.ok());
    BOOST_TEST(v->value_or("") == "1", k);
  }
  auto lost = (*c)->get_meta("lost");
  BOOST_REQUIRE(lost.ok());
  BOOST_TEST(!lost->has_value());
  auto job = (*c)->get_job("J");
  BOOST_REQUIRE(job.ok());
  BOOST_TEST(job->has_value());
}

BOOST_AUTO_TEST_CASE(disks_need_their_vm_and_go_with_it) {
  auto c = open_ok();
  const std::string id = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
  Status orphan = c->transact([](Db& db) {
    return db.exec(
        "INSERT INTO disks VALUES ('3F2504E0-4F89-11D3-9A0C-0305E82C3301', 0, 4096, 'disk0.img')");
  });
  BOOST_TEST(orphan.number() == 32768u);
  BOOST_TEST(orphan.message().find("FOREIGN KEY constraint failed") != std::string::npos);

  Status lower = c->transact([](Db& db) {
    return db.exec("INSERT INTO vms VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'x', 3, 0, 1)");
  });
  BOOST_TEST(lower.message().find("CHECK constraint failed") != std::string::npos);

  BOOST_REQUIRE(c->transact([&](Db& db) -> Status {
                   VMREPL_RETURN_IF_ERROR(
                       db.exec("INSERT INTO vms VALUES ('" + id + "', 'vm', 3, 0, 1)"));
                   VMREPL_RETURN_IF_ERROR(
                       db.exec("INSERT INTO disks VALUES ('" + id + "', 0, 4096, 'disk0.img')"));
                   return db.exec("INSERT INTO disks VALUES ('" + id + "', 1, 8192, 'disk1.img')");
                 }).ok());
  BOOST_TEST(pragma(*c, "SELECT count(*) FROM disks") == 2);
  BOOST_REQUIRE(
      c->transact([&](Db& db) { return db.exec("DELETE FROM vms WHERE id = '" + id + "'"); }).ok());
  BOOST_TEST(pragma(*c, "SELECT count(*) FROM disks") == 0);
}

BOOST_AUTO_TEST_CASE(jobs_put_get_list_prune) {
  auto c = open_ok();
  BOOST_TEST(c->put_job("J1", 94, 7, int64_t{1000}, R"({"ElementName":"one"})").ok());
  BOOST_TEST(c->put_job("J2", 94, 4, std::nullopt, R"({"PercentComplete":10})").ok());  // running
  BOOST_TEST(c->put_job("J3", 95, 10, int64_t{3000}, R"({"ErrorCode":32768})").ok());
  // Updating J1 replaces it in place (order of first put kept).
  BOOST_TEST(
      c->put_job("J1", 94, 7, int64_t{2000}, R"({"ElementName":"one","PercentComplete":100})")
          .ok());

  auto j1 = c->get_job("J1");
  BOOST_REQUIRE(j1.ok());
  BOOST_TEST(j1->value_or("") == R"({"ElementName":"one","PercentComplete":100})");
  auto none = c->get_job("nope");
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());

  auto all = c->list_jobs();
  BOOST_REQUIRE(all.ok());
  BOOST_REQUIRE(all->size() == 3u);
  BOOST_TEST((*all)[0].instance_id == "J1");
  BOOST_TEST((*all)[0].finished_us.value_or(0) == 2000);
  BOOST_TEST((*all)[1].instance_id == "J2");
  BOOST_TEST(!(*all)[1].finished_us.has_value());
  BOOST_TEST((*all)[1].job_state == 4);
  BOOST_TEST((*all)[2].instance_id == "J3");
  BOOST_TEST((*all)[2].job_type == 95);
  BOOST_TEST((*all)[2].properties == R"({"ErrorCode":32768})");

  auto pruned = c->prune_jobs(2500);  // J1 finished at 2000; J3 at 3000; J2 still runs
  BOOST_REQUIRE(pruned.ok());
  BOOST_TEST(*pruned == 1u);
  auto left = c->list_jobs();
  BOOST_REQUIRE(left.ok());
  BOOST_REQUIRE(left->size() == 2u);
  BOOST_TEST((*left)[0].instance_id == "J2");
  BOOST_TEST((*left)[1].instance_id == "J3");
  auto all_done = c->prune_jobs(INT64_MAX);
  BOOST_REQUIRE(all_done.ok());
  BOOST_TEST(*all_done == 1u);
  BOOST_TEST(c->get_job("J2")->has_value());  // a running job is never pruned
}

BOOST_AUTO_TEST_CASE(jobs_reject_bad_input) {
  auto c = open_ok();
  Status not_json = c->put_job("J", 1, 7, int64_t{1}, "{not json");
  BOOST_TEST(not_json.number() == 32773u);
  BOOST_TEST(not_json.message().find("not a JSON object") != std::string::npos);
  BOOST_TEST(c->put_job("J", 1, 7, int64_t{1}, "[1,2]").number() == 32773u);
  BOOST_TEST(c->put_job("J", 1, 7, int64_t{1}, "").number() == 32773u);
  Status empty_id = c->put_job("", 1, 7, int64_t{1}, "{}");
  BOOST_TEST(empty_id.number() == 32773u);
  BOOST_TEST(empty_id.message().find("InstanceID") != std::string::npos);
  BOOST_TEST(c->put_job(std::string(257, 'x'), 1, 7, int64_t{1}, "{}").number() == 32773u);
  BOOST_TEST(c->list_jobs()->empty());
}

BOOST_AUTO_TEST_CASE(meta_keeps_host_wide_values) {
  {
    auto c = open_ok();
    BOOST_TEST(c->put_meta("a", "1").ok());
    BOOST_TEST(c->put_meta("a", "2").ok());
    BOOST_TEST(c->put_meta("", "x").number() == 32773u);
  }
  auto c = open_ok();
  BOOST_TEST(c->get_meta("a")->value_or("") == "2");
  BOOST_TEST(!c->get_meta("b")->has_value());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
