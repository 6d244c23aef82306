// Crash safety of VmStore with real crashes: a forked child defines, removes and switches VMs in
// a loop and is SIGKILLed at a random moment; the parent then reopens the store and checks that
// the catalog and the folders agree exactly, every VM has its disks at the right sizes, no
// leftover or orphan folder remains, nothing appeared outside the root, and the state is the
// one the child's completed operations produced (the interrupted one applied wholly or not).
//
// The child logs each operation (before and after) into shared memory, so the parent knows
// what must be there. Seeded (VMREPL_CRASH_SEED overrides) for reproducible kill moments.
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "core/store/vm_store.h"
#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;

constexpr int kTrials = 20;
constexpr uint64_t kDefaultSeed = 0x5EED2024;
constexpr uint64_t kMaxDiskBlocks = (uint64_t{1} << 30) / 4096;  // disks up to 1 GiB
constexpr size_t kMaxRecords = 1 << 16;

enum Op : uint8_t { kDefine = 1, kRemove = 2, kSetState = 3 };

struct OpRecord {
  uint8_t op;
  uint8_t done;  // 0: about to start, 1: returned OK
  uint16_t state;
  uint32_t trial;
  uint32_t name_no;
  uint32_t ndisks;
  std::array<uint8_t, 16> id;
  uint64_t sizes[3];
};

