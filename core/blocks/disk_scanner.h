// DiskScanner: computes the BlockIndex of a disk image file asynchronously on a libuv loop
// (DESIGN.md, cycle step 2: "scanning and comparing with the persisted index").
//
// How it works. A first work item on the libuv thread pool opens the file, takes its size,
// allocates the index with every block marked Zero, and maps which chunks hold any data
// (SEEK_DATA/SEEK_HOLE; one bit per chunk). The loop thread then walks the chunks in order:
// a chunk entirely inside a hole is accounted at once (its entries already say Zero; no
// work item, no read); any other chunk goes to the thread pool, where a worker preads its
// data blocks into a reused buffer (hole blocks inside it are not read either), zero-checks
// each block and hashes the non-zero ones straight into the index. At most max_in_flight
// chunks are queued at once, each with its own buffer from a pool allocated once per scan,
// so memory is bounded by max_in_flight x chunk_size plus the index. Work items are
// independent, so the two cores hash in parallel while the kernel copies.
//
// Callbacks (progress, done) run on the loop thread only. The scan sees the file as it is
// while it runs: callers scan a consistent view (VM off, paused, or a clone).
//
// Thread-safety: every member function must be called on the loop thread. The object may be
// destroyed once done has fired (also from inside the done callback). Destroying it earlier
// cancels the scan: the work still in flight drains in the background and done is not called.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/blocks/block_index.h"
#include "core/blocks/hash.h"
#include "core/model/status.h"

namespace vmrepl {

struct ScanOptions {
  HashAlgorithm algorithm = HashAlgorithm::Xxh3_128;
  uint32_t block_size = BlockIndex::kDefaultBlockSize;
  // Bytes per work item: a multiple of block_size, at most 256 MiB.
  uint32_t chunk_size = 4u << 20;
  // Chunks queued on the thread pool at once (1..64); buffer memory = this x chunk_size.
  uint32_t max_in_flight = 4;
  // false reads holes like data (only to measure what sparse awareness saves).
  bool skip_holes = true;
};

// OK, or InvalidParameter saying which option is wrong.
Status check_scan_options(const ScanOptions& options);

// Counters of one scan, updated on the loop thread as chunks complete.
struct ScanStats {
  uint64_t bytes_total = 0;     // disk size
  uint64_t bytes_done = 0;      // covered so far, holes included (what progress reports)
  uint64_t bytes_read = 0;      // bytes actually read from the file
  uint64_t chunks_total = 0;
  uint64_t chunks_read = 0;     // work items that ran (each read at least one data block)
  uint64_t chunks_skipped = 0;  // chunks entirely in a hole: no work item, nothing read
  uint64_t hole_blocks = 0;     // blocks never read because they lay in a hole
  uint64_t zero_blocks = 0;     // blocks flagged Zero in the result (holes + written zeros)
  uint32_t peak_in_flight = 0;  // most chunks queued at once (<= max_in_flight)
  uint64_t buffer_bytes = 0;    // chunk buffer memory allocated for the scan
};

class DiskScanner {
 public:
  // Called with bytes covered so far (holes included) and the disk size; never decreasing,
  // and once with bytes_done == bytes_total before a successful done.
  using ProgressFn = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;
  // Called once at the end. `cancelled` is true if and only if cancel() stopped the scan; the
  // result is then Status Failed "scan of <path> cancelled". Otherwise the result is the
  // index, or the first error met (FileNotFound for a missing file, Failed with the errno
  // text for I/O errors). In every case no work item is in flight any more.
  using DoneFn = std::function<void(Result<BlockIndex> result, bool cancelled)>;
  // Called with the final entries of blocks [first_block, first_block + entries.size()), in
  // disk order, each block once, as soon as every chunk up to them is hashed (holes included):
  // a caller can act on the start of the disk while the rest is still being read. Not called
  // after an error or a cancel. The span is valid during the call only. Returning false
  // cancels the scan (done then reports it cancelled).
  using RangeFn = std::function<bool(uint64_t first_block, std::span<const BlockEntry> entries)>;

  // REQUIRES: loop outlives the scan.
  DiskScanner(uv_loop_t* loop, std::string path, ScanOptions options = {});
  ~DiskScanner();
  DiskScanner(const DiskScanner&) = delete;
  DiskScanner& operator=(const DiskScanner&) = delete;

  // Starts the scan; returns at once. InvalidParameter for bad options or a null done,
  // InvalidState when already started. `progress` may be empty.
  Status start(ProgressFn progress, DoneFn done);
  // Sets the RangeFn; REQUIRES: before start().
  void on_range(RangeFn fn);
  // Stops issuing chunks and cancels those not yet running; done follows once the running
  // ones have finished. No effect before start() or after done.
  void cancel();
  // True between start() and done.
  bool running() const;
  const ScanStats& stats() const;

 private:
  friend Status scan_file_into(const std::string& path, BlockIndex& into, const ScanOptions& options,
                               ScanStats* stats, RangeFn on_range);
  class Impl;
  std::unique_ptr<Impl> impl_;  // handed over to itself when destroyed mid-scan (see above)
};

// Scans `path` to completion on a private uv loop of its own (for tools and tests); blocks
// the calling thread. Fills *stats when given.
Result<BlockIndex> scan_file(const std::string& path, const ScanOptions& options = {},
                             ScanStats* stats = nullptr, DiskScanner::RangeFn on_range = {});

// scan_file into `into`, which the caller has just created (BlockIndex::create, entries
// untouched) with the options' algorithm and block size and the file's size: no index of the
// scan's own, and entries of ranges already handed to on_range may be written by the caller
// while the scan goes on (the scan writes only later ones). Failed when the file's size
// differs from into's.
Status scan_file_into(const std::string& path, BlockIndex& into, const ScanOptions& options = {},
                      ScanStats* stats = nullptr, DiskScanner::RangeFn on_range = {});

}  // namespace vmrepl
