// ChangeFeed against real files and real fdatasync: the exact blocks a range marks (block
// boundaries, partial blocks, the partial last block of a disk), argument checks (32773 naming
// the argument), begin/ack/abort semantics and their durability, coalescing, group commit
// under 8 threads, torn tails, damage and missing files (untrusted with a reason, a scan
// cycle, trusted again), sticky verdicts, compaction that keeps unacknowledged epochs exactly,
// and write failures (RLIMIT_FSIZE) that turn the feed untrusted instead of losing a range.
#include "core/store/change_feed.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <ostream>
#include <random>
#include <thread>

#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;
namespace bdata = boost::unit_test::data;

constexpr uint32_t kBs = 4096;
constexpr uint64_t kDisk0 = 10 * kBs + 100;  // 11 blocks, the last one 100 bytes
constexpr uint64_t kDisk1 = 256 * kBs;
constexpr std::size_t kHeader = 40 + 2 * 8 + 8;  // log header for two disks
constexpr std::size_t kRec = ChangeFeed::kRecordSize;

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

struct Fixture {
  test::TempDir tmp;
  std::string dir = tmp / "feed";
  std::string log = dir + "/change.log";
  std::string marker = dir + "/change.feed";
  std::vector<uint64_t> sizes{kDisk0, kDisk1};

  std::unique_ptr<ChangeFeed> open(ChangeFeedOptions o = {}) { return open_with(sizes, o); }
  std::unique_ptr<ChangeFeed> open_with(const std::vector<uint64_t>& s, ChangeFeedOptions o = {}) {
    auto f = ChangeFeed::open(dir, s, kBs, o);
    BOOST_REQUIRE_MESSAGE(f.ok(), f.status().ToString());
    return std::move(f).value();
  }
  // A feed past its first scan cycle, so that it tracks writes.
  std::unique_ptr<ChangeFeed> open_trusted(ChangeFeedOptions o = {}) {
    auto f = open(o);
    if (!f->trusted()) {
      auto c = f->begin_cycle();
      BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
      BOOST_REQUIRE(c->scan_required);
      BOOST_REQUIRE(f->ack_cycle(c->epoch).ok());
    }
    BOOST_REQUIRE_MESSAGE(f->trusted(), f->untrusted_reason());
    return f;
  }
};

void mark(ChangeFeed& f, uint32_t disk, uint64_t offset, uint64_t length) {
  Status st = f.mark_dirty(disk, offset, length);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
}

void mark_block(ChangeFeed& f, uint32_t disk, uint64_t block) { mark(f, disk, block * kBs, 1); }

DiskBlockSets sets(BlockSet d0, BlockSet d1 = {}) { return {std::move(d0), std::move(d1)}; }

FeedCycle begin(ChangeFeed& f) {
  auto c = f.begin_cycle();
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

BOOST_FIXTURE_TEST_SUITE(change_feed_tests, Fixture)

BOOST_AUTO_TEST_CASE(new_feed_is_untrusted_until_its_first_scan_cycle_is_acknowledged) {
  auto f = open();
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "new change feed"), f->untrusted_reason());
  mark(*f, 0, 0, 1);  // validated, not logged: the scan reads it anyway
  BOOST_TEST(f->stats().untracked == 1u);
  BOOST_TEST(f->stats().records_written == 0u);

  const FeedCycle scan = begin(*f);
  BOOST_TEST(scan.scan_required);
  BOOST_TEST(contains(scan.scan_reason, "new change feed"), scan.scan_reason);
  BOOST_TEST(scan.blocks.size() == 2u);
  BOOST_TEST((scan.blocks[0].empty() && scan.blocks[1].empty()));
  // Writes after the scan's view are logged, and survive the scan's acknowledgement.
  mark_block(*f, 1, 7);
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "scan cycle"), f->untrusted_reason());
  BOOST_TEST(f->ack_cycle(scan.epoch).ok());
  BOOST_TEST(f->trusted());
  BOOST_TEST(f->untrusted_reason().empty());
  BOOST_TEST((f->pending() == sets({}, {{7, 1}})));
  f.reset();

  auto g = open();
  BOOST_TEST(g->trusted(), g->untrusted_reason());
  BOOST_TEST((g->pending() == sets({}, {{7, 1}})));
}

