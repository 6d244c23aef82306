// MerkleTree: roots computed by hand, promotion of odd nodes, the empty and one-leaf cases,
// incremental update == rebuild, and a top-down diff that finds exactly the changed leaves
// while visiting O(k log n) nodes.
#include "core/blocks/merkle.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "blocks/test_files_helper.h"

namespace vmrepl {
namespace {

BlockHash leaf(HashAlgorithm alg, uint64_t i) {
  const std::string s = "leaf-" + std::to_string(i);
  return hash_bytes(alg, std::as_bytes(std::span(s.data(), s.size())));
}

std::vector<BlockHash> leaves(HashAlgorithm alg, uint64_t n, uint64_t salt = 0) {
  std::vector<BlockHash> v;
  for (uint64_t i = 0; i < n; ++i) v.push_back(leaf(alg, i + salt * 1000003));
  return v;
}

void require_same_nodes(const MerkleTree& a, const MerkleTree& b) {
  BOOST_REQUIRE(a.level_count() == b.level_count());
  for (std::size_t l = 0; l < a.level_count(); ++l) {
    BOOST_REQUIRE(a.level_size(l) == b.level_size(l));
    for (uint64_t j = 0; j < a.level_size(l); ++j) {
      if (!(a.node(l, j) == b.node(l, j))) BOOST_FAIL("node " << l << "/" << j << " differs");
    }
  }
  BOOST_TEST(a.root() == b.root());
}

std::size_t depth(uint64_t n) {
  std::size_t d = 0;
  while ((uint64_t{1} << d) < n) ++d;
  return d;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(merkle_tests)

BOOST_AUTO_TEST_CASE(empty_tree_root_is_the_hash_of_the_empty_string) {
  const MerkleTree t(HashAlgorithm::Xxh3_128, {});
  BOOST_TEST(t.leaf_count() == 0u);
  BOOST_TEST(t.level_count() == 0u);
  BOOST_TEST(t.root() == hash_bytes(HashAlgorithm::Xxh3_128, {}));
  BOOST_TEST(t.root().to_hex(HashAlgorithm::Xxh3_128) == "99aa06d3014798d86001c324468d497f");
  const MerkleTree s(HashAlgorithm::Sha256, {});
  BOOST_TEST(s.root().to_hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(MerkleTree::from_index(BlockIndex()).root() == t.root());
}

BOOST_AUTO_TEST_CASE(roots_of_small_trees_computed_by_hand) {
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    const auto L = leaves(alg, 7);
    auto c = [&](const BlockHash& l, const BlockHash& r) { return combine(alg, l, r); };
    BOOST_TEST(MerkleTree(alg, {L[0]}).root() == L[0]);
    BOOST_TEST(MerkleTree(alg, {L[0], L[1]}).root() == c(L[0], L[1]));
    // 3 leaves: L2 is promoted to level 1.
    BOOST_TEST(MerkleTree(alg, {L[0], L[1], L[2]}).root() == c(c(L[0], L[1]), L[2]));
    BOOST_TEST(MerkleTree(alg, {L[0], L[1], L[2], L[3]}).root() ==
               c(c(L[0], L[1]), c(L[2], L[3])));
    // 5 leaves: levels 5, 3, 2, 1; L4 is promoted twice.
    const MerkleTree t5(alg, {L[0], L[1], L[2], L[3], L[4]});
    BOOST_TEST(t5.level_count() == 4u);
    BOOST_TEST(t5.level_size(1) == 3u);
    BOOST_TEST(t5.level_size(2) == 2u);
    BOOST_TEST(t5.node(1, 2) == L[4]);
    BOOST_TEST(t5.node(2, 1) == L[4]);
    BOOST_TEST(t5.root() == c(c(c(L[0], L[1]), c(L[2], L[3])), L[4]));
    // 7 leaves: (01)(23)(45)6 -> ((01)(23))((45)6) -> root.
    const MerkleTree t7(alg, std::vector<BlockHash>(L.begin(), L.end()));
    BOOST_TEST(t7.root() == c(c(c(L[0], L[1]), c(L[2], L[3])), c(c(L[4], L[5]), L[6])));
  }
}

BOOST_AUTO_TEST_CASE(tree_from_index_uses_the_entry_hashes) {
  auto x = BlockIndex::create(HashAlgorithm::Xxh3_128, 4096, 3 * 4096 + 1);
  BOOST_REQUIRE(x.ok());
  x->set_from_bytes(1, testing::random_bytes(4096, 5));
  const MerkleTree t = MerkleTree::from_index(*x);
  BOOST_TEST(t.leaf_count() == 4u);
  const auto& e = x->entries();
  BOOST_TEST(t.root() == combine(HashAlgorithm::Xxh3_128,
                                 combine(HashAlgorithm::Xxh3_128, e[0].hash, e[1].hash),
                                 combine(HashAlgorithm::Xxh3_128, e[2].hash, e[3].hash)));
}

BOOST_AUTO_TEST_CASE(merkle_root_without_a_tree_equals_the_trees_root) {
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    std::vector<uint64_t> sizes;
    for (uint64_t n = 0; n <= 300; ++n) sizes.push_back(n);
    for (uint64_t n : {511u, 512u, 513u, 1023u, 4097u, 65535u, 65537u}) sizes.push_back(n);
    for (uint64_t n : sizes) {
      const auto L = leaves(alg, n, n);
      const BlockHash want = MerkleTree(alg, L).root();
      BOOST_TEST(merkle_root(alg, L) == want, "n=" << n);
    }
  }
  // From an index: the same as the tree built from it, partial last block and zeros included.
  auto x = BlockIndex::create(HashAlgorithm::Xxh3_128, 4096, 37 * 4096 + 100);
  BOOST_REQUIRE(x.ok());
  for (uint64_t i : {0u, 5u, 36u, 37u}) x->set_from_bytes(i, testing::random_bytes(x->block_length(i), 7 + i));
  BOOST_TEST(merkle_root(*x) == MerkleTree::from_index(*x).root());
  BOOST_TEST(merkle_root(BlockIndex()) == MerkleTree::from_index(BlockIndex()).root());
}

BOOST_AUTO_TEST_CASE(incremental_update_equals_rebuild) {
  std::mt19937_64 rng(42);
  for (uint64_t n : {1u, 2u, 3u, 5u, 64u, 1000u, 1023u, 1024u, 1025u, 4097u}) {
    for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
      auto current = leaves(alg, n);
      MerkleTree t(alg, current);
      for (int round = 0; round < 4; ++round) {
        std::vector<MerkleTree::LeafChange> changes;
        const uint64_t k = 1 + rng() % std::min<uint64_t>(n, 40);
        for (uint64_t i = 0; i < k; ++i) {
          const uint64_t at = rng() % n;
          changes.push_back({at, leaf(alg, rng())});
          current[at] = changes.back().hash;  // a repeated index: the later change wins
        }
        BOOST_REQUIRE(t.update(changes).ok());
        require_same_nodes(t, MerkleTree(alg, current));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(update_out_of_range_changes_nothing) {
  MerkleTree t(HashAlgorithm::Xxh3_128, leaves(HashAlgorithm::Xxh3_128, 10));
  const BlockHash before = t.root();
  const std::vector<MerkleTree::LeafChange> changes = {{2, leaf(HashAlgorithm::Xxh3_128, 77)},
                                                        {10, leaf(HashAlgorithm::Xxh3_128, 78)}};
  const Status s = t.update(changes);
  BOOST_TEST(s.code() == Code::InvalidParameter);
  BOOST_TEST(t.root() == before);
  BOOST_TEST(t.node(0, 2) == leaf(HashAlgorithm::Xxh3_128, 2));
}

BOOST_AUTO_TEST_CASE(update_from_index_follows_the_index) {
  auto x = BlockIndex::create(HashAlgorithm::Xxh3_128, 4096, 100 * 4096);
  BOOST_REQUIRE(x.ok());
  MerkleTree t = MerkleTree::from_index(*x);
  const std::vector<uint64_t> changed = {0, 17, 99};
  for (uint64_t i : changed) x->set_from_bytes(i, testing::random_bytes(4096, i + 1));
  BOOST_REQUIRE(t.update_from(*x, changed).ok());
  require_same_nodes(t, MerkleTree::from_index(*x));
  auto other = BlockIndex::create(HashAlgorithm::Xxh3_128, 4096, 4096);
  BOOST_TEST(t.update_from(*other, changed).code() == Code::InvalidParameter);
}

BOOST_AUTO_TEST_CASE(top_down_diff_finds_exactly_the_changed_leaves_in_k_log_n) {
  constexpr uint64_t n = 100000;
  const auto base = leaves(HashAlgorithm::Xxh3_128, n);
  const MerkleTree a(HashAlgorithm::Xxh3_128, base);
  std::mt19937_64 rng(7);
  for (uint64_t k : {0u, 1u, 2u, 10u, 100u, 1000u}) {
    std::set<uint64_t> changed;
    while (changed.size() < k) changed.insert(rng() % n);
    MerkleTree b(HashAlgorithm::Xxh3_128, base);
    std::vector<MerkleTree::LeafChange> changes;
    for (uint64_t i : changed) changes.push_back({i, leaf(HashAlgorithm::Xxh3_128, n + i)});
    BOOST_REQUIRE(b.update(changes).ok());
    auto d = diff(a, b);
    BOOST_REQUIRE(d.ok());
    BOOST_TEST(d->leaves == std::vector<uint64_t>(changed.begin(), changed.end()),
               boost::test_tools::per_element());
    const uint64_t bound = 1 + 2 * k * depth(n);
    BOOST_TEST(d->nodes_visited <= bound, "k=" << k << " visited " << d->nodes_visited);
    if (k == 0) BOOST_TEST(d->nodes_visited == 1u);
    BOOST_TEST_MESSAGE("k=" << k << ": visited " << d->nodes_visited << " of " << 2 * n
                            << " nodes (bound " << bound << ")");
  }
  // Contiguous changes share ancestors: 64 adjacent leaves cost far less than 64 x 2 log n.
  MerkleTree b(HashAlgorithm::Xxh3_128, base);
  std::vector<MerkleTree::LeafChange> run;
  for (uint64_t i = 4096; i < 4096 + 64; ++i) run.push_back({i, leaf(HashAlgorithm::Xxh3_128, ~i)});
  BOOST_REQUIRE(b.update(run).ok());
  auto d = diff(a, b);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->leaves.size() == 64u);
  BOOST_TEST(d->nodes_visited <= 1 + 2 * (64 + 2 * depth(n)));
}

BOOST_AUTO_TEST_CASE(diff_of_every_leaf_and_of_mismatched_shapes) {
  const MerkleTree a(HashAlgorithm::Xxh3_128, leaves(HashAlgorithm::Xxh3_128, 13));
  const MerkleTree b(HashAlgorithm::Xxh3_128, leaves(HashAlgorithm::Xxh3_128, 13, 1));
  auto d = diff(a, b);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->leaves.size() == 13u);
  BOOST_TEST(std::is_sorted(d->leaves.begin(), d->leaves.end()));
  const MerkleTree c(HashAlgorithm::Xxh3_128, leaves(HashAlgorithm::Xxh3_128, 14));
  BOOST_TEST(diff(a, c).status().code() == Code::InvalidParameter);
  const MerkleTree s(HashAlgorithm::Sha256, leaves(HashAlgorithm::Sha256, 13));
  BOOST_TEST(diff(a, s).status().code() == Code::InvalidParameter);
  auto e = diff(MerkleTree(), MerkleTree());
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->leaves.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
