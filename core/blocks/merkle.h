// MerkleTree: a binary hash tree over a disk's block hashes, so two sides can agree on a
// whole disk with one root and find differing blocks by descending only into differing
// subtrees (DESIGN.md: reverse verification and full resync).
//
// Shape: level 0 holds the leaves (the BlockIndex entry hashes, in block order). Level k+1
// node j = combine(level k node 2j, level k node 2j+1); when level k has an odd size its last
// node has no sibling and is promoted unchanged. The top level has one node, the root.
// A one-leaf tree's root is that leaf. The root of an empty disk (no leaves) is defined as
// hash_bytes(algorithm, {}), the hash of the empty string (XXH3-128:
// 99aa06d3014798d86001c324468d497f).
//
// Memory: about 2 x leaf_count x 32 bytes (all levels are kept for O(log n) updates).
//
// Thread-safety: a value without internal synchronization; concurrent const use is safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/blocks/block_index.h"
#include "core/blocks/hash.h"
#include "core/model/status.h"

namespace vmrepl {

class MerkleTree {
 public:
  struct LeafChange {
    uint64_t index = 0;
    BlockHash hash;
  };

  // An empty tree (no leaves) for XXH3-128.
  MerkleTree() = default;
  MerkleTree(HashAlgorithm algorithm, std::vector<BlockHash> leaves);
  // The tree over every entry hash of `index`.
  static MerkleTree from_index(const BlockIndex& index);

  MerkleTree(MerkleTree&&) noexcept = default;
  MerkleTree& operator=(MerkleTree&&) noexcept = default;
  MerkleTree(const MerkleTree&) = delete;
  MerkleTree& operator=(const MerkleTree&) = delete;

  HashAlgorithm algorithm() const { return algorithm_; }
  uint64_t leaf_count() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // Number of levels including leaves and root; 0 for an empty tree.
  std::size_t level_count() const { return levels_.size(); }
  uint64_t level_size(std::size_t level) const { return levels_[level].size(); }
  // REQUIRES: level < level_count(), i < level_size(level).
  const BlockHash& node(std::size_t level, uint64_t i) const { return levels_[level][i]; }
  BlockHash root() const;

  // Replaces the given leaves and recomputes only their ancestors: O(k log n) combines for k
  // changes. InvalidParameter (and no change at all) when an index is out of range.
  Status update(std::span<const LeafChange> changes);
  // Takes the leaves listed in `changed` from `index`. REQUIRES: index has leaf_count() blocks
  // and this tree's algorithm (else InvalidParameter).
  Status update_from(const BlockIndex& index, std::span<const uint64_t> changed);

 private:
  void recompute(std::size_t level, uint64_t j);

  HashAlgorithm algorithm_ = HashAlgorithm::Xxh3_128;
  std::vector<std::vector<BlockHash>> levels_;
};

// The root of MerkleTree::from_index(index) (or of the tree over `leaves`) without building
// the tree: one pass over the leaves keeping one pending node per level, so O(log n) memory
// where the tree takes 2 x n x 32 bytes (a cycle's roots of a 4 GiB disk: no 4 MiB per side).
BlockHash merkle_root(const BlockIndex& index);
BlockHash merkle_root(HashAlgorithm algorithm, std::span<const BlockHash> leaves);

struct MerkleDiff {
  std::vector<uint64_t> leaves;  // differing leaf indices, ascending
  uint64_t nodes_visited = 0;    // node pairs compared, root included: <= 1 + 2 k depth
};

// Top-down comparison: a subtree is entered only when its roots differ, so the cost is
// O(k log n) for k differing leaves. InvalidParameter when the algorithms or leaf counts
// differ (the shapes would not line up).
Result<MerkleDiff> diff(const MerkleTree& a, const MerkleTree& b);

}  // namespace vmrepl