BOOST_AUTO_TEST_CASE(a_scan_cycle_not_acknowledged_or_aborted_leaves_the_feed_untrusted) {
  {
    auto f = open();
    const FeedCycle scan = begin(*f);
    BOOST_REQUIRE(scan.scan_required);
    mark_block(*f, 0, 1);
  }  // closed (as by a crash) before the scan was acknowledged
  {
    auto f = open();
    BOOST_TEST(!f->trusted());
    BOOST_TEST(contains(f->untrusted_reason(), "was not acknowledged"), f->untrusted_reason());
    const FeedCycle scan = begin(*f);
    BOOST_TEST(scan.scan_required);
    BOOST_TEST(f->abort_cycle(scan.epoch).ok());
    BOOST_TEST(!f->trusted());
    BOOST_TEST(contains(f->untrusted_reason(), "aborted"), f->untrusted_reason());
    const FeedCycle again = begin(*f);
    BOOST_TEST(again.scan_required);
    BOOST_TEST(again.epoch > scan.epoch);
    BOOST_TEST(f->ack_cycle(again.epoch).ok());
    BOOST_TEST(f->trusted());
  }
  BOOST_TEST(open()->trusted());
}

BOOST_AUTO_TEST_CASE(mark_dirty_records_exactly_the_blocks_a_range_touches) {
  auto f = open_trusted();
  mark(*f, 0, 0, 1);                   // first byte: block 0
  mark(*f, 0, kBs - 1, 2);             // crosses 0|1
  mark(*f, 0, 3 * kBs, kBs);           // exactly block 3
  mark(*f, 0, 5 * kBs + 10, 3 * kBs);  // partial 5 .. partial 8
  mark(*f, 0, 10 * kBs + 50, 50);      // the partial last block, up to the disk's end
  mark(*f, 1, 100 * kBs - 1, 1);       // last byte of block 99
  mark(*f, 1, 255 * kBs, kBs);         // the last (full) block of disk 1
  const DiskBlockSets want = sets({{0, 2}, {3, 1}, {5, 4}, {10, 1}}, {{99, 1}, {255, 1}});
  BOOST_TEST((f->pending() == want));
  const FeedCycle c = begin(*f);
  BOOST_TEST(!c.scan_required);
  BOOST_TEST((c.blocks == want));
  BOOST_TEST((c.blocks[0].to_indexes() == std::vector<uint64_t>{0, 1, 3, 5, 6, 7, 8, 10}));
  BOOST_TEST((c.blocks[1].to_indexes() == std::vector<uint64_t>{99, 255}));
  // A whole-disk mark is one run, whatever the disk's size.
  mark(*f, 1, 0, kDisk1);
  BOOST_TEST(f->pending()[1].run_count() == 1u);
}

struct BadRange {
  const char* label;
  uint32_t disk;
  uint64_t offset;
  uint64_t length;
  const char* starts;  // the argument the message must name first
};
std::ostream& operator<<(std::ostream& os, const BadRange& b) { return os << b.label; }

const BadRange kBadRanges[] = {
    {"no such disk", 2, 0, 1, "disk 2 "},
    {"no such disk, zero length", 9, 0, 0, "disk 9 "},
    {"zero length", 0, 0, 0, "length "},
    {"offset at the end", 0, kDisk0, 1, "offset "},
    {"offset far beyond", 1, uint64_t{1} << 40, 4096, "offset "},
    {"runs past the partial last block", 0, kDisk0 - 1, 2, "length "},
    {"runs past the end of disk 1", 1, 0, kDisk1 + 1, "length "},
    {"offset + length overflows", 0, UINT64_MAX - 1, 2, "offset "},
};

