// VmStore: define/get/list/remove against the real files and catalog rows, sparse disks, the
// power state across reopen, every rule of a definition (32773 naming the property), unknown
// VMs (32779), the root lock, and what open() repairs and what it reports.
#include "core/store/vm_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>

#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;
namespace bdata = boost::unit_test::data;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

struct Fixture {
  test::TempDir dir;
  std::string root = dir / "root";

  std::unique_ptr<VmStore> open_store() {
    auto s = VmStore::open(root);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }
  std::set<std::string> vms_entries() const {
    std::set<std::string> out;
    for (const auto& e : stdfs::directory_iterator(root + "/vms"))
      out.insert(e.path().filename().string());
    return out;
  }
};

VmRecord define_ok(VmStore& store, const std::string& name, std::vector<uint64_t> sizes,
                   std::optional<Guid> id = std::nullopt) {
  auto r = store.define({name, id, std::move(sizes)});
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

int64_t catalog_count(VmStore& store, const std::string& sql) {
  int64_t n = -1;
  Status s = store.catalog().read([&](sqlite::Db& db) -> Status {
    auto r = db.query_int(sql);
    if (!r.ok()) return r.status();
    n = *r;
    return Status::OK();
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return n;
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

struct BadName {
  const char* label;
  std::string name;
  const char* rule;  // a piece of the expected message
};
std::ostream& operator<<(std::ostream& os, const BadName& b) { return os << b.label; }

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

const std::vector<BadName> kBadNames = {
    {"empty", "", "must not be empty"},
    {"dot", ".", "'.' is not allowed"},
    {"dotdot", "..", "'..' is not allowed"},
    {"slash", "a/b", "'/' or '\\'"},
    {"leading slash", "/etc", "'/' or '\\'"},
    {"backslash", "a\\b", "'/' or '\\'"},
    {"nul", std::string("a\0b", 3), "NUL"},
    {"101 bytes", std::string(101, 'x'), "at most 100 bytes"},
    {"102 bytes of euro signs", repeat("\xE2\x82\xAC", 34), "at most 100 bytes"},
    {"SOH", std::string("a\x01") + "b", "control characters (U+0001"},
    {"tab", "a\tb", "control characters (U+0009"},
    {"newline", "a\nb", "control characters (U+000A"},
    {"DEL", "a\x7F", "control characters (U+007F"},
    {"C1 NEL", "a\xC2\x85", "control characters (U+0085"},
    {"byte FF", "a\xFF", "not valid UTF-8"},
    {"overlong slash", "a\xC0\xAF", "overlong"},
    {"surrogate", "\xED\xA0\x80", "not valid UTF-8"},
    {"truncated", "a\xE2\x82", "truncated"},
    {"above U+10FFFF", "\xF4\x90\x80\x80", "not valid UTF-8"},
    {"bad continuation",
     "\xE2"
     "a"
     "b",
     "continuation"},
    {"a GUID", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "must not be a GUID"},
    {"a braced lowercase GUID", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", "must not be a GUID"},
};

struct BadDisks {
  const char* label;
  std::vector<uint64_t> sizes;
  const char* property;
  const char* rule;
};
std::ostream& operator<<(std::ostream& os, const BadDisks& b) { return os << b.label; }

const std::vector<BadDisks> kBadDisks = {
    {"no disk", {}, "disks:", "0 disks given"},
    {"17 disks", std::vector<uint64_t>(17, 4096), "disks:", "17 disks given"},
    {"zero", {0}, "disks[0]:", "greater than 0"},
    {"4095", {4095}, "disks[0]:", "not a multiple of 4096"},
    {"second unaligned", {4096, 5000}, "disks[1]:", "not a multiple of 4096"},
    {"third above 64 TiB", {4096, 4096, (uint64_t{64} << 40) + 4096}, "disks[2]:", "64 TiB"},
    {"UINT64_MAX", {UINT64_MAX}, "disks[0]:", "not a multiple of 4096"},
    {"largest aligned", {UINT64_MAX - 4095}, "disks[0]:", "64 TiB"},
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(vm_store_tests, Fixture)

BOOST_AUTO_TEST_CASE(define_get_list_remove) {
  auto store = open_store();
  const int64_t before = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  VmRecord a = define_ok(*store, "alpha", {kGiB, 8 * kMiB});
  const std::string ids = a.id.to_string();
  BOOST_TEST(a.name == "alpha");
  BOOST_TEST(a.enabled_state == kEnabledStateOff);
  BOOST_TEST(a.generation == 1u);
  BOOST_TEST(a.created_us >= before);
  BOOST_TEST(a.integrity.ok(), a.integrity.ToString());
  BOOST_TEST(a.folder == root + "/vms/" + ids);
  BOOST_REQUIRE(a.disks.size() == 2u);
  BOOST_TEST(a.disks[0].index == 0u);
  BOOST_TEST(a.disks[0].size_bytes == kGiB);
  BOOST_TEST(a.disks[0].path == a.folder + "/disk0.img");
  BOOST_TEST(a.disks[1].index == 1u);
  BOOST_TEST(a.disks[1].path == a.folder + "/disk1.img");
  BOOST_TEST(stdfs::file_size(a.disks[0].path) == kGiB);
  BOOST_TEST(stdfs::file_size(a.disks[1].path) == 8 * kMiB);

  // The folder holds exactly the config and the disks, and the config says what was defined.
  std::set<std::string> files;
  for (const auto& e : stdfs::directory_iterator(a.folder))
    files.insert(e.path().filename().string());
  BOOST_TEST((files == std::set<std::string>{"config.json", "disk0.img", "disk1.img"}));
  std::ifstream cf(a.folder + "/config.json");
  auto config = nlohmann::json::parse(cf);
  BOOST_TEST(config["id"] == ids);
  BOOST_TEST(config["name"] == "alpha");
  BOOST_TEST(config["created_us"] == a.created_us);
  BOOST_REQUIRE(config["disks"].size() == 2u);
  BOOST_TEST(config["disks"][1]["index"] == 1);
  BOOST_TEST(config["disks"][1]["size_bytes"] == 8 * kMiB);
  BOOST_TEST(config["disks"][1]["file"] == "disk1.img");
  // Owner-only permissions on what the store creates.
  BOOST_TEST(((stdfs::status(root).permissions() & stdfs::perms::all) == stdfs::perms::owner_all));
  BOOST_TEST(
      ((stdfs::status(a.folder).permissions() & stdfs::perms::all) == stdfs::perms::owner_all));

  VmRecord b = define_ok(*store, "Beta", {4096});
  auto all = store->list();
  BOOST_REQUIRE(all.ok());
  BOOST_REQUIRE(all->size() == 2u);
  BOOST_TEST((*all)[0].name == "Beta");  // by name, bytewise: 'B' < 'a'
  BOOST_TEST((*all)[1].name == "alpha");
  BOOST_TEST((*all)[1].id.to_string() == ids);

  // Look-ups: by name, and by GUID in any case, with or without braces.
  std::string lower = ids;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const std::string& key :
       {std::string("alpha"), ids, lower, "{" + ids + "}", "{" + lower + "}"}) {
    auto got = store->get(key);
    BOOST_REQUIRE_MESSAGE(got.ok(), key + ": " + got.status().ToString());
    BOOST_TEST((got->id == a.id));
    BOOST_TEST(got->disks.size() == 2u);
  }
  BOOST_TEST(store->get("ALPHA").status().number() == 32779u);  // names are exact

  BOOST_TEST(store->remove("alpha").ok());
  BOOST_TEST(!stdfs::exists(a.folder));
  BOOST_TEST(catalog_count(*store, "SELECT count(*) FROM vms") == 1);
  BOOST_TEST(catalog_count(*store, "SELECT count(*) FROM disks") ==
             1);  // alpha's rows went by cascade
  BOOST_TEST(store->get(ids).status().number() == 32779u);
  BOOST_TEST(store->remove("{" + lower + "}").number() == 32779u);

  std::string b_lower = b.id.to_string();
  std::transform(b_lower.begin(), b_lower.end(), b_lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  BOOST_TEST(store->remove(b_lower).ok());
  BOOST_TEST(store->list()->empty());
  BOOST_TEST(vms_entries().empty());
  BOOST_TEST(catalog_count(*store, "SELECT count(*) FROM disks") == 0);
}

BOOST_AUTO_TEST_CASE(disks_are_created_sparse) {
  auto store = open_store();
  VmRecord vm = define_ok(*store, "sparse", {kGiB, 64 * kGiB});
  for (const auto& d : vm.disks) {
    struct stat st {};
    BOOST_REQUIRE(::stat(d.path.c_str(), &st) == 0);
    BOOST_TEST(static_cast<uint64_t>(st.st_size) == d.size_bytes);
    BOOST_TEST(st.st_blocks == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    int fd = ::open(d.path.c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    BOOST_TEST(::lseek(fd, 0, SEEK_DATA) == -1);  // no data anywhere: all hole
    BOOST_TEST(errno == ENXIO);
    char buf[4096];
    BOOST_TEST(::pread(fd, buf, sizeof buf, static_cast<off_t>(d.size_bytes / 2)) == 4096);
    BOOST_TEST(std::all_of(std::begin(buf), std::end(buf), [](char c) { return c == 0; }));
    ::close(fd);
  }
}

BOOST_AUTO_TEST_CASE(power_state_persists_across_reopen) {
  Guid id;
  {
    auto store = open_store();
    id = define_ok(*store, "power", {4096}).id;
    BOOST_TEST(store->set_enabled_state(id, kEnabledStateRunning).ok());
  }
  {
    auto store = open_store();
    auto vm = store->get("power");
    BOOST_REQUIRE(vm.ok());
    BOOST_TEST(vm->enabled_state == 2u);
    BOOST_TEST(vm->generation == 2u);
    BOOST_TEST(store->set_enabled_state(id, 2).ok());  // already running: no change
    BOOST_TEST(store->get("power")->generation == 2u);
    BOOST_TEST(store->set_enabled_state(id, kEnabledStateOff).ok());
  }
  auto store = open_store();
  auto vm = store->get(id.to_string());
  BOOST_REQUIRE(vm.ok());
  BOOST_TEST(vm->enabled_state == 3u);
  BOOST_TEST(vm->generation == 3u);

  for (uint16_t bad : {0, 1, 4, 6, 9, 10, 32768}) {
    Status s = store->set_enabled_state(id, bad);
    BOOST_TEST(s.number() == 32773u);
    BOOST_TEST(contains(s.message(), "EnabledState"), s.message());
  }
  BOOST_TEST(store->get("power")->enabled_state == 3u);
  Status unknown = store->set_enabled_state(Guid::generate(), 2);
  BOOST_TEST(unknown.number() == 32779u);
}

BOOST_DATA_TEST_CASE(invalid_names_are_refused_naming_element_name, bdata::make(kBadNames), bad) {
  BOOST_TEST(validate_vm_name(bad.name).number() == 32773u);
  auto store = open_store();
  auto r = store->define({bad.name, std::nullopt, {4096}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message().starts_with("ElementName: "), r.status().message());
  BOOST_TEST(contains(r.status().message(), bad.rule), r.status().message());
  BOOST_TEST(vms_entries().empty());
  BOOST_TEST(catalog_count(*store, "SELECT count(*) FROM vms") == 0);
}

BOOST_AUTO_TEST_CASE(names_at_the_edges_of_the_rules_are_accepted) {
  auto store = open_store();
  const std::vector<std::string> good = {
      std::string(100, 'n'),
      repeat("\xE2\x82\xAC", 33),  // 99 bytes
      "\xF0\x9F\x92\xBE disk image \xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC",
      "...",
      ".hidden",
      " spaces ",
      "3F2504E0-4F89-11D3-9A0C-0305E82C330",  // one digit short of a GUID
  };
  for (const auto& name : good) {
    auto r = store->define({name, std::nullopt, {4096}});
    BOOST_TEST(r.ok(), printable(name) + ": " + r.status().ToString());
    if (r.ok()) BOOST_TEST((store->get(name)->id == r->id));
  }
  BOOST_TEST(store->list()->size() == good.size());
}

BOOST_DATA_TEST_CASE(invalid_disks_are_refused_naming_the_disk, bdata::make(kBadDisks), bad) {
  auto store = open_store();
  auto r = store->define({"vm", std::nullopt, bad.sizes});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message().starts_with(bad.property), r.status().message());
  BOOST_TEST(contains(r.status().message(), bad.rule), r.status().message());
  BOOST_TEST(vms_entries().empty());
}

BOOST_AUTO_TEST_CASE(disk_limits_are_inclusive) {
  BOOST_TEST(validate_disk_sizes(std::vector<uint64_t>{uint64_t{64} << 40}).ok());
  BOOST_TEST(validate_disk_sizes(std::vector<uint64_t>(16, 4096)).ok());
  BOOST_TEST(validate_disk_sizes(std::vector<uint64_t>{4096}).ok());
  auto store = open_store();
  VmRecord vm = define_ok(*store, "sixteen", std::vector<uint64_t>(16, 4096));
  BOOST_TEST(vm.disks.size() == 16u);
  BOOST_TEST(vm.disks[15].path == vm.folder + "/disk15.img");
  BOOST_TEST(stdfs::exists(vm.disks[15].path));
}

BOOST_AUTO_TEST_CASE(unknown_vms_are_file_not_found_naming_the_lookup) {
  auto store = open_store();
  define_ok(*store, "present", {4096});
  auto by_name = store->get("absent");
  BOOST_TEST(by_name.status().number() == 32779u);
  BOOST_TEST(contains(by_name.status().message(), "'absent'"), by_name.status().message());
  const std::string g = "{0a0b0c0d-1111-4222-8333-444455556666}";
  auto by_guid = store->get(g);
  BOOST_TEST(by_guid.status().number() == 32779u);
  BOOST_TEST(contains(by_guid.status().message(), "0A0B0C0D-1111-4222-8333-444455556666"));
  Status rm = store->remove("absent");
  BOOST_TEST(rm.number() == 32779u);
  BOOST_TEST(contains(rm.message(), "'absent'"));
  BOOST_TEST(store->get(std::string("bad\x01name")).status().number() == 32779u);
  BOOST_TEST(contains(store->get(std::string("bad\x01name")).status().message(), "bad\\x01name"));
  BOOST_TEST(store->list()->size() == 1u);
}

BOOST_AUTO_TEST_CASE(duplicate_name_or_id_is_refused) {
  auto store = open_store();
  VmRecord first = define_ok(*store, "twin", {4096});
  auto same_name = store->define({"twin", std::nullopt, {8192}});
  BOOST_TEST(same_name.status().number() == 32773u);
  BOOST_TEST(same_name.status().message().starts_with("ElementName: "));
  BOOST_TEST(contains(same_name.status().message(), "already exists"));

  auto same_id = store->define({"other", first.id, {4096}});
  BOOST_TEST(same_id.status().number() == 32773u);
  BOOST_TEST(same_id.status().message().starts_with("Name: "));
  BOOST_TEST(contains(same_id.status().message(), first.id.to_string()));

  auto nil = store->define({"nil", Guid(), {4096}});
  BOOST_TEST(nil.status().number() == 32773u);
  BOOST_TEST(contains(nil.status().message(), "nil GUID"));

  // Nothing changed: one VM, one folder, its disk still the first size.
  BOOST_TEST((vms_entries() == std::set<std::string>{first.id.to_string()}));
  BOOST_TEST(store->get("twin")->disks[0].size_bytes == 4096u);
}

BOOST_AUTO_TEST_CASE(a_given_id_is_used_in_canonical_form) {
  auto store = open_store();
  auto id = Guid::parse("{5b2e6a3c-0d4f-4a1b-9c8d-7e6f5a4b3c2d}");
  BOOST_REQUIRE(id.ok());
  VmRecord vm = define_ok(*store, "given", {4096}, *id);
  BOOST_TEST((vm.id == *id));
  BOOST_TEST((vms_entries() == std::set<std::string>{"5B2E6A3C-0D4F-4A1B-9C8D-7E6F5A4B3C2D"}));
}

BOOST_AUTO_TEST_CASE(root_must_be_a_clean_absolute_path) {
  for (const std::string& bad : {std::string("relative/root"), std::string(""), dir / "a/../b",
                                 std::string(dir / "nul") + std::string("\0x", 2)}) {
    auto s = VmStore::open(bad);
    BOOST_TEST(s.status().number() == 32773u, printable(bad));
    BOOST_TEST(contains(s.status().message(), "host root"));
  }
  BOOST_TEST(!stdfs::exists(dir / "nul"));
  BOOST_TEST(!stdfs::exists(dir / "b"));

  // Missing parents are created; a trailing slash and "." are harmless.
  auto deep = VmStore::open(dir / "x/./y/");
  BOOST_REQUIRE_MESSAGE(deep.ok(), deep.status().ToString());
  BOOST_TEST((*deep)->root() == dir / "x/y");
  BOOST_TEST(stdfs::is_directory(dir / "x/y/vms"));
  BOOST_TEST(stdfs::is_regular_file(dir / "x/y/catalog.db"));

  { std::ofstream(dir / "file") << "x"; }
  auto on_file = VmStore::open(dir / "file");
  BOOST_TEST(on_file.status().number() == 32768u);
}

BOOST_AUTO_TEST_CASE(one_store_per_root) {
  auto first = open_store();
  auto second = VmStore::open(root);
  BOOST_TEST(second.status().number() == 32774u);  // SystemInUse
  BOOST_TEST(contains(second.status().message(), "in use"));
  first.reset();
  auto third = VmStore::open(root);
  BOOST_TEST(third.ok());
}

BOOST_AUTO_TEST_CASE(open_deletes_leftovers_and_orphans_and_nothing_else) {
  Guid keep;
  {
    auto store = open_store();
    keep = define_ok(*store, "keep", {4096, 8192}).id;
  }
  const std::string vms = root + "/vms/";
  const std::string tmp = ".tmp-" + Guid::generate().to_string();
  const std::string orphan = Guid::generate().to_string();
  const std::string link = Guid::generate().to_string();
  stdfs::create_directories(vms + tmp + "/deeper");
  { std::ofstream(vms + tmp + "/disk0.img") << "partial"; }
  stdfs::create_directories(vms + orphan);
  { std::ofstream(vms + orphan + "/config.json") << "{}"; }
  // A symlink named like a VM folder, pointing outside: unlinked, never followed.
  stdfs::create_directories(dir / "outside");
  { std::ofstream(dir / "outside/precious") << "keep me"; }
  stdfs::create_directory_symlink(dir / "outside", vms + link);
  // Not named like the store's entries: left alone.
  stdfs::create_directories(vms + "lost+found");
  stdfs::create_directories(vms + ".tmp-not-a-guid");
  std::string lower_guid = Guid::generate().to_string();
  std::transform(lower_guid.begin(), lower_guid.end(), lower_guid.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  stdfs::create_directories(vms + lower_guid);
  // An interrupted config rewrite inside a live VM.
  const std::string live = vms + keep.to_string();
  { std::ofstream(live + "/config.json.tmp") << "{"; }

  auto store = open_store();
  std::vector<std::string> want = {tmp, orphan, link};
  std::sort(want.begin(), want.end());
  BOOST_TEST(store->repaired() == want, boost::test_tools::per_element());
  BOOST_TEST((vms_entries() == std::set<std::string>{keep.to_string(), "lost+found",
                                                     ".tmp-not-a-guid", lower_guid}));
  BOOST_TEST(!stdfs::exists(live + "/config.json.tmp"));
  BOOST_TEST(stdfs::exists(dir / "outside/precious"));
  auto vm = store->get("keep");
  BOOST_REQUIRE(vm.ok());
  BOOST_TEST(vm->integrity.ok(), vm->integrity.ToString());
}

BOOST_AUTO_TEST_CASE(a_lost_catalog_stops_open_and_deletes_nothing) {
  VmRecord vm;
  {
    auto store = open_store();
    vm = define_ok(*store, "precious", {4096});
  }
  for (const char* f : {"catalog.db", "catalog.db-wal", "catalog.db-shm"})
    stdfs::remove(root + "/" + f);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the refusal must not wear off
    auto s = VmStore::open(root);
    BOOST_TEST(s.status().number() == 32768u);
    BOOST_TEST(contains(s.status().message(), "missing or empty"), s.status().message());
    BOOST_TEST(!stdfs::exists(root + "/catalog.db"));
    BOOST_TEST(stdfs::file_size(vm.disks[0].path) == 4096u);
  }
  { std::ofstream(root + "/catalog.db"); }  // an empty file is no catalog either
  BOOST_TEST(VmStore::open(root).status().number() == 32768u);
  BOOST_TEST(stdfs::exists(vm.folder));
}

BOOST_AUTO_TEST_CASE(a_newer_catalog_stops_open_before_any_repair) {
  { open_store(); }
  const std::string orphan = root + "/vms/" + Guid::generate().to_string();
  stdfs::create_directories(orphan);
  {
    auto db = sqlite::Db::open(root + "/catalog.db");
    BOOST_REQUIRE(db.ok());
    BOOST_REQUIRE(db->exec("PRAGMA user_version = 99").ok());
  }
  auto s = VmStore::open(root);
  BOOST_TEST(s.status().number() == 32770u);  // NotSupported
  BOOST_TEST(stdfs::exists(orphan));          // nothing judged against a catalog it cannot read
}

BOOST_AUTO_TEST_CASE(a_symlinked_vms_folder_is_refused) {
  stdfs::create_directories(root);
  stdfs::create_directories(dir / "elsewhere");
  stdfs::create_directory_symlink(dir / "elsewhere", root + "/vms");
  auto s = VmStore::open(root);
  BOOST_TEST(s.status().number() == 32768u);
  BOOST_TEST(contains(s.status().message(), "vms"), s.status().message());
  BOOST_TEST(stdfs::is_empty(dir / "elsewhere"));
}

BOOST_AUTO_TEST_CASE(damaged_vms_are_reported_not_hidden) {
  VmRecord a, b, c;
  {
    auto store = open_store();
    a = define_ok(*store, "lost-disk", {4096, 8192});
    b = define_ok(*store, "wrong-size", {8192});
    c = define_ok(*store, "no-folder", {4096});
    define_ok(*store, "healthy", {4096});
  }
  stdfs::remove(a.disks[1].path);
  stdfs::resize_file(b.disks[0].path, 4096);
  stdfs::remove_all(c.folder);

  auto store = open_store();  // damage does not stop the host
  BOOST_TEST(store->repaired().empty());
  auto all = store->list();
  BOOST_REQUIRE(all.ok());
  BOOST_REQUIRE(all->size() == 4u);
  auto find = [&](const std::string& name) -> const VmRecord& {
    return *std::find_if(all->begin(), all->end(),
                         [&](const VmRecord& r) { return r.name == name; });
  };
  BOOST_TEST(find("healthy").integrity.ok());
  const Status& lost = find("lost-disk").integrity;
  BOOST_TEST(lost.number() == 32768u);
  BOOST_TEST(contains(lost.message(), "disk 1 file " + a.disks[1].path + " is missing"),
             lost.message());
  const Status& wrong = find("wrong-size").integrity;
  BOOST_TEST(contains(wrong.message(), "is 4096 bytes; the catalog says 8192"), wrong.message());
  const Status& gone = find("no-folder").integrity;
  BOOST_TEST(contains(gone.message(), "folder " + c.folder + " is missing"), gone.message());

  // get() reports the same; a disk replaced by a symlink is damage too.
  stdfs::remove(a.disks[0].path);
  stdfs::create_symlink("/dev/null", a.disks[0].path);
  auto got = store->get("lost-disk");
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(contains(got->integrity.message(),
                      "disk 0 file " + a.disks[0].path + " is not a regular file"),
             got->integrity.message());

  // remove() is how a damaged VM is cleared.
  BOOST_TEST(store->remove("lost-disk").ok());
  BOOST_TEST(store->remove("no-folder").ok());
  BOOST_TEST(!stdfs::exists(a.folder));
  BOOST_TEST(store->list()->size() == 2u);
}

BOOST_AUTO_TEST_CASE(concurrent_calls_are_serialized) {
  auto store = open_store();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 4; ++i) {
        auto r = store->define(
            {"t" + std::to_string(t) + "-" + std::to_string(i), std::nullopt, {4096}});
        if (r.ok()) (void)store->set_enabled_state(r->id, kEnabledStateRunning);
        (void)store->list();
      }
    });
  }
  for (auto& th : threads) th.join();
  auto all = store->list();
  BOOST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == 16u);
  for (const auto& vm : *all) {
    BOOST_TEST(vm.enabled_state == 2u);
    BOOST_TEST(vm.integrity.ok());
  }
  BOOST_TEST(vms_entries().size() == 16u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
