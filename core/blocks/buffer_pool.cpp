#include "core/blocks/buffer_pool.h"

#include <utility>

namespace vmrepl {

BufferPool::BufferPool(std::size_t max_kept_bytes, std::size_t max_capacity)
    : max_kept_bytes_(max_kept_bytes), max_capacity_(max_capacity) {}

std::vector<uint8_t> BufferPool::try_take(std::size_t min_capacity) {
  std::vector<uint8_t> out;
  std::lock_guard<std::mutex> lk(mu_);
  // The most recent buffer large enough: its pages are the likeliest to be in cache.
  for (std::size_t i = free_.size(); i-- > 0;) {
    if (free_[i].capacity() >= min_capacity) {
      out = std::move(free_[i]);
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
      kept_bytes_ -= out.capacity();
      break;
    }
  }
  return out;
}

std::vector<uint8_t> BufferPool::take(std::size_t min_capacity) {
  std::vector<uint8_t> out = try_take(min_capacity);
  if (out.capacity() < min_capacity) out.reserve(min_capacity);
  return out;
}

void BufferPool::give(std::vector<uint8_t>&& buffer) {
  std::vector<uint8_t> b = std::move(buffer);
  const std::size_t cap = b.capacity();
  if (cap < kMinPooledCapacity || cap > max_capacity_ || cap > max_kept_bytes_) return;
  b.clear();
  std::lock_guard<std::mutex> lk(mu_);
  // Full: the oldest buffers go first (the coldest in cache).
  while (kept_bytes_ + cap > max_kept_bytes_ && !free_.empty()) {
    kept_bytes_ -= free_.front().capacity();
    free_.erase(free_.begin());
  }
  kept_bytes_ += cap;
  free_.push_back(std::move(b));
}

std::size_t BufferPool::kept() const {
  std::lock_guard<std::mutex> lk(mu_);
  return free_.size();
}

std::size_t BufferPool::kept_bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return kept_bytes_;
}

}  // namespace vmrepl