BOOST_DATA_TEST_CASE(bad_ranges_are_refused_naming_the_argument, bdata::make(kBadRanges), bad) {
  auto f = open_trusted();
  const auto before = f->stats();
  Status st = f->mark_dirty(bad.disk, bad.offset, bad.length);
  BOOST_TEST(st.number() == 32773u, st.ToString());
  BOOST_TEST(st.message().starts_with(bad.starts), st.message());
  BOOST_TEST(f->stats().mark_calls == before.mark_calls);
  BOOST_TEST(f->stats().fsyncs == before.fsyncs);
  BOOST_TEST(f->pending()[0].empty());
  BOOST_TEST(f->pending()[1].empty());
}

BOOST_AUTO_TEST_CASE(ack_forgets_a_cycle_abort_merges_it_back_and_both_survive_reopen) {
  auto f = open_trusted();
  mark(*f, 0, 0, 2 * kBs);  // A = {0-1}
  const FeedCycle c1 = begin(*f);
  BOOST_TEST((c1.blocks == sets({{0, 2}})));
  BOOST_TEST((f->open_cycle() == c1.epoch));
  mark_block(*f, 0, 5);  // B, marked during the cycle: the next epoch
  BOOST_TEST((f->pending() == sets({{0, 2}, {5, 1}})));

  auto busy = f->begin_cycle();
  BOOST_TEST(busy.status().number() == 32775u, busy.status().ToString());
  BOOST_TEST(f->ack_cycle(c1.epoch + 1).number() == 32773u);
  BOOST_TEST(f->abort_cycle(c1.epoch - 1).number() == 32773u);

  BOOST_TEST(f->ack_cycle(c1.epoch).ok());
  BOOST_TEST(!f->open_cycle().has_value());
  BOOST_TEST(f->ack_cycle(c1.epoch).number() == 32773u);
  BOOST_TEST((f->pending() == sets({{5, 1}})));

  const FeedCycle c2 = begin(*f);
  BOOST_TEST(c2.epoch > c1.epoch);
  BOOST_TEST((c2.blocks == sets({{5, 1}})));
  mark_block(*f, 1, 3);  // C
  BOOST_TEST(f->abort_cycle(c2.epoch).ok());
  BOOST_TEST((f->pending() == sets({{5, 1}}, {{3, 1}})));
  const FeedCycle c3 = begin(*f);
  BOOST_TEST((c3.blocks == sets({{5, 1}}, {{3, 1}})));
  f.reset();  // closed with cycle c3 open: its blocks were never acknowledged

  f = open();
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  BOOST_TEST((f->pending() == sets({{5, 1}}, {{3, 1}})));
  const FeedCycle c4 = begin(*f);
  BOOST_TEST(c4.epoch > c3.epoch);  // epochs never repeat across restarts
  BOOST_TEST((c4.blocks == sets({{5, 1}}, {{3, 1}})));
  BOOST_TEST(f->ack_cycle(c4.epoch).ok());
  f.reset();

  f = open();
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  BOOST_TEST((f->pending() == sets({}, {})));
}

BOOST_AUTO_TEST_CASE(known_ranges_return_without_io_but_not_after_their_epoch_closed) {
  auto f = open_trusted();
  mark(*f, 0, 0, 2 * kBs);
  auto s = f->stats();
  BOOST_TEST(s.records_written == 1u);
  mark(*f, 0, 100, 10);   // inside block 0: known
  mark(*f, 0, kBs, kBs);  // block 1: known
  BOOST_TEST(f->stats().fsyncs == s.fsyncs);
  BOOST_TEST(f->stats().coalesced == s.coalesced + 2);
  mark(*f, 0, kBs, 2 * kBs);  // {1, 2}: only block 2 is new, and only it is logged
  BOOST_TEST(f->stats().records_written == 2u);
  BOOST_TEST(f->stats().fsyncs == s.fsyncs + 1);

  const FeedCycle c = begin(*f);
  s = f->stats();
  // Block 0 belongs to the cycle in flight; a new write to it must be recorded again, since
  // the cycle's view may predate it.
  mark(*f, 0, 0, 1);
  BOOST_TEST(f->stats().fsyncs == s.fsyncs + 1);
  BOOST_TEST(f->ack_cycle(c.epoch).ok());
  BOOST_TEST((f->pending() == sets({{0, 1}})));
}

