// ReplicaStore: a replica VM's disks on the recovery server, kept at the LATEST recovery point,
// plus one undo log per recovery point holding what that point's cycle overwrote (spec §6
// recovery points, §10 "Storage"; DESIGN.md cycle step 4 and Failover).
//
//   <folder>/disk<N>.img        disk N at the latest committed point (sparse; zero = hole)
//   <folder>/undo/<seq>.undo    point seq's undo log: the pre-images that take the image from
//                               point seq back to the point before it (undo_log.h)
//
// The catalog is the truth: table recovery_points (one row per committed point) and
// replica_images.image_seq, the seq of the newest apply that is wholly in the image. A log
// whose seq is above image_seq belongs to an apply (or a rollback step) that did not finish;
// a log at or below it that no point row claims is left over from a merge or a drop.
//
// Applying a cycle (Apply):  create undo/<seq>.undo (header; temp + rename + fsync dir)
//   per batch: read the pre-images of the bytes not yet logged in this apply that the batch
//              overwrites (whole blocks, or only the ranges partial updates cover), append
//              them with a checksummed commit record; then queue the batch for the Apply's
//              writer thread, which fdatasyncs the log once for every batch waiting (group
//              commit), THEN writes their bytes in place, in order (zero blocks and zero
//              ranges punched as holes), while the caller prepares the next batches. A batch
//              reads pre-images only of bytes no earlier batch of the apply writes, so it may
//              read them while earlier batches are written.
//   commit:    append the seal, let the writer make it durable with the last batches, fsync
//              the images, then one catalog transaction inserts the point row and sets
//              image_seq. Only then is the point committed.
// So the log always holds the pre-image of every byte the image may have lost, and a crash
// at any moment leaves either the committed point (row present) or an undo log above
// image_seq, which open() plays back: the image is always exactly some committed point.
//
// Every other change is ordered the same way (catalog first, then files):
//   prune:     rows of the merged points deleted (and has_undo cleared on the new oldest, whose
//              log nothing needs any more) in one transaction (alone, or the commit's), then
//              their logs deleted.
//   rollback_to(j), per later point k, newest first: one transaction deletes k's row and sets
//              image_seq to the point below; then k's log is played back, the images fsynced,
//              and the log deleted. A crash between leaves a log above image_seq: open()
//              finishes that step. Every log is verified before the first step.
//   drop_points_except / reset: rows first, then logs.
// open() (recovery): deletes *.undo.tmp, plays back every log above image_seq (newest first;
// an unsealed log's torn tail is skipped, see undo_log.h), deletes logs no point needs, and
// reports in recovered() what it did.
//
// Point types and their Msvm_VirtualSystemSettingData.VirtualSystemType (spec §6):
//   1 Standard "Microsoft:Hyper-V:Snapshot:Replica:Standard", 2 ApplicationConsistent
//   "...:Replica:ApplicationConsistent", 3 PlannedFailover "...:Replica:PlannedFailover".
//
// What the engine calls, in order:
//   open (after VmStore has the replica VM and its sparse disks) — recovery runs here
//   per cycle: begin_apply(seq > image_seq(), type); apply_batch(...) per received batch;
//              commit({created_us, replication type, roots, keep_history = RecoveryHistory,
//              also = the relationship's record}): the point, its prune and the record in one
//              transaction; then ack to the primary. On any error: abort() (or drop the
//              Apply), nack.
//   InitiateFailover / TestReplicaSystem: materialize(point, the new VM's disk paths).
//   CommitFailover: rollback_to(point) if it is not the latest, then drop_points_except(point).
//   after a resync (the spec deletes the points): reset(); the resync's blocks then go through
//   an ordinary apply, whose undo log also makes the resync cancellable (abort()).
//
// Thread-safety: NOT synchronized. One user at a time: the engine calls a ReplicaStore and its
// Apply from one thread at a time, a worker thread (every call may read, write and fsync
// whole batches; none belongs on the event loop). While an Apply is open, only that Apply and
// the const accessors may be used. Distinct ReplicaStores (distinct VMs) are independent. The
// Catalog must outlive the store; Catalog itself is thread-safe. One ReplicaStore per VM per
// host: open() takes an exclusive flock on <folder>/undo (SystemInUse when held).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/blocks/hash.h"
#include "core/model/enums.h"
#include "core/model/guid.h"
#include "core/model/status.h"
#include "core/store/catalog.h"
#include "core/store/fs.h"
#include "core/store/replica_copy.h"
#include "core/store/undo_log.h"

