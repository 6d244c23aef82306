// BlockIndex: the persisted per-block hash index of one disk image, the basis for finding
// changed blocks by comparison (DESIGN.md, cycle step 2) and for the Merkle tree.
//
// The disk is cut into fixed blocks of block_size bytes (a power of two, 4 KiB..16 MiB);
// block_count = ceil(disk_size / block_size) and the last block may be partial. An entry's
// hash is always the hash of that block's bytes (only its own bytes for the partial last
// block). A block of zeros is flagged Zero and its hash is the precomputed hash of zeros of
// its length, whether it was a hole or written zeros, so a sparse image and a fully written
// copy of it have identical indexes and Merkle roots.
//
// File format (little-endian), written by save() and checked by load():
//   magic "VMRBIDX\0" (8) | version u32 (=1) | algorithm u32 | block_size u32 | reserved u32 (=0)
//   | disk_size u64 | block_count u64                                   -> 40-byte header
//   | block_count x { flags u8 | digest (16 bytes for XXH3-128, 32 for SHA-256) }
//   | XXH3-64 (seed 0) of every byte before it, u64
//
// Thread-safety: a BlockIndex is a value without internal synchronization: concurrent const
// use is safe; a writer needs exclusive access, except that distinct entries may be written
// concurrently through mutable_entries() (the disk scanner's workers do so). load() and
// save() may run on any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/blocks/hash.h"
#include "core/model/status.h"

namespace vmrepl {

struct BlockEntry {
  static constexpr uint8_t kZero = 1;  // the block is all zeros (hole or written zeros)

  BlockHash hash;
  uint8_t flags = 0;

  bool is_zero() const { return (flags & kZero) != 0; }
  bool operator==(const BlockEntry&) const = default;
};

class BlockIndex {
 public:
  static constexpr uint32_t kMinBlockSize = 4096;
  static constexpr uint32_t kMaxBlockSize = 16u << 20;
  static constexpr uint32_t kDefaultBlockSize = 64u << 10;
  // 64 PiB: far above any disk image, and keeps every size computation below 2^64.
  static constexpr uint64_t kMaxDiskSize = uint64_t{1} << 56;
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr std::size_t kHeaderSize = 40;

  // An empty index (disk_size 0, XXH3-128, default block size).
  BlockIndex();
  BlockIndex(BlockIndex&&) noexcept = default;
  BlockIndex& operator=(BlockIndex&& o) noexcept;
  // The entries' memory goes back to a process-wide pool (at most 64 MiB kept) that create(),
  // clone() and load() draw from: an index of a large disk is MiBs, rebuilt every cycle, and
  // fresh pages cost a fault each.
  ~BlockIndex();
  // Indexes can be large (17+ bytes per block); copies are explicit.
  BlockIndex(const BlockIndex&) = delete;
  BlockIndex& operator=(const BlockIndex&) = delete;
  BlockIndex clone() const;

  // An index for a disk of `disk_size` bytes with every block marked Zero (the state of a
  // disk that is one hole). InvalidParameter for a bad algorithm, block size or disk size;
  // OutOfMemory when the entries cannot be allocated.
  static Result<BlockIndex> create(HashAlgorithm algorithm, uint32_t block_size,
                                   uint64_t disk_size);
  // OK when create() would accept these parameters; else InvalidParameter saying why.
  static Status check_geometry(uint32_t algorithm, uint32_t block_size, uint64_t disk_size);
  static uint64_t block_count_for(uint64_t disk_size, uint32_t block_size) {
    return (disk_size + block_size - 1) / block_size;
  }

  HashAlgorithm algorithm() const { return algorithm_; }
  uint32_t block_size() const { return block_size_; }
  uint64_t disk_size() const { return disk_size_; }
  uint64_t block_count() const { return entries_.size(); }
  // REQUIRES for the accessors below: i < block_count().
  uint64_t block_offset(uint64_t i) const { return i * block_size_; }
  uint32_t block_length(uint64_t i) const;
  const BlockEntry& entry(uint64_t i) const { return entries_[i]; }
  std::span<const BlockEntry> entries() const { return entries_; }
  std::span<BlockEntry> mutable_entries() { return entries_; }
  // The hash of a zero block i: of block_size zeros, or of the last block's length.
  const BlockHash& zero_hash(uint64_t i) const;

  void set_zero(uint64_t i) { entries_[i] = BlockEntry{zero_hash(i), BlockEntry::kZero}; }
  // REQUIRES: `hash` is the hash of block i's bytes and they are not all zero.
  void set_data(uint64_t i, const BlockHash& hash) { entries_[i] = BlockEntry{hash, 0}; }
  // Zero-detects and hashes block i's bytes. REQUIRES: data.size() == block_length(i).
  void set_from_bytes(uint64_t i, std::span<const std::byte> data);

  // Writes the index to `path` atomically: a temporary file in the same directory, fsync,
  // rename over `path`, fsync of the directory. The file has mode 0600.
  Status save(const std::string& path) const;
  // save() in two steps, so the write and its fsync can overlap other work: prepare_save()
  // writes and fsyncs the temporary file; commit() renames it over `path` and fsyncs the
  // directory. Dropped before commit(), the temporary file is removed and `path` untouched.
  class PendingSave {
   public:
    PendingSave() = default;
    PendingSave(PendingSave&& o) noexcept;
    PendingSave& operator=(PendingSave&& o) noexcept;
    ~PendingSave();
    Status commit();

   private:
    friend class BlockIndex;
    std::string path_, tmp_;
  };
  Result<PendingSave> prepare_save(const std::string& path) const;
  // Reads an index written by save(). FileNotFound when `path` does not exist; Failed, with
  // the reason, for a file that is truncated, corrupt (checksum), of an unknown version or
  // algorithm, or whose counts disagree with each other or with the file size. Allocation is
  // bounded by the actual file size, never by a count read from the file.
  static Result<BlockIndex> load(const std::string& path);

  bool operator==(const BlockIndex& o) const;

 private:
  HashAlgorithm algorithm_;
  uint32_t block_size_;
  uint64_t disk_size_ = 0;
  std::vector<BlockEntry> entries_;
  BlockHash zero_full_;  // hash of block_size zero bytes
  BlockHash zero_tail_;  // hash of the last block's zero bytes (== zero_full_ when not partial)
};

// Indices of the blocks whose entries differ between a and b, ascending. Blocks present in
// only one index (different disk sizes) count as differing. InvalidParameter when the
// algorithms or block sizes differ, since such hashes cannot be compared.
Result<std::vector<uint64_t>> diff(const BlockIndex& a, const BlockIndex& b);

}  // namespace vmrepl
