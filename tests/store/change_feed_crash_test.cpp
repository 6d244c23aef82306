// Durability of ChangeFeed with real crashes: a forked child marks random ranges from four
// threads (so group commits are in flight) while a fifth thread runs up to seven cycles
// (begin, then ack or abort, with a small compaction threshold so the log is also rewritten)
// and then stays quiet, and everything is reported to
// the parent through a pipe: "about to mark R" before each call, "returned" after it, "cycle
// E began" after begin_cycle returned and "acknowledging E" before ack_cycle. The parent
// SIGKILLs the child at a random moment, reopens the feed and checks that
//   - the feed is still trusted (a crash never costs a scan; a torn tail is cut off),
//   - every range whose mark_dirty returned is pending, unless a cycle that may have covered
//     it was being acknowledged (a mark that started after "cycle E began" is in a later
//     epoch, so the acknowledgement of E cannot have dropped it),
//   - nothing is pending that the child never started to mark,
//   - the reopened feed appends and replays correctly after the crash.
// 20 seeded trials; VMREPL_CRASH_TRIALS raises the count, VMREPL_CRASH_SEED changes the seed.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/store/change_feed.h"
#include "store/temp_dir.h"

namespace vmrepl {
namespace {

constexpr int kDefaultTrials = 20;
constexpr uint64_t kDefaultSeed = 0xC0FFEE5EED;
constexpr uint32_t kBs = 4096;
constexpr int kMarkThreads = 4;
const std::vector<uint64_t> kSizes = {uint64_t{64} << 20, (uint64_t{16} << 20) + 1000};

enum MsgType : uint32_t {
  kReady = 1,
  kStart = 2,
  kReturned = 3,
  kBeginDone = 4,
  kAckStart = 5,
  kAckDone = 6,  // length = compactions so far
};

struct Msg {
  uint32_t type = 0;
  uint32_t disk = 0;
  uint64_t id = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t epoch = 0;
};
static_assert(sizeof(Msg) <= PIPE_BUF, "one write(2) per message keeps messages whole");

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

[[noreturn]] void child_fail(const std::string& what) {
  const std::string msg = "change feed crash-test child: " + what + "\n";
  (void)!::write(2, msg.data(), msg.size());
  ::_exit(3);
}

void send(int fd, const Msg& m) {
  for (;;) {
    const ssize_t w = ::write(fd, &m, sizeof m);
    if (w == static_cast<ssize_t>(sizeof m)) return;
    if (w < 0 && errno == EINTR) continue;
    child_fail("pipe write failed");
  }
}

// The child: never returns; killed by the parent.
[[noreturn]] void child_main(const std::string& dir, int out, uint64_t seed) {
  ChangeFeedOptions o;
  o.compact_threshold_bytes = 4 * 1024;
  auto opened = ChangeFeed::open(dir, kSizes, kBs, o);
  if (!opened.ok()) child_fail("open: " + opened.status().ToString());
  ChangeFeed& feed = **opened;
  if (!feed.trusted()) child_fail("untrusted at start: " + feed.untrusted_reason());
  send(out, Msg{kReady, 0, 0, 0, 0, 0});

  std::atomic<uint64_t> next_id{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < kMarkThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed * 31 + static_cast<uint64_t>(t));
      for (;;) {
        Msg m;
        m.type = kStart;
        m.disk = static_cast<uint32_t>(rng() % kSizes.size());
        const uint64_t size = kSizes[m.disk];
        m.length = 1 + rng() % (256 * 1024);
        // A quarter of the writes go to a hot first MiB, so ranges overlap and coalesce.
        const uint64_t span = (rng() % 4 == 0) ? (uint64_t{1} << 20) : size;
        m.offset = rng() % (span - m.length + 1);
        m.id = next_id.fetch_add(1);
        send(out, m);
        Status st = feed.mark_dirty(m.disk, m.offset, m.length);
        if (!st.ok()) child_fail("mark_dirty: " + st.ToString());
        m.type = kReturned;
        send(out, m);
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937_64 rng(seed ^ 0xABCDEF);
    // A few cycles, then quiet: the marks after the last acknowledgement all must survive.
    const uint64_t cycles = rng() % 8;
    for (uint64_t i = 0; i < cycles; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng() % 15));
      auto c = feed.begin_cycle();
      if (!c.ok()) child_fail("begin_cycle: " + c.status().ToString());
      if (c->scan_required) child_fail("begin_cycle asks for a scan: " + c->scan_reason);
      send(out, Msg{kBeginDone, 0, 0, 0, 0, c->epoch});
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
      if (rng() % 4 == 0) {
        if (Status st = feed.abort_cycle(c->epoch); !st.ok()) child_fail("abort: " + st.ToString());
      } else {
        send(out, Msg{kAckStart, 0, 0, 0, 0, c->epoch});
        if (Status st = feed.ack_cycle(c->epoch); !st.ok()) child_fail("ack: " + st.ToString());
        send(out, Msg{kAckDone, 0, 0, 0, feed.stats().compactions, c->epoch});
      }
    }
    for (;;) ::pause();
  });
  for (auto& th : threads) th.join();
  ::_exit(4);  // unreachable: the threads loop until the kill
}

