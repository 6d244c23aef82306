// VectorPool / BufferPool: large vectors kept for reuse by the replication data path.
//
// A batch of blocks passes through a few multi-MiB buffers on each side (the blocks read from
// disk, the frame on the wire, the pre-images of the undo log), and every cycle builds block
// indexes of MiBs for large disks. A fresh vector of that size comes from mmap and costs one
// page fault per 4 KiB touched: in a profile of a 20 MiB cycle that was a third of all CPU
// time, more than the copies themselves (a fault costs ~12 us on the project VM). Vectors taken
// from here and given back have their pages already mapped.
//
// Bounded: at most `max_kept_bytes` of capacity is kept, each vector at most `max_bytes`;
// vectors under kMinPooledBytes are not kept (small ones are cheap to allocate). What is kept
// is memory the process already held, so a vector from the pool never grows what a peer can
// make us allocate.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace vmrepl {

template <class T>
class VectorPool {
 public:
  static constexpr std::size_t kMinPooledBytes = std::size_t{256} << 10;
  // The same bound in elements.
  static constexpr std::size_t kMinPooledCapacity = kMinPooledBytes / sizeof(T);

  VectorPool(std::size_t max_kept_bytes, std::size_t max_bytes)
      : max_kept_bytes_(max_kept_bytes), max_bytes_(max_bytes) {
    // give() never allocates (it runs in destructors): room for every vector that can be kept.
    free_.reserve(max_kept_bytes / kMinPooledBytes + 1);
  }
  VectorPool(const VectorPool&) = delete;
  VectorPool& operator=(const VectorPool&) = delete;

  // An empty vector. With `min_capacity` > 0: a kept vector of at least that capacity if there
  // is one, else a new one reserved to min_capacity. With 0: a kept vector if there is one,
  // else an empty vector without capacity (the caller grows it as data arrives).
  std::vector<T> take(std::size_t min_capacity = 0) {
    std::vector<T> out = try_take(min_capacity);
    if (out.capacity() < min_capacity) out.reserve(min_capacity);
    return out;
  }
  // A kept vector of at least `min_capacity`, or an empty vector without capacity when none is
  // kept: never a new allocation (for receivers that grow a buffer only as bytes arrive).
  std::vector<T> try_take(std::size_t min_capacity) {
    std::vector<T> out;
    std::lock_guard<std::mutex> lk(mu_);
    // The most recent vector large enough: its pages are the likeliest to be in cache.
    for (std::size_t i = free_.size(); i-- > 0;) {
      if (free_[i].capacity() >= min_capacity) {
        out = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        kept_bytes_ -= out.capacity() * sizeof(T);
        break;
      }
    }
    return out;
  }
  // Keeps `v` (emptied) for a later take(), or frees it when the pool is full or the vector is
  // outside the pooled sizes.
  void give(std::vector<T>&& v) {
    std::vector<T> b = std::move(v);
    const std::size_t bytes = b.capacity() * sizeof(T);
    if (bytes < kMinPooledBytes || bytes > max_bytes_ || bytes > max_kept_bytes_) return;
    b.clear();
    std::lock_guard<std::mutex> lk(mu_);
    // Full: the oldest vectors go first (the coldest in cache).
    while (kept_bytes_ + bytes > max_kept_bytes_ && !free_.empty()) {
      kept_bytes_ -= free_.front().capacity() * sizeof(T);
      free_.erase(free_.begin());
    }
    kept_bytes_ += bytes;
    free_.push_back(std::move(b));
  }

  std::size_t kept() const {
    std::lock_guard<std::mutex> lk(mu_);
    return free_.size();
  }
  std::size_t kept_bytes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return kept_bytes_;
  }

 private:
  const std::size_t max_kept_bytes_;
  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::vector<std::vector<T>> free_;  // most recently given last (warmest in cache)
  std::size_t kept_bytes_ = 0;
};

// Byte buffers: one per service loop (EventLoop::buffers()).
using BufferPool = VectorPool<uint8_t>;

}  // namespace vmrepl