namespace vmrepl {

// The kinds of recovery point (spec §6). The numbers are stored in the catalog: never renumber.
enum class RecoveryPointType : uint16_t {
  Standard = 1,
  ApplicationConsistent = 2,
  PlannedFailover = 3,
};

std::optional<RecoveryPointType> recovery_point_type_from_number(uint64_t n);
// "Microsoft:Hyper-V:Snapshot:Replica:Standard" and so on.
std::string_view virtual_system_type(RecoveryPointType t);
std::optional<RecoveryPointType> recovery_point_type_from_virtual_system_type(std::string_view s);

// A committed recovery point.
struct RecoveryPoint {
  uint64_t seq = 0;
  RecoveryPointType type = RecoveryPointType::Standard;
  int64_t created_us = 0;  // when the primary took it, Unix epoch microseconds
  ReplicationType replication_type = ReplicationType::Regular;  // LastReplicationType
  HashAlgorithm hash_algorithm = HashAlgorithm::Xxh3_128;
  std::vector<BlockHash> roots;  // Merkle root of each disk at this point, by disk index
  bool has_undo = false;         // its undo log (to the point before it) is kept

  std::string_view virtual_system_type() const { return vmrepl::virtual_system_type(type); }
};

// What commit() records with the point.
struct CommitInfo {
  int64_t created_us = 0;
  ReplicationType replication_type = ReplicationType::Regular;  // not None
  HashAlgorithm hash_algorithm = HashAlgorithm::Xxh3_128;
  std::vector<BlockHash> roots;  // exactly one per disk
  // In the commit's own transaction, so the point and what follows from it land together:
  // with keep_history, prune(keep_history) (the logs it frees are deleted after the
  // transaction, and kept open in `dead` when given, see prune); `also`, the caller's own
  // changes (the replica's relationship record).
  std::optional<uint32_t> keep_history;
  std::vector<fs::Fd>* dead = nullptr;
  std::function<Status(sqlite::Db&)> also;
};

// Bytes to write in place: `data` goes to byte `offset` of the block. A whole block is offset 0
// with data of the block's exact length, or empty data: a zero block (punched as a hole; so is
// data that is all zeros). Anything else is a partial update, which writes (and logs the
// pre-image of) only its bytes: non-empty data with offset + data.size() <= the block's length
// (all-zero data punches that range).
struct BlockUpdate {
  uint32_t disk = 0;
  uint64_t block = 0;
  std::span<const std::byte> data;
  uint32_t offset = 0;
};

struct ApplyStats {
  uint64_t batches = 0;         // undo batches appended
  uint64_t blocks_written = 0;  // whole data blocks written in place
  uint64_t zero_blocks = 0;     // whole zero blocks punched
  uint64_t blocks_skipped = 0;  // zero written over zero: nothing logged, nothing written
  uint64_t partial_blocks = 0;  // partial updates written (only their bytes)
  uint64_t preimages = 0;       // undo records logged (whole blocks and ranges)
  uint64_t preimage_bytes = 0;  // old bytes those records hold (zero records hold none)
  uint64_t log_bytes = 0;       // size of the undo log
};

struct MaterializeResult {
  std::vector<CopyMethod> methods;  // how each disk was made
  uint64_t bytes_copied = 0;        // data bytes the sparse copies moved
  uint64_t undo_logs_applied = 0;
  uint64_t blocks_restored = 0;
  // Reflink when every disk was cloned, else SparseCopy.
  CopyMethod method() const;
};

// What open() found and repaired.
struct ReplicaRecovery {
  std::vector<uint64_t> rolled_back;  // logs above image_seq played back, newest first
  std::vector<std::string> removed;   // files deleted from undo/ (leftovers)
  // Damage a crash of this code cannot cause, reported rather than hidden (a point's log is
  // missing): Failed naming it, else OK. The image itself is at the latest point either way.
  Status integrity;
};

class ReplicaStore {
 public:
  class Apply;

