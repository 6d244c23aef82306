// Crash safety of ReplicaStore with real crashes: a forked child applies cycles in a loop (a
// few hundred random blocks each, zero blocks, partial updates of a block's bytes and blocks
// written twice included, in several batches), prunes to RecoveryHistory and now and then
// rolls back to an older point; the parent SIGKILLs it at a random moment. The parent then opens the store (recovery) and checks
// that every disk image hashes exactly to the source state of the point the catalog says is
// latest, that every older kept point still materializes to its exact bytes, and that the
// undo folder holds exactly the logs of the kept points. Some trials leave recovery to the
// next child, which is then killed early, so interrupted recoveries are recovered too.
//
// A cycle's content is a pure function of (seed, seq), so the parent rebuilds the source state
// of any point by replaying cycles 1..seq over zero disks, whatever the child's history.
// Seeded (VMREPL_CRASH_SEED overrides); VMREPL_CRASH_TRIALS raises the trial count.
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <array>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <new>
#include <random>
#include <set>
#include <thread>

#include "core/blocks/unique_fd.h"
#include "core/store/replica_store.h"
#include "core/store/vm_store.h"
#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;

constexpr int kDefaultTrials = 20;
constexpr uint64_t kDefaultSeed = 0xC4A5'11ED;
constexpr uint32_t kBs = 8 * 1024;
const std::vector<uint64_t> kSizes = {8u << 20, (2u << 20) + 4096};  // disk 1 ends in 4 KiB
constexpr uint32_t kHistory = 3;

// What the child is doing, in shared memory, so the parent can tell where its kill landed.
enum Phase : uint32_t { kIdle, kOpen, kApply, kCommit, kPrune, kRollback, kPhases };
constexpr const char* kPhaseNames[] = {"idle",   "open+recovery", "apply",
                                       "commit", "prune",         "rollback_to"};

struct Shared {
  std::atomic<uint32_t> phase;
  std::atomic<uint32_t> ready;  // the child has opened the store
  std::atomic<uint64_t> commits;
  std::atomic<uint64_t> rollbacks;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared across processes");

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

uint64_t block_len(uint32_t disk, uint64_t block) {
  return std::min<uint64_t>(kBs, kSizes[disk] - block * kBs);
}
uint64_t blocks_of(uint32_t disk) { return (kSizes[disk] + kBs - 1) / kBs; }

struct CycleWrite {
  uint32_t disk;
  uint64_t block;
  bool zero;
  uint64_t content;  // seed of the block's bytes
  uint32_t offset = 0;
  uint32_t length = 0;  // of a partial update; 0 = the whole block
};

// The writes of cycle `seq`, in order. Duplicates (a block written twice) are intended. Those
// after the first third (which go through the whole-block queue) are partial one time in three.
std::vector<CycleWrite> cycle_writes(uint64_t seed, uint64_t seq) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + seq);
  const uint64_t n = 100 + rng() % 300;
  std::vector<CycleWrite> out;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t disk = rng() % 5 == 0 ? 1 : 0;
    CycleWrite w{disk, rng() % blocks_of(disk), rng() % 4 == 0, rng()};
    if (i >= n / 3 && rng() % 3 == 0) {
      const auto len = static_cast<uint32_t>(block_len(disk, w.block));
      w.offset = static_cast<uint32_t>(rng() % len);
      w.length = static_cast<uint32_t>(1 + rng() % (len - w.offset));
      if (w.offset == 0 && w.length == len) w.length = 0;
    }
    out.push_back(w);
  }
  return out;
}

// The bytes of a block: splitmix64 from `content`, never an all-zero block.
void fill(std::span<std::byte> buf, uint64_t content) {
  uint64_t x = content;
  for (std::size_t i = 0; i < buf.size(); i += 8) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = (z ^ (z >> 31)) | 1;
    std::memcpy(buf.data() + i, &z, std::min<std::size_t>(8, buf.size() - i));
  }
}

std::string hex128(XXH128_hash_t h) {
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return out;
}