BOOST_AUTO_TEST_CASE(group_commit_batches_concurrent_callers_and_keeps_every_range) {
  constexpr int kThreads = 8;
  constexpr int kRanges = 10000;
  constexpr int kSerial = 200;
  sizes = {uint64_t{2 * kRanges + kSerial} * kBs};
  auto f = open_trusted();
  // Baseline: one caller, one fdatasync per call.
  const auto serial0 = f->stats();
  const auto ts = std::chrono::steady_clock::now();
  for (uint64_t b = 2 * kRanges; b < 2 * kRanges + kSerial; ++b) mark_block(*f, 0, b);
  const double serial_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
  BOOST_TEST(f->stats().fsyncs - serial0.fsyncs == uint64_t{kSerial});
  BOOST_TEST_MESSAGE("one caller: " << kSerial << " calls, " << kSerial << " fdatasyncs, "
                                    << serial_secs * 1000 / kSerial << " ms per call");
  const auto before = f->stats();
  // Distinct blocks, shuffled, so that no call can be coalesced and every one needs a record.
  std::vector<uint64_t> blocks(2 * kRanges);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937_64(42));
  blocks.resize(kRanges);
  std::atomic<int> failures{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRanges; i += kThreads) {
        if (!f->mark_dirty(0, blocks[i] * kBs + 7, 100).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto s = f->stats();
  const uint64_t calls = s.mark_calls - before.mark_calls;
  const uint64_t fsyncs = s.fsyncs - before.fsyncs;
  BOOST_TEST_MESSAGE("group commit: " << calls << " calls from " << kThreads << " threads, "
                                      << s.records_written - before.records_written << " records, "
                                      << fsyncs << " fdatasyncs (" << double(calls) / double(fsyncs)
                                      << " calls per sync), " << secs << " s, "
                                      << secs * 1000 / double(calls) << " ms per call");
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(calls == uint64_t{kRanges});
  BOOST_TEST(s.records_written - before.records_written == uint64_t{kRanges});
  BOOST_TEST(fsyncs == s.batches - before.batches);
  BOOST_TEST(fsyncs < calls / 2);
  BlockSet want{{2 * kRanges, kSerial}};
  for (uint64_t b : blocks) want.insert(b, 1);
  // Parenthesized: a mismatch of 10000 blocks is not worth printing.
  BOOST_TEST((f->pending()[0] == want));
  f.reset();
  auto g = open_trusted();
  BOOST_TEST(g->pending()[0].block_count() == want.block_count());
  BOOST_TEST((g->pending()[0] == want));
}

BOOST_AUTO_TEST_CASE(a_torn_tail_is_cut_off_and_the_feed_stays_trusted) {
  {
    auto f = open_trusted();
    mark_block(*f, 0, 1);
    mark_block(*f, 0, 4);
    mark_block(*f, 1, 9);
  }
  const std::string good = read_file(log);
  BOOST_REQUIRE(good.size() == kHeader + 3 * kRec);
  // The first 17 bytes of a fourth record: a write that was cut by the crash.
  write_file(log, good + good.substr(kHeader, 17));
  {
    auto f = open();
    BOOST_TEST(f->trusted(), f->untrusted_reason());
    BOOST_TEST(f->stats().torn_tail_bytes == 17u);
    BOOST_TEST((f->pending() == sets({{1, 1}, {4, 1}}, {{9, 1}})));
    BOOST_TEST(read_file(log) == good);
    mark_block(*f, 1, 20);  // appended where the tail was
  }
  auto f = open();
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  BOOST_TEST(f->stats().torn_tail_bytes == 0u);
  BOOST_TEST((f->pending() == sets({{1, 1}, {4, 1}}, {{9, 1}, {20, 1}})));
}

BOOST_AUTO_TEST_CASE(a_flipped_byte_in_the_middle_makes_the_feed_untrusted_until_a_scan) {
  {
    auto f = open_trusted();
    for (uint64_t b : {1, 3, 5, 7, 9}) mark_block(*f, 0, b);
  }
  std::string bytes = read_file(log);
  BOOST_REQUIRE(bytes.size() == kHeader + 5 * kRec);
  const std::size_t at = kHeader + 2 * kRec + 20;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  write_file(log, bytes);

  auto f = open();
  BOOST_TEST(!f->trusted());
  const std::string reason = f->untrusted_reason();
  BOOST_TEST(contains(reason, "checksum mismatch"), reason);
  BOOST_TEST(contains(reason, "offset " + std::to_string(kHeader + 2 * kRec)), reason);
  BOOST_TEST((f->pending() == sets({}, {})));  // no partial answer
  mark_block(*f, 1, 2);                        // before the scan's view: the scan covers it
  const FeedCycle scan = begin(*f);
  BOOST_TEST(scan.scan_required);
  BOOST_TEST(scan.scan_reason == reason);
  mark_block(*f, 1, 4);  // after the view: logged in the fresh log
  f.reset();
  // Restarted before the scan was acknowledged: still untrusted.
  f = open();
  BOOST_TEST(!f->trusted());
  const FeedCycle scan2 = begin(*f);
  BOOST_TEST(scan2.scan_required);
  mark_block(*f, 1, 6);
  BOOST_TEST(f->ack_cycle(scan2.epoch).ok());
  BOOST_TEST(f->trusted());
  f.reset();
  f = open();
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  BOOST_TEST((f->pending() == sets({}, {{6, 1}})));
}

BOOST_AUTO_TEST_CASE(a_damaged_last_full_record_is_not_taken_for_a_torn_tail) {
  {
    auto f = open_trusted();
    mark_block(*f, 0, 1);
    mark_block(*f, 0, 3);
  }
  std::string bytes = read_file(log);
  bytes[bytes.size() - 3] = static_cast<char>(bytes[bytes.size() - 3] ^ 1);
  write_file(log, bytes);
  auto f = open();
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "checksum mismatch"), f->untrusted_reason());
  // Zeros where a whole record should be (a lost write) are damage too, not a torn tail.
  f.reset();
  write_file(log, read_file(log).substr(0, kHeader + kRec) + std::string(kRec, '\0'));
  f = open();
  BOOST_TEST(!f->trusted());
}

