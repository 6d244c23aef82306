// ChangeFeed: the durable record of which blocks of a VM's disks changed since the last
// acknowledged cycle (DESIGN.md, Cycle step 2: "change feed ... O(changed)").
//
// A hypervisor plugin reports every guest write with mark_dirty(disk, offset, length) before
// it issues the write. The call returns only once the range is on stable storage (a record in
// an append-only log, fdatasync'ed), so a range reported before kill -9 or a host crash is
// still known after restart. Like DRBD's activity-log transactions, concurrent callers are
// group-committed: one leader writes and syncs the records of everyone waiting (LevelDB's
// writer queue), so concurrent callers share one write and one fdatasync per batch; and a
// range whose blocks are all already recorded in the current epoch returns at once without
// any I/O. The in-memory dirty sets are BlockSets (runs), the O(changed) source for cycles.
//
// Cycles. begin_cycle() closes the current epoch: it returns the epoch's blocks per disk and
// starts a new epoch, so writes marked during the cycle land in the next one. ack_cycle()
// (the replica acknowledged) forgets the closed epoch's blocks; abort_cycle() (the cycle
// failed) merges them back into the current epoch. At most one cycle is open at a time.
//
// Trust. The feed never answers with a silent miss. When it cannot vouch for its history
// (a new feed, damaged or missing log or marker, a record that is not a torn tail, an unknown
// version, changed disk geometry, a log write that failed, invalidate()) it is untrusted:
// open() still succeeds, trusted() is false with the reason, and the next begin_cycle() says
// scan_required. That cycle is a scan cycle: at begin_cycle() the feed starts a fresh log and
// records every later write; ack_cycle() of the scan cycle makes the feed trusted again.
// A crash before that ack leaves it untrusted, so a scan is never skipped. While untrusted
// and before the scan starts, mark_dirty validates and returns at once: the scan will read
// those blocks anyway. (An engine that knows the disks equal its last acknowledged point at
// the view, e.g. it has just materialized them and the VM has not run, may acknowledge the
// scan cycle without scanning.)
//
// The caller's contract for begin_cycle() (REQUIRES, not checked): it is called at the
// instant the cycle's consistent view is taken, with the VM's writes quiesced (paused, or
// every write marked before the call already completed); then every write in the view was
// marked before the call, and every write after it is marked in the next epoch.
//
// Files in the feed's directory (one feed per directory, locked with flock):
//   change.feed  marker (written atomically): state (trusted / untrusted + reason / scan
//                pending), log id, geometry, epoch. Its presence says "a feed exists here".
//   change.log   header {magic "VMRCLOG\0", version, block_size, disk count, log id, base
//                epoch, disk sizes, XXH3-64} then 40-byte records {kind u32, disk u32,
//                epoch u64, first_block u64, block_count u64, XXH3-64 of the 32 bytes before
//                seeded with the log id}. Kinds: Mark, Ack(epoch: every epoch <= it is done).
// Replay at open: every record must verify; only an incomplete last record (fewer than 40
// bytes at the very end, a write that was never acknowledged) is tolerated and cut off. Any
// full record that fails, or that breaks an invariant (epoch order, disk range), makes the
// feed untrusted. The log is rewritten with only the live records (compaction: temp file,
// fsync, rename, fsync of the directory) after a cycle closes once it outgrows
// ChangeFeedOptions::compact_threshold_bytes and twice its live size, so it stays bounded.
//
// The log is written with pwrite at the tracked end offset rather than O_APPEND: the writer
// queue and the directory lock make the feed the only writer, so both append the same way,
// and the committed end (what replay and compaction reason about) is known without lseek.
//
// I/O errors. If a log write or sync fails, the feed turns untrusted and records that in the
// marker; the affected mark_dirty calls then return OK, because a scan now covers them. Only
// if that marker cannot be written either do mark_dirty calls fail (Failed), until a scan
// cycle or invalidate() manages to write it.
//
// Thread-safety: every method may be called from any thread. mark_dirty, begin_cycle,
// ack_cycle, abort_cycle and invalidate are serialized through one FIFO writer queue (a
// cycle operation waits for the group commits queued before it, and is not starved by later
// ones); queries take a mutex only. Calls block on fdatasync: use worker threads, not an
// event-loop thread. The destructor REQUIRES no call in progress.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/status.h"
#include "core/store/change_block_set.h"
#include "core/store/fs.h"

namespace vmrepl {

struct ChangeFeedOptions {
  // Compaction is considered when a cycle is acknowledged or aborted, once the log exceeds
  // this size and twice what its live records need.
  uint64_t compact_threshold_bytes = uint64_t{1} << 20;
  // Most records one group commit writes (bounds the leader's buffer and a batch's latency).
  uint32_t max_batch_records = 4096;
};

struct ChangeFeedStats {
  uint64_t mark_calls = 0;       // mark_dirty calls that passed validation
  uint64_t coalesced = 0;        // ... that returned without I/O: already recorded
  uint64_t untracked = 0;        // ... that returned without I/O: untrusted, a scan covers them
  uint64_t records_written = 0;  // Mark and Ack records appended (compaction not counted)
  uint64_t batches = 0;          // group commits (one write + one fdatasync each)
  uint64_t fsyncs = 0;           // every fsync/fdatasync of a file or directory
  uint64_t compactions = 0;
  uint64_t torn_tail_bytes = 0;  // incomplete record cut off at open
  uint64_t log_bytes = 0;        // size of change.log (0 while the feed keeps no log open)
};

// What begin_cycle() hands the engine.
struct FeedCycle {
  uint64_t epoch = 0;          // pass to ack_cycle / abort_cycle
  bool scan_required = false;  // the feed is untrusted: find the changes by a scan
  std::string scan_reason;     // why, when scan_required
  DiskBlockSets blocks;        // per disk, the changed blocks; empty sets when scan_required
};

class ChangeFeed {
 public:
  static constexpr uint32_t kMaxDisks = 1024;
  static constexpr std::size_t kRecordSize = 40;