std::string file_digest(const std::string& path) {
  auto fd = open_file(path, O_RDONLY);
  BOOST_REQUIRE_MESSAGE(fd.ok(), fd.status().ToString());
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    BOOST_REQUIRE(n >= 0);
    if (n == 0) break;
    XXH3_128bits_update(st, buf.data(), static_cast<size_t>(n));
  }
  const std::string out = hex128(XXH3_128bits_digest(st));
  XXH3_freeState(st);
  return out;
}

// The primary's disks at every seq: replayed from zero disks, digests remembered.
class Model {
 public:
  explicit Model(uint64_t seed) : seed_(seed) {
    for (uint64_t s : kSizes) disks_.emplace_back(s);
    remember();
  }
  const std::vector<std::string>& digests(uint64_t seq) {
    while (seq_ < seq) {
      ++seq_;
      for (const auto& w : cycle_writes(seed_, seq_)) {
        auto blk = std::span(disks_[w.disk]).subspan(w.block * kBs, block_len(w.disk, w.block));
        if (w.length != 0) blk = blk.subspan(w.offset, w.length);
        if (w.zero)
          std::fill(blk.begin(), blk.end(), std::byte{0});
        else
          fill(blk, w.content);
      }
      remember();
    }
    return digests_.at(seq);
  }

 private:
  void remember() {
    for (const auto& d : disks_) digests_[seq_].push_back(hex128(XXH3_128bits(d.data(), d.size())));
  }
  uint64_t seed_;
  uint64_t seq_ = 0;
  std::vector<std::vector<std::byte>> disks_;
  std::map<uint64_t, std::vector<std::string>> digests_;
};

// Where the parent materializes points: tmpfs when there is one, since truncating and
// rewriting 10 MiB on a disk mounted with `discard` costs far more than the check itself (and
// the copy across filesystems takes materialize's fallback path). Else the test's own folder.
class DestDir {
 public:
  explicit DestDir(const std::string& fallback) : path_(fallback) {
    struct statfs sfs {};
    if (::statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
      std::string tmpl = "/dev/shm/vmrepl-replica-crash-XXXXXX";
      if (::mkdtemp(tmpl.data()) != nullptr) {
        path_ = tmpl;
        own_ = true;
      }
    }
  }
  DestDir(const DestDir&) = delete;
  DestDir& operator=(const DestDir&) = delete;
  ~DestDir() {
    std::error_code ec;
    if (own_) stdfs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool own_ = false;
};

[[noreturn]] void child_fail(const char* what, const Status& st) {
  const std::string msg =
      std::string("replica crash-test child: ") + what + ": " + st.ToString() + "\n";
  (void)!::write(2, msg.data(), msg.size());
  ::_exit(3);
}

// The child: applies cycles until killed. Never returns.
[[noreturn]] void child_main(const std::string& root, const VmRecord& vm, Shared* sh, uint64_t seed,
                             uint64_t trial) {
  sh->phase = kOpen;
  auto vms = VmStore::open(root);
  if (!vms.ok()) child_fail("VmStore::open", vms.status());
  auto opened = ReplicaStore::open((*vms)->catalog(), vm.id, vm.folder, kSizes, kBs);
  if (!opened.ok()) child_fail("ReplicaStore::open", opened.status());
  ReplicaStore& store = **opened;
  sh->phase = kIdle;
  sh->ready = 1;
  std::mt19937_64 rng(seed ^ (trial * 0x5851F42D4C957F2Dull));
  std::vector<std::byte> data;
  for (;;) {
    auto pts = store.points();
    if (!pts.ok()) child_fail("points", pts.status());
    if (pts->size() > 1 && rng() % 6 == 0) {
      sh->phase = kRollback;
      const uint64_t to = (*pts)[rng() % (pts->size() - 1)].seq;
      Status st = store.rollback_to(to);
      if (!st.ok()) child_fail("rollback_to", st);
      ++sh->rollbacks;
      sh->phase = kIdle;
      continue;
    }
    const uint64_t seq = store.image_seq() + 1;
    sh->phase = kApply;
    auto a = store.begin_apply(
        seq, seq % 5 == 0 ? RecoveryPointType::ApplicationConsistent : RecoveryPointType::Standard);
    if (!a.ok()) child_fail("begin_apply", a.status());
    const auto writes = cycle_writes(seed, seq);
    data.resize(writes.size() * kBs);
    // The first third through the queue (write/write_zero), the rest as spans in batches of
    // 48: either way the blocks land in cycle order.
    std::vector<BlockUpdate> batch;
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const auto& w = writes[i];
      auto blk = std::span(data).subspan(i * kBs, block_len(w.disk, w.block));
      if (w.length != 0) {
        // A partial update always carries its bytes; zeros punch its range.
        blk = blk.subspan(w.offset, w.length);
        if (w.zero) std::fill(blk.begin(), blk.end(), std::byte{0});
      }
      if (!w.zero) fill(blk, w.content);
      Status st;
      if (i < writes.size() / 3) {
        st = w.zero ? (*a)->write_zero(w.disk, w.block) : (*a)->write(w.disk, w.block, blk);
        if (st.ok() && i + 1 == writes.size() / 3) st = (*a)->apply_batch();
      } else {
        const bool zero_block = w.zero && w.length == 0;
        batch.push_back(
            {w.disk, w.block, zero_block ? std::span<const std::byte>{} : blk, w.offset});
        if (batch.size() >= 48 || i + 1 == writes.size()) {
          st = (*a)->apply_batch(batch);
          batch.clear();
        }
      }
      if (!st.ok()) child_fail("apply", st);
    }
    sh->phase = kCommit;
    CommitInfo ci;
    ci.created_us = static_cast<int64_t>(seq);
    ci.roots.assign(kSizes.size(), BlockHash{});
    ci.roots[0].bytes[0] = static_cast<uint8_t>(seq);
    Status st = (*a)->commit(ci);
    if (!st.ok()) child_fail("commit", st);
    ++sh->commits;
    a->reset();
    sh->phase = kPrune;
    auto pruned = store.prune(kHistory);
    if (!pruned.ok()) child_fail("prune", pruned.status());
    sh->phase = kIdle;
  }
}

