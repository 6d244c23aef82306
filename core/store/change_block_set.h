// BlockSet: a set of block indexes of one disk kept as sorted, disjoint, non-adjacent runs.
//
// It is the unit in which the change feed and the cycle history speak about changed blocks.
// Runs rather than a dense bitmap: memory and time follow the change, not the disk (a
// sequential write of a 1 GiB extent is one run, a whole-disk mark is one run whatever the
// disk size), and the runs are exactly what is logged, persisted and shipped.
//
// Costs: insert and contains_all are O(log runs + runs merged); iteration is O(runs).
//
// Thread-safety: a value without internal synchronization (concurrent const use is safe).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmrepl {

// The blocks [first, first + count).
struct BlockRun {
  uint64_t first = 0;
  uint64_t count = 0;
  uint64_t end() const { return first + count; }
  bool operator==(const BlockRun&) const = default;
};

class BlockSet {
 public:
  BlockSet() = default;
  // REQUIRES: each run has count > 0 and first + count does not overflow.
  BlockSet(std::initializer_list<BlockRun> runs);

  // Adds [first, first + count). A count of 0 adds nothing.
  // REQUIRES: first + count does not overflow.
  void insert(uint64_t first, uint64_t count);
  void insert(const BlockRun& r) { insert(r.first, r.count); }
  // Union with `other`.
  void insert(const BlockSet& other);
  void clear();

  bool empty() const { return runs_.empty(); }
  // Number of blocks in the set (not runs).
  uint64_t block_count() const { return blocks_; }
  std::size_t run_count() const { return runs_.size(); }
  bool contains(uint64_t block) const;
  // True when every block of [first, first + count) is in the set (true for count 0).
  bool contains_all(uint64_t first, uint64_t count) const;
  // The smallest run covering every block of [first, first + count) that is not in the set,
  // or nullopt when all of them are. Lets a caller skip the already-known edges of a range.
  std::optional<BlockRun> uncovered_span(uint64_t first, uint64_t count) const;

  // Ascending.
  std::vector<BlockRun> runs() const;
  // Every block index, ascending. Size is block_count(): only for sets known to be small.
  std::vector<uint64_t> to_indexes() const;
  template <class F>
  void for_each_run(F&& f) const {
    for (const auto& [first, end] : runs_) f(BlockRun{first, end - first});
  }

  bool operator==(const BlockSet& o) const { return runs_ == o.runs_; }

 private:
  // Run that holds `block`, if any.
  std::map<uint64_t, uint64_t>::const_iterator covering(uint64_t block) const;

  std::map<uint64_t, uint64_t> runs_;  // first -> end (exclusive)
  uint64_t blocks_ = 0;
};

// "{0-2, 7, 9-11}" (inclusive ranges): for messages and logs.
std::string to_string(const BlockSet& set);
std::ostream& operator<<(std::ostream& os, const BlockSet& set);

// One BlockSet per disk of a VM, indexed by disk number.
using DiskBlockSets = std::vector<BlockSet>;

// A set of fine units (the change feed records 4 KiB units, so a small write does not cost a
// whole replication block) seen in blocks of `block_size` bytes. REQUIRES (both functions):
// unit and block_size are powers of two, unit <= block_size.
//
// The blocks holding at least one unit of `units`.
BlockSet coarsen(const BlockSet& units, uint32_t unit, uint32_t block_size);
// Each block holding units, ascending, with the bytes [lo, hi) from its first unit's start to
// its last unit's end, clamped to the disk's `disk_size` (the last block may be short).
struct DirtyBlock {
  uint64_t block = 0;
  uint32_t lo = 0;
  uint32_t hi = 0;
  bool operator==(const DirtyBlock&) const = default;
};
std::vector<DirtyBlock> dirty_blocks(const BlockSet& units, uint32_t unit, uint32_t block_size,
                                     uint64_t disk_size);

// Union of `b` into `a` disk by disk; `a` grows to b.size() disks when shorter.
void merge_into(DiskBlockSets& a, const DiskBlockSets& b);

}  // namespace vmrepl