  // Opens the replica of `vm_id` in `folder` (absolute) with disks of `disk_sizes` bytes and
  // cycles of `block_size`-byte blocks (a power of two, 4 KiB..16 MiB), then recovers (see
  // above). REQUIRES: the VM is defined in `catalog` (FileNotFound otherwise). Missing images
  // are created sparse only while nothing was ever applied; an image of another size is
  // InvalidParameter.
  static Result<std::unique_ptr<ReplicaStore>> open(Catalog& catalog, const Guid& vm_id,
                                                    std::string folder,
                                                    std::vector<uint64_t> disk_sizes,
                                                    uint32_t block_size);

  ReplicaStore(const ReplicaStore&) = delete;
  ReplicaStore& operator=(const ReplicaStore&) = delete;
  ~ReplicaStore();

  // Starts applying the cycle that becomes point `seq`. InvalidParameter unless
  // image_seq() < seq <= INT64_MAX; InvalidState while another Apply is open.
  Result<std::unique_ptr<Apply>> begin_apply(uint64_t seq, RecoveryPointType type);

  // The committed points, oldest first; the latest (the image's content) last.
  Result<std::vector<RecoveryPoint>> points() const;

  // Keeps the latest point plus `keep_history` older ones (RecoveryHistory; 0 = the latest
  // only) and merges the older ones away. Returns how many points were removed. With `dead`,
  // the logs it unlinks stay open there: closing them (dropping the vector) is what frees
  // their space, milliseconds per 10 MB on ext4, which a caller that must answer first (the
  // replica, its ack) does after answering.
  Result<uint32_t> prune(uint32_t keep_history, std::vector<fs::Fd>* dead = nullptr);

  // Writes point `seq` as new disks at `dest_paths` (one per disk; created, or truncated and
  // replaced) and fsyncs them: a reflink clone of each image where the filesystem allows,
  // else a sparse copy, then the undo logs of every later point applied newest first to the
  // copies. The store is not changed. InvalidParameter for an unknown point, a wrong number
  // of paths, or a path that is one of the store's files. On failure the destination files'
  // contents are unspecified.
  Result<MaterializeResult> materialize(uint64_t seq, const std::vector<std::string>& dest_paths);

  // Destructive: makes point `seq` the image's content and drops every later point.
  Status rollback_to(uint64_t seq);
  // Keeps point `seq` as the only point (CommitFailover). InvalidState unless it is the latest.
  Status drop_points_except(uint64_t seq);
  // Drops every point and undo log; the image stays as it is (after a resync).
  Status reset();
  // Forgets a replica altogether: its catalog rows (points and image_seq) in one transaction.
  // The caller deletes the folder's files afterwards; a store must not be open for the VM.
  static Status forget(Catalog& catalog, const Guid& vm_id);

  // The seq of the newest apply wholly in the image: the latest point's seq, or after reset()
  // the seq the dropped points had reached. The next apply must be above it.
  uint64_t image_seq() const { return image_seq_; }
  const ReplicaRecovery& recovered() const { return recovered_; }
  const Guid& vm_id() const { return vm_id_; }
  const std::string& folder() const { return folder_; }
  const std::vector<uint64_t>& disk_sizes() const { return disk_sizes_; }
  uint32_t block_size() const { return block_size_; }
  std::string image_path(uint32_t disk) const;
  std::string undo_path(uint64_t seq) const;

 private:
  ReplicaStore(Catalog& catalog, const Guid& vm_id, std::string folder,
               std::vector<uint64_t> disk_sizes, uint32_t block_size);