// Reads whole messages from `fd` into `out` until `deadline` (or EOF when deadline is
// nullopt). Returns false on EOF.
bool pump(int fd, std::string& partial, std::vector<Msg>& out,
          std::optional<std::chrono::steady_clock::time_point> deadline) {
  char buf[64 * 1024];
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t whole = partial.size() / sizeof(Msg) * sizeof(Msg);
    for (std::size_t i = 0; i < whole; i += sizeof(Msg)) {
      Msg m;
      std::memcpy(&m, partial.data() + i, sizeof m);
      out.push_back(m);
    }
    partial.erase(0, whole);
  }
}

BlockRun blocks_of(const Msg& m) {
  const uint64_t first = m.offset / kBs;
  return {first, (m.offset + m.length - 1) / kBs - first + 1};
}

struct Totals {
  uint64_t returned = 0, required = 0, cycles = 0, acks = 0, compactions = 0, torn_tails = 0;
};

void run_trial(int trial, uint64_t seed, Totals& totals) {
  test::TempDir tmp;
  const std::string dir = tmp / "feed";
  {
    auto f = ChangeFeed::open(dir, kSizes, kBs);
    BOOST_REQUIRE_MESSAGE(f.ok(), f.status().ToString());
    auto scan = (*f)->begin_cycle();
    BOOST_REQUIRE(scan.ok() && scan->scan_required);
    BOOST_REQUIRE((*f)->ack_cycle(scan->epoch).ok());
  }

  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child_main(dir, fds[1], seed);
  }
  ::close(fds[1]);
  std::string partial;
  std::vector<Msg> msgs;
  // Wait until the child has the feed open, then let it run for a random while.
  const auto ready_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (msgs.empty() && std::chrono::steady_clock::now() < ready_deadline) {
    if (!pump(fds[0], partial, msgs,
              std::chrono::steady_clock::now() + std::chrono::milliseconds(50)))
      break;
  }
  std::mt19937_64 rng(seed);
  const auto run_for = std::chrono::milliseconds(5 + rng() % 150);
  if (!msgs.empty()) pump(fds[0], partial, msgs, std::chrono::steady_clock::now() + run_for);
  ::kill(pid, SIGKILL);
  pump(fds[0], partial, msgs, std::nullopt);  // whatever the child wrote before it died
  ::close(fds[0]);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                        "trial " << trial << ": the child ended on its own (status " << status
                                 << "); see its message above");
  BOOST_REQUIRE(!msgs.empty() && msgs.front().type == kReady);

  // Replay the child's story in pipe order.
  std::map<uint64_t, std::pair<Msg, std::size_t>> started;  // id -> (range, position)
  std::set<uint64_t> returned;
  std::map<uint64_t, std::size_t> began_at;  // epoch -> position of "cycle began"
  std::size_t barrier = 0;  // marks started at or before it may have been acknowledged away
  uint64_t compactions = 0;
  DiskBlockSets ever_started(kSizes.size());
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const Msg& m = msgs[i];
    switch (m.type) {
      case kStart:
        started[m.id] = {m, i};
        ever_started[m.disk].insert(blocks_of(m));
        break;
      case kReturned:
        returned.insert(m.id);
        break;
      case kBeginDone:
        began_at[m.epoch] = i;
        ++totals.cycles;
        break;
      case kAckStart:
        BOOST_REQUIRE(began_at.count(m.epoch) == 1u);
        barrier = std::max(barrier, began_at[m.epoch]);
        ++totals.acks;
        break;
      case kAckDone:
        compactions = m.length;
        break;
      default:
        break;
    }
  }

  totals.compactions += compactions;
  auto reopened = ChangeFeed::open(dir, kSizes, kBs);
  BOOST_REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  std::unique_ptr<ChangeFeed> owner = std::move(reopened).value();
  ChangeFeed& feed = *owner;
  BOOST_TEST(feed.trusted(), "trial " << trial << ": " << feed.untrusted_reason());
  if (feed.stats().torn_tail_bytes > 0) ++totals.torn_tails;
  const DiskBlockSets pending = feed.pending();
  BOOST_REQUIRE(pending.size() == kSizes.size());

  int missing = 0;
  for (uint64_t id : returned) {
    const auto& [m, pos] = started.at(id);
    ++totals.returned;
    if (pos <= barrier) continue;
    ++totals.required;
    const BlockRun r = blocks_of(m);
    if (!pending[m.disk].contains_all(r.first, r.count) && ++missing <= 5) {
      BOOST_ERROR("trial " << trial << ": range " << id << " (disk " << m.disk << ", offset "
                           << m.offset << ", length " << m.length
                           << ") returned from mark_dirty but is not pending after the crash");
    }
  }
  BOOST_TEST(missing == 0, "trial " << trial << ": " << missing << " ranges lost");
  for (std::size_t d = 0; d < pending.size(); ++d) {
    pending[d].for_each_run([&](const BlockRun& r) {
      BOOST_TEST(ever_started[d].contains_all(r.first, r.count),
                 "trial " << trial << ": disk " << d << " blocks " << r.first << "+" << r.count
                          << " pending but never marked");
    });
  }

  // The recovered log takes appends and replays them.
  BOOST_REQUIRE(feed.mark_dirty(1, kSizes[1] - 1, 1).ok());
  DiskBlockSets want = pending;
  want[1].insert((kSizes[1] - 1) / kBs, 1);
  owner.reset();
  auto again = ChangeFeed::open(dir, kSizes, kBs);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  BOOST_TEST((*again)->trusted(), (*again)->untrusted_reason());
  BOOST_TEST(((*again)->pending() == want), "trial " << trial << ": replay after the crash");
}

BOOST_AUTO_TEST_SUITE(change_feed_crash_tests)

BOOST_AUTO_TEST_CASE(every_returned_range_survives_kill_9_at_a_random_moment) {
  const int trials =
      static_cast<int>(std::max<uint64_t>(env_u64("VMREPL_CRASH_TRIALS", kDefaultTrials), 1));
  const uint64_t seed = env_u64("VMREPL_CRASH_SEED", kDefaultSeed);
  Totals totals;
  for (int t = 0; t < trials; ++t) run_trial(t, seed + static_cast<uint64_t>(t) * 7919, totals);
  BOOST_TEST_MESSAGE("change feed crash test: "
                     << trials << " trials (seed " << seed << "), " << totals.returned
                     << " ranges returned, " << totals.required << " checked after the crash, "
                     << totals.cycles << " cycles begun, " << totals.acks
                     << " acknowledgements started, " << totals.compactions << " compactions, "
                     << totals.torn_tails << " torn tails cut off");
  BOOST_TEST(totals.required > 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