struct SharedLog {
  std::atomic<uint32_t> count;
  OpRecord records[kMaxRecords];
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared across processes");

struct ModelVm {
  std::string name;
  std::vector<uint64_t> sizes;
  uint16_t state = kEnabledStateOff;
  bool operator==(const ModelVm&) const = default;
};
using Model = std::map<std::string, ModelVm>;  // by GUID text

std::string vm_name(uint32_t trial, uint32_t no) {
  return "c" + std::to_string(trial) + "-" + std::to_string(no);
}

void replay(Model& m, const OpRecord& r) {
  const std::string id = Guid(r.id).to_string();
  switch (r.op) {
    case kDefine:
      m[id] = ModelVm{vm_name(r.trial, r.name_no),
                      std::vector<uint64_t>(r.sizes, r.sizes + r.ndisks), kEnabledStateOff};
      break;
    case kRemove:
      m.erase(id);
      break;
    case kSetState:
      if (auto it = m.find(id); it != m.end()) it->second.state = r.state;
      break;
    default:
      break;
  }
}

[[noreturn]] void child_fail(const std::string& what, const Status& st) {
  std::string msg = "crash-test child: " + what + ": " + st.ToString() + "\n";
  (void)!::write(2, msg.data(), msg.size());
  ::_exit(3);
}

// The child: never returns; killed by the parent.
[[noreturn]] void child_main(const std::string& root, SharedLog* log, uint32_t trial,
                             uint64_t seed) {
  auto opened = VmStore::open(root);
  if (!opened.ok()) child_fail("open", opened.status());
  VmStore& store = **opened;
  auto listed = store.list();
  if (!listed.ok()) child_fail("list", listed.status());
  std::vector<Guid> live;
  for (const auto& vm : *listed) live.push_back(vm.id);

  std::mt19937_64 rng(seed);
  auto log_op = [&](OpRecord r) {
    uint32_t n = log->count.load(std::memory_order_relaxed);
    if (n >= kMaxRecords) {
      for (;;) ::pause();  // log full: wait to be killed
    }
    log->records[n] = r;
    log->count.store(n + 1, std::memory_order_release);
  };
  for (uint32_t no = 0;; ++no) {
    const uint64_t dice = rng() % 10;
    OpRecord r{};
    r.trial = trial;
    r.name_no = no;
    if (live.size() < 3 || (dice < 5 && live.size() < 12)) {
      const Guid id = Guid::generate();
      r.op = kDefine;
      r.id = id.bytes();
      r.ndisks = static_cast<uint32_t>(1 + rng() % 3);
      std::vector<uint64_t> sizes;
      for (uint32_t i = 0; i < r.ndisks; ++i) {
        r.sizes[i] = (1 + rng() % kMaxDiskBlocks) * 4096;
        sizes.push_back(r.sizes[i]);
      }
      log_op(r);
      auto d = store.define({vm_name(trial, no), id, sizes});
      if (!d.ok()) child_fail("define", d.status());
      live.push_back(id);
    } else if (dice < 8) {
      const size_t k = rng() % live.size();
      r.op = kRemove;
      r.id = live[k].bytes();
      log_op(r);
      Status st = store.remove(live[k].to_string());
      if (!st.ok()) child_fail("remove", st);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
      const size_t k = rng() % live.size();
      r.op = kSetState;
      r.id = live[k].bytes();
      r.state = (rng() % 2) ? kEnabledStateRunning : kEnabledStateOff;
      log_op(r);
      Status st = store.set_enabled_state(live[k], r.state);
      if (!st.ok()) child_fail("set_enabled_state", st);
    }
    r.done = 1;
    log_op(r);
  }
}

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// Checks everything on disk against the store's view and returns that view as a Model.
Model verify(VmStore& store, const std::string& parent, const std::string& root) {
  BOOST_TEST((entries(parent) == std::set<std::string>{"root"}));  // nothing beside the root
  for (const auto& e : entries(root)) {
    static const std::set<std::string> allowed = {"catalog.db", "catalog.db-wal", "catalog.db-shm",
                                                  "vmrepl.lock", "vms"};
    BOOST_TEST(allowed.count(e) == 1u, "unexpected entry in root: " << e);
  }
  auto listed = store.list();
  BOOST_REQUIRE_MESSAGE(listed.ok(), listed.status().ToString());
  Model actual;
  std::set<std::string> ids;
  size_t disk_rows = 0;
  for (const auto& vm : *listed) {
    const std::string id = vm.id.to_string();
    ids.insert(id);
    BOOST_TEST(vm.integrity.ok(), vm.integrity.ToString());
    std::set<std::string> want_files = {"config.json"};
    ModelVm mv{vm.name, {}, vm.enabled_state};
    for (const auto& d : vm.disks) {
      struct stat st {};
      BOOST_REQUIRE_MESSAGE(::stat(d.path.c_str(), &st) == 0, d.path);
      BOOST_TEST(static_cast<uint64_t>(st.st_size) == d.size_bytes);
      BOOST_TEST(st.st_blocks == 0);  // still sparse
      want_files.insert(stdfs::path(d.path).filename().string());
      mv.sizes.push_back(d.size_bytes);
      ++disk_rows;
    }
    BOOST_TEST((entries(vm.folder) == want_files), "files of " << vm.folder);
    std::ifstream cf(vm.folder + "/config.json");
    auto config = nlohmann::json::parse(cf, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!config.is_discarded(), "config.json of " << id << " does not parse");
    BOOST_TEST(config["id"] == id);
    BOOST_TEST(config["name"] == vm.name);
    BOOST_REQUIRE(config["disks"].size() == vm.disks.size());
    for (size_t i = 0; i < vm.disks.size(); ++i)
      BOOST_TEST(config["disks"][i]["size_bytes"] == vm.disks[i].size_bytes);
    actual[id] = std::move(mv);
  }
  // The folders are exactly the catalog's VMs: no .tmp-*, no orphan, none missing.
  BOOST_TEST((entries(root + "/vms") == ids));
  int64_t rows = -1;
  BOOST_REQUIRE(store.catalog()
                    .read([&](sqlite::Db& db) -> Status {
                      auto n = db.query_int("SELECT count(*) FROM disks");
                      if (!n.ok()) return n.status();
                      rows = *n;
                      return Status::OK();
                    })
                    .ok());
  BOOST_TEST(rows == static_cast<int64_t>(disk_rows));
  return actual;
}

uint64_t seed_from_env() {
  const char* s = std::getenv("VMREPL_CRASH_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 0) : kDefaultSeed;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vm_store_crash_tests)

BOOST_AUTO_TEST_CASE(sigkill_at_random_moments_leaves_a_consistent_store) {
  const uint64_t seed = seed_from_env();
  BOOST_TEST_MESSAGE("crash test seed " << seed << " (set VMREPL_CRASH_SEED to repeat)");
  std::mt19937_64 rng(seed);
  test::TempDir parent;
  const std::string root = parent / "root";

  void* mem =
      ::mmap(nullptr, sizeof(SharedLog), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(mem != MAP_FAILED);
  auto* log = new (mem) SharedLog{};

  Model expected;  // what the store held when the last trial was verified
  int in_flight_kills = 0, completed_ops = 0, repaired_entries = 0;
  for (uint32_t trial = 0; trial < kTrials; ++trial) {
    log->count.store(0);
    const uint64_t child_seed = rng();
    const auto delay = std::chrono::microseconds(rng() % 120'000);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) child_main(root, log, trial, child_seed);

    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    BOOST_REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
    BOOST_REQUIRE_MESSAGE(
        WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL,
        "trial " << trial << ": the child ended by itself (status " << wstatus << ")");

    // Replay the child's log: completed operations must be there; an interrupted one may or
    // may not have happened, but wholly.
    Model without = expected;
    const uint32_t n = log->count.load(std::memory_order_acquire);
    std::optional<OpRecord> interrupted;
    for (uint32_t i = 0; i < n; ++i) {
      const OpRecord& r = log->records[i];
      if (r.done) {
        replay(without, r);
        ++completed_ops;
        interrupted.reset();
      } else {
        interrupted = r;
      }
    }
    Model with = without;
    if (interrupted) {
      replay(with, *interrupted);
      ++in_flight_kills;
    }

    auto opened = VmStore::open(root);
    BOOST_REQUIRE_MESSAGE(opened.ok(), "trial " << trial << ": " << opened.status().ToString());
    repaired_entries += static_cast<int>((*opened)->repaired().size());
    Model actual = verify(**opened, parent.path(), root);
    BOOST_TEST((actual == without || actual == with),
               "trial " << trial << ": the store holds " << actual.size() << " VMs; expected "
                        << without.size()
                        << (interrupted ? " or " + std::to_string(with.size()) : std::string()));
    expected = std::move(actual);
  }
  BOOST_TEST_MESSAGE("crash test: "
                     << kTrials << " kills, " << in_flight_kills << " during an operation, "
                     << completed_ops << " operations completed, " << repaired_entries
                     << " leftovers repaired, " << expected.size() << " VMs at the end");
  BOOST_TEST(completed_ops > 0);
  BOOST_TEST(in_flight_kills > 0);
  log->~SharedLog();
  ::munmap(mem, sizeof(SharedLog));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