  Status recover();
  // The catalog half of prune, inside the caller's transaction: the logs to delete go to
  // `files`. Returns how many points it removes.
  Result<uint32_t> prune_rows(sqlite::Db& db, uint32_t keep_history,
                              std::vector<uint64_t>* files) const;
  Status usable() const;  // OK unless an Apply is open or an earlier failure broke the store
  // Plays log `seq` back into `fds` (the images or copies); counts restored blocks.
  Status play_back(uint64_t seq, const std::vector<int>& fds, bool require_seal,
                   uint64_t* restored) const;
  // Verifies log `seq` completely without applying it.
  Status verify_log(uint64_t seq) const;
  Status fsync_images() const;
  // Unlinks the logs, then fsyncs the folder; with `dead`, each log's file is opened first
  // and kept there (see prune).
  Status remove_logs(const std::vector<uint64_t>& seqs, std::vector<fs::Fd>* dead = nullptr);
  // Rolls the image back from an unfinished log (above image_seq) and deletes the log.
  Status undo_unfinished(uint64_t seq, bool require_seal);
  std::vector<int> image_fds() const;
  void apply_closed() { apply_open_ = false; }

  Catalog& catalog_;
  const Guid vm_id_;
  const std::string vm_text_;
  const std::string folder_;
  const std::vector<uint64_t> disk_sizes_;
  const uint32_t block_size_;
  fs::Fd folder_fd_;
  fs::Fd undo_fd_;  // flock'ed for the store's lifetime
  std::vector<fs::Fd> images_;
  uint64_t image_seq_ = 0;
  bool apply_open_ = false;
  // Set when the image may be between points (a failed rollback); open() recovers.
  Status broken_;
  ReplicaRecovery recovered_;
  // The open apply's pre-image reads and the blocks it updates in part, kept across applies
  // (their pages stay mapped).
  std::vector<std::byte> preimages_;
  std::vector<std::byte> partial_blocks_;
  // Buffers the Apply's writer is done with, for the next batches' bytes (their pages stay
  // mapped). Guarded by the open Apply's mutex while its writer runs.
  std::vector<std::vector<std::byte>> spare_bufs_;
};

// One cycle being applied. Made by ReplicaStore::begin_apply; destroying it without commit()
// aborts (rolls back) the cycle. Must not outlive its store. Not movable (the store tracks it).
class ReplicaStore::Apply {
 public:
  Apply(const Apply&) = delete;
  Apply& operator=(const Apply&) = delete;
  ~Apply();

  uint64_t seq() const { return seq_; }
  RecoveryPointType type() const { return type_; }
  const ApplyStats& stats() const { return stats_; }

  // Queue a block (copied); the queue is applied by apply_batch() or by itself when it holds
  // max_batch_blocks(). `data` must be the block's exact length (block_size, or the shorter
  // tail of the last block). InvalidParameter for a disk or block outside the replica.
  Status write(uint32_t disk, uint64_t block, std::span<const std::byte> data);
  Status write_zero(uint32_t disk, uint64_t block);
  // Applies the queued blocks durably (see the header comment). After a failure the Apply
  // accepts nothing but abort() (and destruction).
  Status apply_batch();
  // Receives the whole content of a block a batch updated in part, as the image now holds it
  // (what earlier batches made of it plus this batch's updates; holes read as zeros). The span
  // is valid during the call only.
  using BlockContentFn = std::function<void(uint32_t disk, uint64_t block, std::span<const std::byte>)>;
  // Applies `updates` after the queued blocks, in order (a later write of a byte wins),
  // without copying them; partial updates included (see BlockUpdate). Large spans are split
  // into batches of max_batch_blocks() updates. A batch's writes in place run on the Apply's
  // writer thread once its undo batch is durable, while the caller goes on (its bytes are
  // copied first, up to kMaxQueuedWriteBytes waiting; beyond that the call waits): commit()
  // and abort() wait for them; wait_writes() does too.
  // `on_partial`, when set, is called once per block with a partial update in a batch, with
  // the block as the image holds it once that batch's writes are done: the caller can hash it
  // without reading it back (the store reads it whole as it takes its pre-image). A block
  // updated again by a later batch of the same call is reported again only if that update is
  // partial: pass at most max_batch_blocks() updates to get every block's content.
  Status apply_batch(std::span<const BlockUpdate> updates, const BlockContentFn& on_partial = {});
  // Waits until the writes of every batch applied so far are in the image (not durable:
  // commit() makes them so). The failure of a write fails the Apply.
  Status wait_writes() { return finish_writes(); }
  // Commits the point (see the header comment). After it the Apply is spent.
  Status commit(const CommitInfo& info);
  // Rolls the image back to where it was before begin_apply and deletes the log.
  Status abort();

