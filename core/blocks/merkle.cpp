#include "core/blocks/merkle.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>

namespace vmrepl {

MerkleTree::MerkleTree(HashAlgorithm algorithm, std::vector<BlockHash> leaves)
    : algorithm_(algorithm) {
  if (leaves.empty()) return;
  levels_.push_back(std::move(leaves));
  while (levels_.back().size() > 1) {
    const std::size_t below = levels_.size() - 1;
    levels_.emplace_back((levels_[below].size() + 1) / 2);
    for (uint64_t j = 0; j < levels_.back().size(); ++j) recompute(below + 1, j);
  }
}

MerkleTree MerkleTree::from_index(const BlockIndex& index) {
  std::vector<BlockHash> leaves;
  leaves.reserve(index.block_count());
  for (const BlockEntry& e : index.entries()) leaves.push_back(e.hash);
  return MerkleTree(index.algorithm(), std::move(leaves));
}

namespace {

// Folds leaves in order into complete subtrees: pending[l] is the last complete node of
// level l whose right sibling has not come yet (it exists when the count of complete nodes
// of level l so far is odd).
class RootFolder {
 public:
  explicit RootFolder(HashAlgorithm a) : alg_(a) {}
  void add(const BlockHash& leaf) {
    BlockHash carry = leaf;
    std::size_t l = 0;
    while (l < kLevels && has_[l]) {
      carry = combine(alg_, pending_[l], carry);
      has_[l] = false;
      ++l;
    }
    pending_[l] = carry;
    has_[l] = true;
    ++count_;
  }
  // Upwards from the leaves, the right edge of the tree: a pending node pairs with the
  // partial node built below it; a node without a sibling is promoted unchanged.
  BlockHash root() const {
    if (count_ == 0) return hash_bytes(alg_, {});
    std::optional<BlockHash> carry;
    for (std::size_t l = 0; l <= kLevels; ++l) {
      if (!has_[l]) continue;
      carry = carry ? combine(alg_, pending_[l], *carry) : pending_[l];
    }
    return *carry;
  }

 private:
  static constexpr std::size_t kLevels = 64;  // 2^64 leaves
  HashAlgorithm alg_;
  uint64_t count_ = 0;
  std::array<BlockHash, kLevels + 1> pending_{};
  std::array<bool, kLevels + 1> has_{};
};

}  // namespace

BlockHash merkle_root(HashAlgorithm algorithm, std::span<const BlockHash> leaves) {
  RootFolder f(algorithm);
  for (const BlockHash& h : leaves) f.add(h);
  return f.root();
}

BlockHash merkle_root(const BlockIndex& index) {
  RootFolder f(index.algorithm());
  for (const BlockEntry& e : index.entries()) f.add(e.hash);
  return f.root();
}

void MerkleTree::recompute(std::size_t level, uint64_t j) {
  const std::vector<BlockHash>& below = levels_[level - 1];
  const uint64_t l = 2 * j, r = 2 * j + 1;
  levels_[level][j] = r < below.size() ? combine(algorithm_, below[l], below[r]) : below[l];
}

BlockHash MerkleTree::root() const {
  if (levels_.empty()) return hash_bytes(algorithm_, {});
  return levels_.back()[0];
}

Status MerkleTree::update(std::span<const LeafChange> changes) {
  for (const LeafChange& c : changes) {
    if (c.index >= leaf_count()) {
      return Status::InvalidParameter("Merkle leaf " + std::to_string(c.index) +
                                      " out of range (" + std::to_string(leaf_count()) +
                                      " leaves)");
    }
  }
  std::vector<uint64_t> dirty;
  dirty.reserve(changes.size());
  for (const LeafChange& c : changes) {
    levels_[0][c.index] = c.hash;
    dirty.push_back(c.index / 2);
  }
  for (std::size_t level = 1; level < levels_.size(); ++level) {
    std::sort(dirty.begin(), dirty.end());
    dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
    for (uint64_t& j : dirty) {
      recompute(level, j);
      j /= 2;
    }
  }
  return Status::OK();
}

Status MerkleTree::update_from(const BlockIndex& index, std::span<const uint64_t> changed) {
  if (index.block_count() != leaf_count() || index.algorithm() != algorithm_) {
    return Status::InvalidParameter("Merkle tree of " + std::to_string(leaf_count()) +
                                    " leaves cannot take leaves from an index of " +
                                    std::to_string(index.block_count()) +
                                    " blocks or another algorithm");
  }
  std::vector<LeafChange> changes;
  changes.reserve(changed.size());
  for (uint64_t i : changed) {
    if (i >= leaf_count()) {
      return Status::InvalidParameter("Merkle leaf " + std::to_string(i) + " out of range");
    }
    changes.push_back({i, index.entry(i).hash});
  }
  return update(changes);
}

Result<MerkleDiff> diff(const MerkleTree& a, const MerkleTree& b) {
  if (a.algorithm() != b.algorithm() || a.leaf_count() != b.leaf_count()) {
    return Status::InvalidParameter("cannot compare Merkle trees of " +
                                    std::to_string(a.leaf_count()) + " and " +
                                    std::to_string(b.leaf_count()) +
                                    " leaves or of different algorithms");
  }
  MerkleDiff d;
  if (a.level_count() == 0) return d;
  // Depth-first with an explicit stack (depth <= 64), left child on top, so leaves come out
  // in ascending order.
  std::vector<std::pair<std::size_t, uint64_t>> stack{{a.level_count() - 1, 0}};
  while (!stack.empty()) {
    const auto [level, j] = stack.back();
    stack.pop_back();
    ++d.nodes_visited;
    if (a.node(level, j) == b.node(level, j)) continue;
    if (level == 0) {
      d.leaves.push_back(j);
      continue;
    }
    if (2 * j + 1 < a.level_size(level - 1)) stack.push_back({level - 1, 2 * j + 1});
    stack.push_back({level - 1, 2 * j});
  }
  return d;
}

}  // namespace vmrepl