BOOST_AUTO_TEST_CASE(missing_or_foreign_files_make_the_feed_untrusted) {
  const auto make = [&] {
    stdfs::remove_all(dir);
    auto f = open_trusted();
    mark_block(*f, 0, 2);
  };
  const auto expect_untrusted = [&](std::string_view why) {
    auto f = open();
    BOOST_TEST(!f->trusted(), why);
    BOOST_TEST(contains(f->untrusted_reason(), why), f->untrusted_reason());
    BOOST_TEST(begin(*f).scan_required);
  };

  make();
  stdfs::remove(log);
  expect_untrusted("change.log is missing");

  make();
  stdfs::remove(marker);
  expect_untrusted("marker file change.feed is missing");

  make();
  write_file(marker, read_file(marker).substr(0, 20));
  expect_untrusted("marker file change.feed is damaged");

  make();
  {
    std::string bytes = read_file(log);
    bytes[8] = 2;  // format version 2 of the log
    write_file(log, bytes);
  }
  expect_untrusted("unknown version 2");

  // The log of another generation of the feed (a restored backup, say) is not replayed.
  make();
  const std::string old_log = read_file(log);
  {
    auto f = open();
    BOOST_REQUIRE(f->invalidate("test").ok());
    const FeedCycle rescan = begin(*f);
    BOOST_REQUIRE(rescan.scan_required);
    BOOST_REQUIRE(f->ack_cycle(rescan.epoch).ok());
  }
  write_file(log, old_log);
  expect_untrusted("another generation");
}