BOOST_AUTO_TEST_SUITE(replica_crash_tests)

BOOST_AUTO_TEST_CASE(after_a_kill_at_any_moment_the_image_is_the_latest_committed_point) {
  const uint64_t trials = env_u64("VMREPL_CRASH_TRIALS", kDefaultTrials);
  const uint64_t seed = env_u64("VMREPL_CRASH_SEED", kDefaultSeed);
  BOOST_TEST_MESSAGE("replica crash test: " << trials << " trials, seed " << seed);
  test::TempDir dir;
  const std::string root = dir / "root";
  VmRecord vm;
  {
    auto vms = VmStore::open(root);
    BOOST_REQUIRE(vms.ok());
    auto d = (*vms)->define({"crash", std::nullopt, kSizes});
    BOOST_REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    vm = std::move(d).value();
  }

  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(mem != MAP_FAILED);
  auto* sh = new (mem) Shared{};

  Model model(seed);
  DestDir dests_dir(dir.path());
  std::mt19937_64 rng(seed);
  std::array<uint64_t, kPhases> landed{};
  uint64_t rolled_back_applies = 0, interrupted_rollbacks = 0, recoveries_left = 0;
  uint64_t materialized = 0, max_seq = 0;
  bool check_now = true;
  for (uint64_t trial = 0; trial < trials; ++trial) {
    sh->phase = kIdle;
    sh->ready = 0;
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        child_main(root, vm, sh, seed, trial);
      } catch (...) {
        ::_exit(5);
      }
    }
    // After a skipped check the child's own open does the recovery: kill it early, often
    // inside that recovery. Otherwise kill at a random moment of its cycle loop.
    if (check_now) {
      for (int i = 0; i < 10000 && sh->ready == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 600'000));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40'000));
    }
    const uint32_t phase = sh->phase.load();
    ::kill(pid, SIGKILL);
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                          "trial " << trial << ": the child ended by itself (status " << status
                                   << "); see its message above");
    ++landed[phase];

    check_now = trial + 1 == trials || rng() % 4 != 0;
    if (!check_now) {
      ++recoveries_left;
      continue;
    }
    auto vms = VmStore::open(root);
    BOOST_REQUIRE_MESSAGE(vms.ok(), vms.status().ToString());
    auto opened = ReplicaStore::open((*vms)->catalog(), vm.id, vm.folder, kSizes, kBs);
    BOOST_REQUIRE_MESSAGE(opened.ok(), "trial " << trial << ": " << opened.status().ToString());
    ReplicaStore& store = **opened;
    const auto& rec = store.recovered();
    BOOST_TEST(rec.integrity.ok(), rec.integrity.ToString());
    if (!rec.rolled_back.empty()) {
      if (phase == kRollback)
        ++interrupted_rollbacks;
      else
        ++rolled_back_applies;
    }
    auto pts = store.points();
    BOOST_REQUIRE(pts.ok());
    const uint64_t latest = pts->empty() ? 0 : pts->back().seq;
    max_seq = std::max(max_seq, latest);
    BOOST_TEST(store.image_seq() == latest);
    BOOST_TEST(pts->size() <= kHistory + 2);  // a kill between commit and prune: one extra
    // The image is exactly the point the catalog says is latest.
    for (uint32_t d = 0; d < kSizes.size(); ++d)
      BOOST_TEST(file_digest(store.image_path(d)) == model.digests(latest)[d],
                 "trial " << trial << " disk " << d << " at point " << latest << " (kill during "
                          << kPhaseNames[phase] << ")");
    // Every older point still materializes to its bytes; the logs are exactly the needed ones.
    std::set<std::string> want_logs;
    for (std::size_t i = 0; i + 1 < pts->size(); ++i) {
      const uint64_t seq = (*pts)[i].seq;
      const std::vector<std::string> dests = {dests_dir.path() + "/m0.img",
                                              dests_dir.path() + "/m1.img"};
      auto m = store.materialize(seq, dests);
      BOOST_REQUIRE_MESSAGE(m.ok(),
                            "trial " << trial << " point " << seq << ": " << m.status().ToString());
      for (uint32_t d = 0; d < kSizes.size(); ++d)
        BOOST_TEST(file_digest(dests[d]) == model.digests(seq)[d],
                   "trial " << trial << " materialized point " << seq << " disk " << d);
      ++materialized;
    }
    for (std::size_t i = 0; i < pts->size(); ++i) {
      // The oldest keeps its log only until the prune that follows its commit.
      if (i != 0) BOOST_TEST((*pts)[i].has_undo, "trial " << trial << " point " << (*pts)[i].seq);
      if ((*pts)[i].has_undo) want_logs.insert(UndoLog::file_name((*pts)[i].seq));
    }
    std::set<std::string> logs;
    for (const auto& e : stdfs::directory_iterator(vm.folder + "/undo"))
      logs.insert(e.path().filename().string());
    BOOST_TEST(logs == want_logs, "trial " << trial);
  }

  std::string where;
  for (uint32_t p = 0; p < kPhases; ++p)
    where += std::string(p ? ", " : "") + kPhaseNames[p] + " " + std::to_string(landed[p]);
  BOOST_TEST_MESSAGE("replica crash test: "
                     << trials << " kills (" << where << "); " << sh->commits.load() << " commits, "
                     << sh->rollbacks.load() << " rollback_to; recovery "
                     << "rolled back " << rolled_back_applies << " applies and finished "
                     << interrupted_rollbacks << " rollback_to steps; " << recoveries_left
                     << " recoveries left to the next child; " << materialized
                     << " older points materialized (into " << dests_dir.path() << "); "
                     << "highest point " << max_seq);
  BOOST_TEST(sh->commits.load() > 0u);
  ::munmap(mem, sizeof(Shared));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
