#include "core/store/change_block_set.h"

#include <algorithm>
#include <iterator>
#include <ostream>

namespace vmrepl {

BlockSet::BlockSet(std::initializer_list<BlockRun> runs) {
  for (const auto& r : runs) insert(r);
}

void BlockSet::insert(uint64_t first, uint64_t count) {
  if (count == 0) return;
  uint64_t end = first + count;
  auto it = runs_.upper_bound(first);
  if (it != runs_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= first) {  // overlapping or adjacent: absorb it
      if (prev->second >= end) return;
      first = prev->first;
      blocks_ -= prev->second - prev->first;
      it = runs_.erase(prev);
    }
  }
  while (it != runs_.end() && it->first <= end) {
    end = std::max(end, it->second);
    blocks_ -= it->second - it->first;
    it = runs_.erase(it);
  }
  runs_.emplace_hint(it, first, end);
  blocks_ += end - first;
}

void BlockSet::insert(const BlockSet& other) {
  for (const auto& [first, end] : other.runs_) insert(first, end - first);
}

void BlockSet::clear() {
  runs_.clear();
  blocks_ = 0;
}

std::map<uint64_t, uint64_t>::const_iterator BlockSet::covering(uint64_t block) const {
  auto it = runs_.upper_bound(block);
  if (it == runs_.begin()) return runs_.end();
  --it;
  return it->second > block ? it : runs_.end();
}

bool BlockSet::contains(uint64_t block) const { return covering(block) != runs_.end(); }

bool BlockSet::contains_all(uint64_t first, uint64_t count) const {
  if (count == 0) return true;
  auto it = covering(first);
  return it != runs_.end() && it->second >= first + count;
}

std::optional<BlockRun> BlockSet::uncovered_span(uint64_t first, uint64_t count) const {
  if (count == 0) return std::nullopt;
  const uint64_t end = first + count;
  uint64_t lo = first;
  if (auto it = covering(first); it != runs_.end()) lo = it->second;
  if (lo >= end) return std::nullopt;
  uint64_t hi = end;
  // Runs are never adjacent, so a run holding the last block starts after `lo`.
  if (auto it = covering(end - 1); it != runs_.end()) hi = it->first;
  return BlockRun{lo, hi - lo};
}

std::vector<BlockRun> BlockSet::runs() const {
  std::vector<BlockRun> out;
  out.reserve(runs_.size());
  for (const auto& [first, end] : runs_) out.push_back({first, end - first});
  return out;
}

std::vector<uint64_t> BlockSet::to_indexes() const {
  std::vector<uint64_t> out;
  out.reserve(blocks_);
  for (const auto& [first, end] : runs_)
    for (uint64_t b = first; b < end; ++b) out.push_back(b);
  return out;
}

std::string to_string(const BlockSet& set) {
  std::string out = "{";
  set.for_each_run([&](const BlockRun& r) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(r.first);
    if (r.count > 1) out += "-" + std::to_string(r.end() - 1);
  });
  return out + "}";
}

std::ostream& operator<<(std::ostream& os, const BlockSet& set) { return os << to_string(set); }

BlockSet coarsen(const BlockSet& units, uint32_t unit, uint32_t block_size) {
  const uint64_t per = block_size / unit;
  BlockSet out;
  units.for_each_run([&](const BlockRun& r) {
    const uint64_t first = r.first / per, last = (r.end() - 1) / per;
    out.insert(first, last - first + 1);
  });
  return out;
}

std::vector<DirtyBlock> dirty_blocks(const BlockSet& units, uint32_t unit, uint32_t block_size,
                                     uint64_t disk_size) {
  const uint64_t per = block_size / unit;
  std::vector<DirtyBlock> out;
  units.for_each_run([&](const BlockRun& r) {
    for (uint64_t u = r.first; u < r.end();) {
      const uint64_t block = u / per;
      const uint64_t end = std::min(r.end(), (block + 1) * per);
      const uint64_t base = block * block_size;
      const uint64_t lo = u * unit - base;
      const uint64_t hi = std::min(end * uint64_t{unit}, disk_size) - base;
      if (!out.empty() && out.back().block == block) {
        out.back().hi = static_cast<uint32_t>(hi);  // runs ascend: only the end grows
      } else {
        out.push_back(DirtyBlock{block, static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)});
      }
      u = end;
    }
  });
  return out;
}

void merge_into(DiskBlockSets& a, const DiskBlockSets& b) {
  if (a.size() < b.size()) a.resize(b.size());
  for (std::size_t d = 0; d < b.size(); ++d) a[d].insert(b[d]);
}

}  // namespace vmrepl