BOOST_AUTO_TEST_CASE(a_geometry_change_makes_the_feed_untrusted_for_good) {
  {
    auto f = open_trusted();
    mark_block(*f, 0, 2);
  }
  const std::vector<uint64_t> grown{kDisk0 + kBs, kDisk1};
  {
    auto f = open_with(grown);
    BOOST_TEST(!f->trusted());
    BOOST_TEST(contains(f->untrusted_reason(), "disk geometry changed"), f->untrusted_reason());
    mark(*f, 0, kDisk0, kBs);  // valid in the new geometry; not logged
  }
  // Back to the old sizes: the writes made meanwhile were not logged, so it stays untrusted.
  auto f = open();
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "disk geometry changed"), f->untrusted_reason());
}

BOOST_AUTO_TEST_CASE(invalidate_is_durable_and_a_scan_cycle_restores_trust) {
  {
    auto f = open_trusted();
    mark_block(*f, 0, 2);
    BOOST_TEST(f->invalidate("disks rewritten by failover").ok());
    BOOST_TEST(!f->trusted());
    BOOST_TEST((f->pending() == sets({}, {})));
  }
  auto f = open();
  BOOST_TEST(!f->trusted());
  BOOST_TEST(f->untrusted_reason() == "invalidated: disks rewritten by failover");
  const FeedCycle scan = begin(*f);
  BOOST_TEST(scan.scan_reason == "invalidated: disks rewritten by failover");
  // Invalidated while the scan is in flight: its acknowledgement no longer restores trust.
  BOOST_TEST(f->invalidate("again").ok());
  BOOST_TEST(f->ack_cycle(scan.epoch).ok());
  BOOST_TEST(!f->trusted());
  BOOST_TEST(f->untrusted_reason() == "invalidated: again");
}

BOOST_AUTO_TEST_CASE(compaction_keeps_unacknowledged_epochs_exactly) {
  ChangeFeedOptions o;
  o.compact_threshold_bytes = 2048;
  auto f = open_trusted(o);
  for (uint64_t b = 0; b < 60; ++b) mark_block(*f, 1, b);  // 60 records, one run
  const FeedCycle c1 = begin(*f);
  BOOST_TEST((c1.blocks == sets({}, {{0, 60}})));
  for (uint64_t b : {100, 102, 104}) mark_block(*f, 1, b);  // during the cycle
  BOOST_TEST(f->stats().log_bytes == kHeader + 63 * kRec);
  BOOST_TEST(f->ack_cycle(c1.epoch).ok());
  BOOST_TEST(f->stats().compactions == 1u);
  BOOST_TEST(f->stats().log_bytes == kHeader + 3 * kRec);  // only the live epoch is left
  f.reset();
  f = open(o);
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  const DiskBlockSets after_ack = sets({}, {{100, 1}, {102, 1}, {104, 1}});
  BOOST_TEST((f->pending() == after_ack));

  // Abort: the cycle's blocks and the ones marked meanwhile are all kept through compaction.
  for (uint64_t b = 140; b < 200; ++b) mark_block(*f, 1, b);
  const FeedCycle c2 = begin(*f);
  mark_block(*f, 0, 3);
  BOOST_TEST(f->abort_cycle(c2.epoch).ok());
  BOOST_TEST(f->stats().compactions == 1u);
  BOOST_TEST(f->stats().log_bytes == kHeader + 5 * kRec);
  DiskBlockSets want = after_ack;
  want[1].insert(140, 60);
  want[0].insert(3, 1);
  BOOST_TEST((f->pending() == want));
  f.reset();
  f = open(o);
  BOOST_TEST(f->trusted(), f->untrusted_reason());
  BOOST_TEST((f->pending() == want));
  const FeedCycle c3 = begin(*f);
  BOOST_TEST((c3.blocks == want));
  BOOST_TEST(f->ack_cycle(c3.epoch).ok());
  f.reset();
  BOOST_TEST((open(o)->pending() == sets({}, {})));
}

