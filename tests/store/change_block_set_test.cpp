// BlockSet: runs merge on overlap and adjacency, coverage queries, the uncovered span a mark
// still has to record, and a randomized comparison against a std::set of block indexes.
#include "core/store/change_block_set.h"

#include <boost/test/unit_test.hpp>
#include <random>
#include <set>

namespace vmrepl {
namespace {

BOOST_AUTO_TEST_SUITE(change_block_set_tests)

BOOST_AUTO_TEST_CASE(insert_merges_overlapping_and_adjacent_runs) {
  BlockSet s;
  s.insert(10, 5);  // 10-14
  s.insert(20, 5);  // 20-24
  BOOST_TEST(s.run_count() == 2u);
  s.insert(15, 5);  // 15-19 touches both neighbours: one run 10-24
  BOOST_TEST(s.run_count() == 1u);
  BOOST_TEST(s.block_count() == 15u);
  BOOST_TEST((s.runs() == std::vector<BlockRun>{{10, 15}}));
  s.insert(0, 3);
  s.insert(5, 1);
  s.insert(2, 30);  // swallows everything
  BOOST_TEST((s.runs() == std::vector<BlockRun>{{0, 32}}));
  BOOST_TEST(s.block_count() == 32u);
  s.insert(4, 0);  // empty insert adds nothing
  BOOST_TEST(s.block_count() == 32u);
  BOOST_TEST(to_string(BlockSet{{0, 3}, {7, 1}, {9, 3}}) == "{0-2, 7, 9-11}");
}

BOOST_AUTO_TEST_CASE(contains_and_uncovered_span) {
  const BlockSet s{{10, 5}, {20, 5}};  // 10-14, 20-24
  BOOST_TEST(s.contains(10));
  BOOST_TEST(s.contains(14));
  BOOST_TEST(!s.contains(15));
  BOOST_TEST(!s.contains(9));
  BOOST_TEST(s.contains_all(11, 3));
  BOOST_TEST(!s.contains_all(12, 5));
  BOOST_TEST(s.contains_all(0, 0));
  BOOST_TEST(!s.uncovered_span(10, 5).has_value());
  BOOST_TEST((s.uncovered_span(12, 10) == BlockRun{15, 5}));   // both ends known
  BOOST_TEST((s.uncovered_span(5, 8) == BlockRun{5, 5}));      // right end known
  BOOST_TEST((s.uncovered_span(22, 10) == BlockRun{25, 7}));   // left end known
  BOOST_TEST((s.uncovered_span(8, 20) == BlockRun{8, 20}));    // middle known only
  BOOST_TEST((s.uncovered_span(100, 1) == BlockRun{100, 1}));  // nothing known
}

BOOST_AUTO_TEST_CASE(matches_a_set_of_indexes_under_random_inserts) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    BlockSet s, other;
    std::set<uint64_t> model;
    for (int i = 0; i < 60; ++i) {
      const uint64_t first = rng() % 500, count = 1 + rng() % 20;
      (i % 3 ? s : other).insert(first, count);
      for (uint64_t b = first; b < first + count; ++b) model.insert(b);
    }
    s.insert(other);
    BOOST_TEST(s.block_count() == model.size());
    BOOST_TEST((s.to_indexes() == std::vector<uint64_t>(model.begin(), model.end())));
    for (int q = 0; q < 100; ++q) {
      const uint64_t first = rng() % 520, count = 1 + rng() % 30;
      bool all = true;
      for (uint64_t b = first; b < first + count; ++b) all = all && model.count(b) == 1;
      BOOST_TEST(s.contains_all(first, count) == all);
      const auto span = s.uncovered_span(first, count);
      BOOST_TEST(span.has_value() == !all);
      if (span) {
        // Every uncovered block lies in the span, and the span's ends are uncovered.
        for (uint64_t b = first; b < first + count; ++b)
          if (model.count(b) == 0) BOOST_TEST((b >= span->first && b < span->end()));
        BOOST_TEST(model.count(span->first) == 0u);
        BOOST_TEST(model.count(span->end() - 1) == 0u);
      }
    }
    // Runs are sorted, disjoint and never adjacent.
    const auto runs = s.runs();
    for (std::size_t i = 1; i < runs.size(); ++i) BOOST_TEST(runs[i - 1].end() < runs[i].first);
  }
}

BOOST_AUTO_TEST_CASE(merge_into_grows_to_the_wider_list) {
  DiskBlockSets a{BlockSet{{1, 1}}};
  merge_into(a, DiskBlockSets{BlockSet{{2, 1}}, BlockSet{{5, 2}}});
  BOOST_REQUIRE(a.size() == 2u);
  BOOST_TEST(a[0] == (BlockSet{{1, 2}}));
  BOOST_TEST(a[1] == (BlockSet{{5, 2}}));
}

BOOST_AUTO_TEST_CASE(units_seen_in_blocks_give_each_block_once_with_its_dirty_bytes) {
  // 4 KiB units in 64 KiB blocks (16 units each) of a disk whose last block is 10 KiB.
  const uint32_t unit = 4096, bs = 65536;
  const uint64_t disk = 3 * 65536 + 10240;  // blocks 0..3, units 0..50
  // A 64 KiB write at unit 4 spans blocks 0 and 1; unit 20 alone in block 1; block 3's
  // short tail; block 2 untouched.
  const BlockSet units{{4, 16}, {25, 1}, {48, 3}};
  BOOST_TEST((coarsen(units, unit, bs) == BlockSet{{0, 2}, {3, 1}}));
  const auto d = dirty_blocks(units, unit, bs, disk);
  BOOST_TEST_REQUIRE(d.size() == 3u);
  BOOST_TEST((d[0] == DirtyBlock{0, 4 * 4096, 65536}));
  // Block 1: units 16..19 from the write, 25 alone: the hull [0, 26 x 4 KiB - 64 KiB).
  BOOST_TEST((d[1] == DirtyBlock{1, 0, 10 * 4096}));
  // Block 3: units 48..50, the last one 2 KiB short of a unit (the disk ends there).
  BOOST_TEST((d[2] == DirtyBlock{3, 0, 10240}));
  // One run over many blocks: every block whole.
  const auto all = dirty_blocks(BlockSet{{0, 51}}, unit, bs, disk);
  BOOST_TEST_REQUIRE(all.size() == 4u);
  for (uint64_t b = 0; b < 3; ++b) BOOST_TEST((all[b] == DirtyBlock{b, 0, 65536}));
  BOOST_TEST((all[3] == DirtyBlock{3, 0, 10240}));
  // Unit and block of one size: the blocks themselves.
  BOOST_TEST((coarsen(units, bs, bs) == units));
  BOOST_TEST(dirty_blocks(BlockSet{}, unit, bs, disk).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
