// BufferPool: large byte buffers kept for reuse by the replication data path.
//
// A batch of blocks passes through a few multi-MiB buffers on each side (the blocks read from
// disk, the frame on the wire, the pre-images of the undo log). A fresh buffer of that size
// comes from mmap and costs one page fault per 4 KiB touched: in a profile of a 20 MiB cycle
// that was a third of all CPU time, more than the copies themselves. Buffers taken from here
// and given back have their pages already mapped.
//
// Bounded: at most `max_kept_bytes` of capacity is kept, each buffer at most `max_capacity`;
// buffers under kMinPooledCapacity are not kept (small ones are cheap to allocate). What is
// kept is memory the process already held, so a buffer from the pool never grows what a peer
// can make us allocate.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vmrepl {

class BufferPool {
 public:
  static constexpr std::size_t kMinPooledCapacity = std::size_t{256} << 10;

  BufferPool(std::size_t max_kept_bytes, std::size_t max_capacity);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An empty buffer. With `min_capacity` > 0: a kept buffer of at least that capacity if there
  // is one, else a new one reserved to min_capacity. With 0: a kept buffer if there is one,
  // else an empty vector without capacity (the caller grows it as data arrives).
  std::vector<uint8_t> take(std::size_t min_capacity = 0);
  // A kept buffer of at least `min_capacity`, or an empty vector without capacity when none is
  // kept: never a new allocation (for receivers that grow a buffer only as bytes arrive).
  std::vector<uint8_t> try_take(std::size_t min_capacity);
  // Keeps `buffer` (emptied) for a later take(), or frees it when the pool is full or the
  // buffer is outside the pooled sizes.
  void give(std::vector<uint8_t>&& buffer);

  std::size_t kept() const;
  std::size_t kept_bytes() const;

 private:
  const std::size_t max_kept_bytes_;
  const std::size_t max_capacity_;
  mutable std::mutex mu_;
  std::vector<std::vector<uint8_t>> free_;  // most recently given last (warmest in cache)
  std::size_t kept_bytes_ = 0;
};

}  // namespace vmrepl
