// CycleHistory: the changed-block list of every acknowledged cycle of a VM, kept for the
// RecoveryHistory cycles (DESIGN.md, Cycle step 5). Reverse replication (Reverse step 3)
// asks for the union of the lists of every cycle after the common point k; if any of them
// is missing or damaged the answer is an error naming that cycle, never a partial union, and
// the engine falls back to a Merkle resync.
//
// One file per cycle in the history's directory, named cycle-<seq, 20 digits>.cbl, written
// as a temp file (cycle-<seq>.<n>.cbl.tmp), fsynced, renamed over the list and the directory
// fsynced, so a crash leaves the old file or the new one, never a mix; open() removes the
// temp files a crash left. Format (little-endian):
//   magic "VMRCYCL\0" (8) | version u32 (=1) | block_size u32 | seq u64 | disk_count u32
//   | reserved u32 (=0)                                                   -> 32-byte header
//   | per disk: run_count varint, then per run: gap varint (first - end of the previous run,
//     0 before the first), count - 1 varint                    (runs ascending, LEB128)
//   | XXH3-64 (seed 0) of every byte before it, u64
// The checksum is verified before anything is decoded, so get() returns all of a list or an
// error. Block indexes are in units of the history's block size; a file written with another
// block size is refused.
//
// Thread-safety: every method may be called from any thread; one mutex serializes them, and
// the steps of a PendingPut (commit, destruction) too. put(), prepare_put(), commit() and
// prune() block on fsync: call them from a worker thread. One CycleHistory per directory.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/model/status.h"
#include "core/store/change_block_set.h"
#include "core/store/fs.h"

namespace vmrepl {

class CycleHistory {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint32_t kMaxDisks = 1024;
  // A list file larger than this is refused as damaged rather than read into memory.
  static constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;

  // Opens (creating it when missing) the history kept in the absolute path `dir` for blocks
  // of `block_size` bytes. Removes leftovers of interrupted writes. InvalidParameter for a
  // bad block size; Failed/AccessDenied for I/O.
  static Result<std::unique_ptr<CycleHistory>> open(const std::string& dir, uint32_t block_size);
  CycleHistory(const CycleHistory&) = delete;
  CycleHistory& operator=(const CycleHistory&) = delete;

  // Durably stores cycle `seq`'s changed blocks (`disks[d]` for disk d), replacing an earlier
  // list of the same cycle. InvalidParameter for more than kMaxDisks disks.
  Status put(uint64_t seq, const DiskBlockSets& disks);
  // put() in two steps, so the write and its fsync can overlap other work (the engine writes
  // a cycle's list while the replica applies the cycle, and commits it once acknowledged):
  // prepare_put() writes and fsyncs a temp file of its own, which get(), seqs() and
  // union_since() do not see; commit() renames it over the list of `seq` and fsyncs the
  // directory. Dropped before commit(), the temp file is removed; after a crash, open()
  // removes it. REQUIRES: the history outlives its PendingPuts.
  class PendingPut {
   public:
    PendingPut() = default;
    PendingPut(PendingPut&& o) noexcept;
    PendingPut& operator=(PendingPut&& o) noexcept;
    ~PendingPut();
    // InvalidState when there is nothing to commit (committed already, or moved from).
    Status commit();

   private:
    friend class CycleHistory;
    void discard();
    CycleHistory* history_ = nullptr;
    uint64_t seq_ = 0;
    std::string tmp_;  // empty once committed or discarded
  };
  Result<PendingPut> prepare_put(uint64_t seq, const DiskBlockSets& disks);
  // The list of cycle `seq`: FileNotFound when there is none; Failed naming the cycle and
  // saying "corrupt" when the file fails its checksum or does not decode; Failed for a list
  // recorded with another block size or an unknown version.
  Result<DiskBlockSets> get(uint64_t seq) const;
  // The cycles with a list, ascending.
  Result<std::vector<uint64_t>> seqs() const;
  // Keeps the `keep` newest lists and deletes the others.
  Status prune(std::size_t keep);
  // Union of the lists of every cycle in (after, through], disk by disk (as many disks as the
  // widest list). Every one of those cycles must have a readable list: otherwise FileNotFound
  // (missing) or Failed (corrupt) naming the first such cycle. Empty for after == through;
  // InvalidParameter when through < after. Taking `through` (the last acknowledged cycle)
  // is what lets a missing newest list be detected.
  Result<DiskBlockSets> union_since(uint64_t after, uint64_t through) const;

  // "cycle-00000000000000000042.cbl".
  static std::string file_name(uint64_t seq);
  uint32_t block_size() const { return block_size_; }

 private:
  CycleHistory(fs::Fd dir, uint32_t block_size) : dir_(std::move(dir)), block_size_(block_size) {}
  Result<DiskBlockSets> get_locked(uint64_t seq) const;
  Result<std::vector<uint64_t>> seqs_locked() const;

  mutable std::mutex mu_;
  const fs::Fd dir_;
  const uint32_t block_size_;
  uint64_t temps_made_ = 0;  // makes each temp file's name unique (under mu_)
};

}  // namespace vmrepl
