// CycleHistory against real files: round trips (large indexes, empty lists, varying disk
// counts), replacement, the listing, pruning, union_since over a range of cycles, and
// detection of every kind of damage: missing cycle (32779 naming it), flipped byte, truncation,
// a file under the wrong name, another block size, crafted files whose checksum is right but
// whose content is not (32768 "corrupt" naming the cycle), never a partial answer; the
// two-phase put: invisible until committed, nothing left when dropped or after a crash.
#include "core/store/cycle_history.h"

#include <xxhash.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/store/change_codec.h"
#include "store/temp_dir.h"

namespace vmrepl {
namespace {

namespace stdfs = std::filesystem;

constexpr uint32_t kBs = 64 * 1024;

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
  std::string dir = tmp / "cycles";

  std::unique_ptr<CycleHistory> open(uint32_t block_size = kBs) {
    auto h = CycleHistory::open(dir, block_size);
    BOOST_REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    return std::move(h).value();
  }
  std::string path(uint64_t seq) const { return dir + "/" + CycleHistory::file_name(seq); }
  // The directory's entries, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

void put(CycleHistory& h, uint64_t seq, const DiskBlockSets& disks) {
  Status st = h.put(seq, disks);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
}

DiskBlockSets get(CycleHistory& h, uint64_t seq) {
  auto r = h.get(seq);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

// A file in the history's format with a correct checksum around `body` (after the header).
std::string craft(uint64_t seq, uint32_t disk_count, const std::string& body) {
  std::string out("VMRCYCL\0", 8);
  codec::put_u32(out, CycleHistory::kFormatVersion);
  codec::put_u32(out, kBs);
  codec::put_u64(out, seq);
  codec::put_u32(out, disk_count);
  codec::put_u32(out, 0);
  out += body;
  codec::put_u64(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

BOOST_FIXTURE_TEST_SUITE(cycle_history_tests, Fixture)

BOOST_AUTO_TEST_CASE(lists_round_trip_exactly) {
  auto h = open();
  const uint64_t big = uint64_t{1} << 40;
  const DiskBlockSets lists = {
      BlockSet{{0, 3}, {7, 1}, {1000000, 10}},
      BlockSet{},
      BlockSet{{big, 3}, {UINT64_MAX - 5, 5}},
  };
  put(*h, 5, lists);
  BOOST_TEST((get(*h, 5) == lists));
  put(*h, 6, {});  // a cycle that changed nothing
  BOOST_TEST(get(*h, 6).empty());
  // Replaced, not merged.
  put(*h, 5, {BlockSet{{1, 1}}});
  BOOST_TEST((get(*h, 5) == DiskBlockSets{BlockSet{{1, 1}}}));
  // Another instance (a restart) reads the same.
  h.reset();
  BOOST_TEST((get(*open(), 5) == DiskBlockSets{BlockSet{{1, 1}}}));
  // Delta-encoded: a run costs a few bytes, not a u64 per block.
  BOOST_TEST(stdfs::file_size(path(5)) < 64u);
}

BOOST_AUTO_TEST_CASE(random_lists_round_trip) {
  auto h = open();
  std::mt19937_64 rng(11);
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    DiskBlockSets lists(1 + rng() % 4);
    for (auto& s : lists) {
      const int runs = static_cast<int>(rng() % 200);
      for (int i = 0; i < runs; ++i) {
        const uint64_t first = rng() % (uint64_t{1} << (8 + rng() % 48));
        s.insert(first, 1 + rng() % 100);
      }
    }
    put(*h, seq, lists);
    BOOST_TEST((get(*h, seq) == lists), "seq " << seq);
  }
}

BOOST_AUTO_TEST_CASE(a_missing_list_is_file_not_found_naming_the_cycle) {
  auto h = open();
  auto r = h->get(42);
  BOOST_TEST(r.status().number() == 32779u, r.status().ToString());
  BOOST_TEST(contains(r.status().message(), "cycle 42"), r.status().message());
}

BOOST_AUTO_TEST_CASE(damaged_files_are_reported_corrupt_never_partially_read) {
  auto h = open();
  DiskBlockSets lists{BlockSet{{10, 5}, {100, 1}}, BlockSet{{3, 2}}};
  put(*h, 7, lists);
  const std::string good = read_file(path(7));

  const auto expect_corrupt = [&](const std::string& content, std::string_view detail) {
    write_file(path(7), content);
    auto r = h->get(7);
    BOOST_TEST(r.status().number() == 32768u, r.status().ToString());
    BOOST_TEST(contains(r.status().message(), "cycle 7: corrupt"), r.status().message());
    BOOST_TEST(contains(r.status().message(), detail), r.status().message());
  };
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    write_file(path(7), bad);
    auto r = h->get(7);
    BOOST_TEST(r.status().number() == 32768u,
               "flipped byte " << i << ": " << r.status().ToString());
  }
  for (std::size_t n = 0; n < good.size(); ++n) {
    write_file(path(7), good.substr(0, n));
    BOOST_TEST(!h->get(7).ok(), "truncated to " << n << " bytes");
  }
  expect_corrupt(good.substr(0, good.size() / 2) + good.substr(good.size() / 2 + 1), "checksum");
  expect_corrupt("", "too short");
  // Correct checksums around content that does not decode.
  std::string body;
  codec::put_varint(body, 1000);  // 1000 runs announced, none present
  expect_corrupt(craft(7, 1, body), "bad run count");
  body.clear();
  codec::put_varint(body, 2);
  codec::put_varint(body, UINT64_MAX - 1);  // first run ends at 2^64 - 1 + ...
  codec::put_varint(body, 5);
  expect_corrupt(craft(7, 1, body), "run overflows");
  expect_corrupt(craft(7, 1, std::string()), "bad run count");
  body.clear();
  codec::put_varint(body, 0);
  expect_corrupt(craft(7, 1, body + "x"), "trailing");
  expect_corrupt(craft(7, 5000, std::string()), "bad header field");
  expect_corrupt(craft(8, 0, std::string()), "holds cycle 8");  // a file under the wrong name

  // Restored: readable again.
  write_file(path(7), good);
  BOOST_TEST((get(*h, 7) == lists));
}

BOOST_AUTO_TEST_CASE(a_list_recorded_with_another_block_size_is_refused) {
  put(*open(), 3, {BlockSet{{1, 1}}});
  auto h = open(4096);
  auto r = h->get(3);
  BOOST_TEST(r.status().number() == 32768u);
  BOOST_TEST(contains(r.status().message(), "recorded with block size 65536"),
             r.status().message());
  BOOST_TEST(!contains(r.status().message(), "corrupt"), r.status().message());
  BOOST_TEST(CycleHistory::open(dir, 1000).status().number() == 32773u);
}

BOOST_AUTO_TEST_CASE(seqs_lists_only_cycle_files_and_open_removes_leftovers) {
  {
    auto h = open();
    for (uint64_t s : {12, 3, 7, 100}) put(*h, s, {});
  }
  write_file(dir + "/" + CycleHistory::file_name(9) + ".tmp", "half written");
  write_file(dir + "/notes.txt", "not ours");
  write_file(dir + "/cycle-12.cbl", "short name: not ours");
  auto h = open();
  BOOST_TEST(!stdfs::exists(dir + "/" + CycleHistory::file_name(9) + ".tmp"));
  BOOST_TEST(stdfs::exists(dir + "/notes.txt"));
  auto seqs = h->seqs();
  BOOST_REQUIRE(seqs.ok());
  BOOST_TEST((*seqs == std::vector<uint64_t>{3, 7, 12, 100}));
  BOOST_TEST(CycleHistory::file_name(42) == "cycle-00000000000000000042.cbl");
}

BOOST_AUTO_TEST_CASE(prune_keeps_the_newest) {
  auto h = open();
  for (uint64_t s = 1; s <= 8; ++s) put(*h, s, {BlockSet{{s, 1}}});
  BOOST_TEST(h->prune(10).ok());
  BOOST_TEST(h->seqs()->size() == 8u);
  BOOST_TEST(h->prune(3).ok());
  BOOST_TEST((*h->seqs() == std::vector<uint64_t>{6, 7, 8}));
  BOOST_TEST((get(*h, 8) == DiskBlockSets{BlockSet{{8, 1}}}));
  BOOST_TEST(h->get(5).status().number() == 32779u);
  BOOST_TEST(h->prune(0).ok());
  BOOST_TEST(h->seqs()->empty());
}

BOOST_AUTO_TEST_CASE(union_since_unites_every_cycle_after_k_or_names_the_first_gap) {
  auto h = open();
  put(*h, 1, {BlockSet{{0, 1}}});
  put(*h, 2, {BlockSet{{1, 1}}});
  put(*h, 3, {BlockSet{{2, 2}}});
  put(*h, 4, {BlockSet{{10, 1}}, BlockSet{{5, 1}}});  // the VM gained a disk
  put(*h, 5, {BlockSet{{3, 2}}});
  auto u = h->union_since(2, 5);
  BOOST_REQUIRE_MESSAGE(u.ok(), u.status().ToString());
  BOOST_TEST((*u == DiskBlockSets{BlockSet{{2, 3}, {10, 1}}, BlockSet{{5, 1}}}));
  BOOST_TEST((*h->union_since(0, 1) == DiskBlockSets{BlockSet{{0, 1}}}));
  BOOST_TEST(h->union_since(5, 5)->empty());
  BOOST_TEST(h->union_since(6, 5).status().number() == 32773u);

  // The newest list is missing: only `through` can tell.
  auto newest = h->union_since(2, 6);
  BOOST_TEST(newest.status().number() == 32779u);
  BOOST_TEST(contains(newest.status().message(), "cycle 6:"), newest.status().message());

  // A gap in the middle names the first missing cycle.
  stdfs::remove(path(4));
  stdfs::remove(path(5));
  auto gap = h->union_since(2, 5);
  BOOST_TEST(gap.status().number() == 32779u);
  BOOST_TEST(contains(gap.status().message(), "cycle 4:"), gap.status().message());
  BOOST_TEST(h->union_since(1, 3).ok());  // the range before the gap is still whole

  // A damaged list names its cycle, too.
  std::string bytes = read_file(path(3));
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  write_file(path(3), bytes);
  auto bad = h->union_since(1, 3);
  BOOST_TEST(bad.status().number() == 32768u);
  BOOST_TEST(contains(bad.status().message(), "cycle 3: corrupt"), bad.status().message());

  // Pruned history cannot answer for the cycles it no longer has.
  BOOST_TEST(h->prune(1).ok());
  BOOST_TEST(h->union_since(0, 3).status().number() == 32779u);
}

BOOST_AUTO_TEST_CASE(a_prepared_put_is_seen_only_once_committed_and_leaves_nothing_when_dropped) {
  using Names = std::vector<std::string>;
  const std::string f1 = CycleHistory::file_name(1), f2 = CycleHistory::file_name(2);
  auto h = open();
  put(*h, 1, {BlockSet{{1, 1}}});  // its temp file was the history's first (.0.)
  const std::string tmp2 = "cycle-00000000000000000002.1.cbl.tmp";

  auto p = h->prepare_put(2, {BlockSet{{5, 3}}, BlockSet{{0, 2}}});
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  // Written (and fsynced) under a temp name of its own, which no reader takes for a list.
  BOOST_TEST((names() == Names{f1, tmp2}));
  BOOST_TEST(h->get(2).status().number() == 32779u);
  BOOST_TEST((*h->seqs() == std::vector<uint64_t>{1}));
  BOOST_TEST(h->union_since(1, 2).status().number() == 32779u);

  BOOST_TEST(p->commit().ok());
  BOOST_TEST((names() == Names{f1, f2}));
  BOOST_TEST((get(*h, 2) == DiskBlockSets{BlockSet{{5, 3}}, BlockSet{{0, 2}}}));
  BOOST_TEST((*h->seqs() == std::vector<uint64_t>{1, 2}));
  BOOST_TEST(p->commit().number() == 32775u);  // nothing left to commit

  // Dropped before commit: no temp file, and the committed list of the cycle is untouched.
  {
    auto dropped = h->prepare_put(2, {BlockSet{{9, 1}}});
    BOOST_REQUIRE(dropped.ok());
    BOOST_TEST((names() == Names{f1, "cycle-00000000000000000002.2.cbl.tmp", f2}));  // sorted
  }
  BOOST_TEST((names() == Names{f1, f2}));
  BOOST_TEST((get(*h, 2) == DiskBlockSets{BlockSet{{5, 3}}, BlockSet{{0, 2}}}));
  {
    auto dropped = h->prepare_put(3, {BlockSet{{9, 1}}});
    BOOST_REQUIRE(dropped.ok());
  }
  BOOST_TEST(h->get(3).status().number() == 32779u);
  BOOST_TEST((*h->seqs() == std::vector<uint64_t>{1, 2}));

  // Two puts of one cycle pending at once use two temp files; the last committed wins. A
  // moved-from PendingPut has nothing to commit, and moving over a pending one drops it.
  auto a = h->prepare_put(4, {BlockSet{{40, 1}}});
  auto b = h->prepare_put(4, {BlockSet{{41, 1}}});
  auto c = h->prepare_put(4, {BlockSet{{42, 1}}});
  BOOST_REQUIRE(a.ok() && b.ok() && c.ok());
  BOOST_TEST(names().size() == 5u);
  CycleHistory::PendingPut moved = std::move(*b);
  BOOST_TEST(b->commit().number() == 32775u);
  BOOST_TEST(moved.commit().ok());
  BOOST_TEST(a->commit().ok());
  BOOST_TEST((get(*h, 4) == DiskBlockSets{BlockSet{{40, 1}}}));
  moved = std::move(*c);  // moved had been committed: nothing of it is dropped
  BOOST_TEST(names().size() == 4u);
  moved = CycleHistory::PendingPut();  // drops c's temp file
  BOOST_TEST((names() == Names{f1, f2, CycleHistory::file_name(4)}));
  BOOST_TEST((get(*h, 4) == DiskBlockSets{BlockSet{{40, 1}}}));
}

BOOST_AUTO_TEST_CASE(a_temp_file_left_by_a_crash_is_removed_by_open) {
  auto h = open();
  put(*h, 1, {BlockSet{{1, 1}}});
  auto p = h->prepare_put(2, {BlockSet{{2, 1}}});
  BOOST_REQUIRE(p.ok());
  const std::string tmp2 = "cycle-00000000000000000002.1.cbl.tmp";
  BOOST_TEST((names() == std::vector<std::string>{CycleHistory::file_name(1), tmp2}));
  // The process "dies" with the put prepared and the next one opens the history: a second
  // CycleHistory on the directory stands for it (the first is only used to see its put fail).
  auto next = open();
  BOOST_TEST((names() == std::vector<std::string>{CycleHistory::file_name(1)}));
  BOOST_TEST(next->get(2).status().number() == 32779u);
  BOOST_TEST((*next->seqs() == std::vector<uint64_t>{1}));
  BOOST_TEST((get(*next, 1) == DiskBlockSets{BlockSet{{1, 1}}}));
  // The dead process's put finds its temp file gone.
  const Status late = p->commit();
  BOOST_TEST(late.number() == 32768u);
  BOOST_TEST(contains(late.message(), "changed-block list of cycle 2"), late.message());
  BOOST_TEST(next->get(2).status().number() == 32779u);
}

BOOST_AUTO_TEST_CASE(too_many_disks_are_refused) {
  auto h = open();
  BOOST_TEST(h->put(1, DiskBlockSets(CycleHistory::kMaxDisks + 1)).number() == 32773u);
  BOOST_TEST(h->prepare_put(1, DiskBlockSets(CycleHistory::kMaxDisks + 1)).status().number() ==
             32773u);
  BOOST_TEST(h->get(1).status().number() == 32779u);
  BOOST_TEST(names().empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