BOOST_AUTO_TEST_CASE(the_log_stays_bounded_over_many_cycles) {
  ChangeFeedOptions o;
  o.compact_threshold_bytes = 1024;
  auto f = open_trusted(o);
  uint64_t max_log = 0;
  for (int cycle = 0; cycle < 20; ++cycle) {
    for (int i = 0; i < 5; ++i) mark_block(*f, 1, static_cast<uint64_t>(cycle * 10 + 2 * i));
    const FeedCycle c = begin(*f);
    BOOST_TEST(c.blocks[1].block_count() == 5u);
    mark_block(*f, 0, static_cast<uint64_t>(cycle % 11));  // one write during each cycle
    BOOST_TEST(f->ack_cycle(c.epoch).ok());
    max_log = std::max(max_log, f->stats().log_bytes);
  }
  BOOST_TEST(f->stats().compactions >= 2u);
  BOOST_TEST(max_log <= o.compact_threshold_bytes + 7 * kRec);
  const DiskBlockSets pending = f->pending();
  f.reset();
  BOOST_TEST((open(o)->pending() == pending));
}

BOOST_AUTO_TEST_CASE(a_second_feed_on_the_same_directory_is_refused) {
  auto f = open();
  auto g = ChangeFeed::open(dir, sizes, kBs);
  BOOST_TEST(g.status().number() == 32774u, g.status().ToString());
  f.reset();
  BOOST_TEST(ChangeFeed::open(dir, sizes, kBs).ok());
}

BOOST_AUTO_TEST_CASE(bad_geometry_is_refused_at_open) {
  BOOST_TEST(ChangeFeed::open(dir, {}, kBs).status().number() == 32773u);
  BOOST_TEST(ChangeFeed::open(dir, sizes, 1000).status().number() == 32773u);
  BOOST_TEST(ChangeFeed::open(dir, {uint64_t{1} << 60}, kBs).status().number() == 32773u);
  BOOST_TEST(!stdfs::exists(dir));
}

// RLIMIT_FSIZE makes writes past a size fail with EFBIG, for root too: a way to make the
// log's write fail for real. SIGXFSZ is ignored meanwhile so the failure is an error code.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGXFSZ, &ign, &old_action_);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::sigaction(SIGXFSZ, &old_action_, nullptr);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  struct sigaction old_action_ {};
};

BOOST_AUTO_TEST_CASE(a_failed_log_write_turns_the_feed_untrusted_instead_of_losing_a_range) {
  auto f = open_trusted();
  for (uint64_t b = 0; b < 20; b += 2) mark_block(*f, 1, b);
  BOOST_REQUIRE(f->stats().log_bytes == kHeader + 10 * kRec);
  {
    // The next record cannot be written completely, but the (smaller) marker can: the range
    // is covered by the now durable "untrusted" verdict, so the call succeeds.
    FileSizeLimit limit(kHeader + 10 * kRec + 8);
    BOOST_TEST(f->mark_dirty(1, 100 * kBs, 1).ok());
  }
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "change.log could not be written"),
             f->untrusted_reason());
  BOOST_TEST(f->mark_dirty(1, 101 * kBs, 1).ok());
  f.reset();
  f = open();
  BOOST_TEST(!f->trusted());
  BOOST_TEST(contains(f->untrusted_reason(), "change.log could not be written"),
             f->untrusted_reason());
  f.reset();

  // Neither the record nor the marker can be written: callers are told.
  stdfs::remove_all(dir);
  f = open_trusted();
  mark_block(*f, 0, 1);
  {
    FileSizeLimit limit(16);
    Status st = f->mark_dirty(0, 2 * kBs, 1);
    BOOST_TEST(st.number() == 32768u, st.ToString());
    BOOST_TEST(contains(st.message(), "not tracked"), st.message());
    BOOST_TEST(f->mark_dirty(0, 3 * kBs, 1).number() == 32768u);
  }
  // Once the verdict can be recorded, calls succeed again and a scan restores trust.
  BOOST_TEST(f->invalidate("log write failed").ok());
  BOOST_TEST(f->mark_dirty(0, 3 * kBs, 1).ok());
  const FeedCycle scan = begin(*f);
  BOOST_TEST(scan.scan_required);
  BOOST_TEST(f->ack_cycle(scan.epoch).ok());
  BOOST_TEST(f->trusted());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