  // Opens (creating the absolute path `dir` and the feed when missing) the feed of a VM
  // whose disks have `disk_sizes` bytes, tracking blocks of `block_size` bytes (a power of
  // two, 4 KiB..16 MiB; the last block of a disk may be partial). A new feed, damage or a
  // changed geometry is not an error: the feed opens untrusted (see above). Errors:
  // InvalidParameter (sizes, block size, options), SystemInUse (another ChangeFeed, in this
  // or another process, holds this directory), Failed/AccessDenied for I/O.
  static Result<std::unique_ptr<ChangeFeed>> open(const std::string& dir,
                                                  std::vector<uint64_t> disk_sizes,
                                                  uint32_t block_size,
                                                  ChangeFeedOptions options = {});
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Records that bytes [offset, offset + length) of `disk` changed; returns once that is
  // durable (see the class comment for the untrusted and failure cases). InvalidParameter
  // naming the argument for a disk that does not exist, a length of 0, or a range that
  // overflows or runs past the end of the disk.
  Status mark_dirty(uint32_t disk, uint64_t offset, uint64_t length);

  // Closes the current epoch and opens a cycle over it (see FeedCycle). InvalidState while
  // another cycle is open; Failed when a scan cycle cannot set up its fresh log.
  Result<FeedCycle> begin_cycle();
  // The replica acknowledged cycle `epoch`: its blocks are forgotten (durably: an Ack record).
  // For a scan cycle the feed becomes trusted. InvalidParameter when `epoch` is not the open
  // cycle. On an I/O error the cycle is still closed and the feed turns untrusted.
  Status ack_cycle(uint64_t epoch);
  // Cycle `epoch` failed: its blocks return to the current epoch (nothing is lost). An aborted
  // scan cycle leaves the feed untrusted. InvalidParameter when `epoch` is not the open cycle.
  Status abort_cycle(uint64_t epoch);
  // Makes the feed untrusted (durably) for a reason the engine knows and the feed cannot, e.g.
  // the disks were rewritten outside the feed (failover, resync). The next cycle scans.
  Status invalidate(std::string_view reason);

  bool trusted() const;
  // Why the feed is untrusted ("" when trusted).
  std::string untrusted_reason() const;
  // Every block not yet acknowledged: the current epoch plus the open cycle's blocks.
  DiskBlockSets pending() const;
  // Epoch of the open cycle, if any.
  std::optional<uint64_t> open_cycle() const;
  ChangeFeedStats stats() const;

  uint32_t block_size() const { return block_size_; }
  const std::vector<uint64_t>& disk_sizes() const { return disk_sizes_; }
  const std::string& dir() const { return dir_path_; }

 private:
  enum class Trust : uint32_t { Trusted = 1, Untrusted = 2, ScanPending = 3 };
  struct Writer;
  class Turn;
  struct OpenCycle {
    uint64_t epoch = 0;
    bool scan = false;
    DiskBlockSets blocks;
  };

  ChangeFeed(std::string dir, fs::Fd dir_fd, std::vector<uint64_t> disk_sizes, uint32_t block_size,
             ChangeFeedOptions options);

  void recover();
  // The damage that makes the log untrustworthy, or "" after replaying it into current_.
  std::string replay(int fd, uint64_t log_id);
  Status check_range(uint32_t disk, uint64_t offset, uint64_t length) const;
  Status status_when_untrusted() const;
  // REQUIRES (for the helpers below): mu_ held and this thread at the head of the queue.
  void commit_batch(std::unique_lock<std::mutex>& lock);
  Status untrust(std::string reason);
  void fail_log(const Status& cause);
  Status write_marker(Trust state, uint64_t epoch);
  Status append_durably(std::unique_lock<std::mutex>& lock, const std::string& records);
  void maybe_compact(std::unique_lock<std::mutex>& lock);
  Status open_log_fd();
  std::string encode_header(uint64_t log_id, uint64_t base_epoch) const;
  std::size_t header_size() const;

  const std::string dir_path_;
  const fs::Fd dir_;  // holds the flock
  const std::vector<uint64_t> disk_sizes_;
  std::vector<uint64_t> disk_blocks_;
  const uint32_t block_size_;
  const ChangeFeedOptions options_;

  mutable std::mutex mu_;
  std::deque<Writer*> queue_;  // head: the one thread allowed to write the log or change epochs
  Trust trust_ = Trust::Untrusted;
  std::string reason_;
  bool untrust_durable_ = true;  // a restart would also find the feed untrusted
  fs::Fd log_;                   // open while Trusted or ScanPending
  uint64_t log_id_ = 0;
  uint64_t log_end_ = 0;  // bytes of change.log known durable
  uint64_t epoch_ = 1;    // the current epoch
  DiskBlockSets current_;
  std::optional<OpenCycle> cycle_;
  ChangeFeedStats stats_;
};

}  // namespace vmrepl