  // Blocks per undo batch: 32 MiB of pre-images at most.
  uint32_t max_batch_blocks() const;
  // The bytes of queued batches a call may leave to the writer before it waits for it.
  static constexpr std::size_t kMaxQueuedWriteBytes = std::size_t{64} << 20;

 private:
  friend class ReplicaStore;
  Apply(ReplicaStore* store, uint64_t seq, RecoveryPointType type, UndoLogWriter log);

  // OK when the Apply is open and (disk, block) lies in the replica.
  Status check_block(uint32_t disk, uint64_t block) const;
  Status check_update(uint32_t disk, uint64_t block, uint32_t offset, size_t length,
                      bool partial_ok) const;
  Status apply_one_batch(std::span<const BlockUpdate> updates, const BlockContentFn& on_partial);
  // A write in place: `data` goes to byte `at` of the disk (block `block`, `offset` in it).
  struct PendingWrite {
    uint32_t disk = 0;
    uint64_t block = 0;
    uint64_t at = 0;
    std::span<const std::byte> data;
    uint32_t offset = 0;
  };
  // One batch for the writer: its writes, the buffer holding their bytes, and the blocks they
  // touch (sorted, distinct).
  struct WriteJob {
    std::vector<PendingWrite> writes;
    std::vector<std::byte> buf;
    std::vector<std::pair<uint32_t, uint64_t>> blocks;
    std::size_t bytes = 0;  // the memory it holds, counted against kMaxQueuedWriteBytes
  };
  static constexpr std::size_t kMaxSpareBufs = 4;
  // Hands a batch to the writer (started on first use); waits while kMaxQueuedWriteBytes
  // are queued. Its earlier failure fails the Apply.
  Status enqueue(WriteJob job);
  // The writer thread: takes every queued batch, fdatasyncs the log once, writes them.
  void writer_loop();
  Status write_in_place(std::span<const PendingWrite> writes) const;
  // True when a queued or running batch writes `key`'s block.
  bool being_written(const std::pair<uint32_t, uint64_t>& key) const;
  // Waits until every queued batch is written; the writer's failure fails the Apply.
  Status finish_writes();
  // finish_writes(), then ends the writer thread.
  Status stop_writer();
  // Marks bytes [begin, end) of a block as logged.
  void mark_logged(uint32_t disk, uint64_t block, uint32_t begin, uint32_t end, uint32_t length);
  Status fail(Status st);

  ReplicaStore* store_;
  const uint64_t seq_;
  const RecoveryPointType type_;
  UndoLogWriter log_;
  // A queued block: its bytes are queue_buf_[offset, offset + length); length 0 = zero block.
  struct Queued {
    uint32_t disk = 0;
    uint64_t block = 0;
    std::size_t offset = 0;
    std::size_t length = 0;
  };

  // Sorted, disjoint, non-adjacent byte ranges [begin, end) of a block.
  using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

  // Per disk: blocks whose whole pre-image is logged, and (kept apart, so whole-block cycles
  // pay nothing for it) the logged bytes of blocks logged only in part.
  std::vector<std::unordered_set<uint64_t>> logged_;
  std::vector<std::unordered_map<uint64_t, Ranges>> partly_logged_;
  std::vector<Queued> queue_;
  std::vector<std::byte> queue_buf_;
  std::vector<std::byte> zeros_;  // one zero block, for punching
  // The writer: batches queued (jobs_) and being written (running_), guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the writer waits for jobs or stop_
  std::condition_variable done_cv_;  // callers wait for room or an empty queue
  std::vector<WriteJob> jobs_;
  std::vector<WriteJob> running_;
  std::size_t queued_bytes_ = 0;  // of jobs_ and running_
  bool stop_ = false;
  Status writer_status_;
  std::thread writer_;
  bool commit_attempted_ = false;
  enum class State { Open, Committed, Aborted, Failed } state_ = State::Open;
  Status failure_;
  ApplyStats stats_;
};

}  // namespace vmrepl
