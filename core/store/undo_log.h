// Undo log: the pre-images one applied cycle overwrote in a replica image, so the image can be
// taken back to the point before it (spec §10 "Storage": one undo log, .HRU, per recovery
// point; failing over to an older point applies them newest first). ReplicaStore writes one
// per recovery point, undo/<seq>.undo; this file is the format and its bounded reader/writer.
//
// File layout (all integers little-endian; XXH3-64 is the checksum):
//   header, 64 bytes:
//     0 magic "VMRUNDO\0" | 8 version u32 (=2) | 12 header_size u32 (=64) | 16 vm_id (16 GUID
//     bytes) | 32 seq u64 | 40 disk_count u32 | 44 block_size u32 | 48 reserved u64 (=0)
//     | 56 XXH3-64(bytes 0..56, seed 0)
//   then batches, each one appended and fdatasync'ed as a whole:
//     batch header, 40 bytes:
//       0 tag "UBAT" | 4 flags u32 (1 = seal) | 8 batch_no u64 (0, 1, 2... in file order)
//       | 16 payload_bytes u64 | 24 record_count u32 | 28 reserved u32 (=0)
//       | 32 XXH3-64(bytes 0..32, seed = seq)
//     payload: record_count records, each
//       0 disk u32 | 4 flags u32 | 8 block u64 | 16 length u32 | 20 offset u32 | data
//     flags: 1 = zero (the old content was all zeros or a hole; no data stored), 2 = range.
//       whole block: offset 0; length 0 when zero, else the block's length with data[length].
//       range (2): the bytes [offset, offset + length) of the block only; 0 < length,
//         offset + length <= the block's length, and never the whole block (that is a whole
//         record: one encoding per content). data[length] follows, except with zero (3): then
//         length is the range's and no data follows, since the range alone says what to punch.
//     ReplicaStore logs each byte at most once per log (the bytes its cycle had not
//     overwritten yet), so the records of one block are disjoint and play back in any order.
//     commit record, 24 bytes:
//       0 tag "UCMT" | 4 reserved u32 (=0) | 8 batch_no u64
//       | 16 XXH3-64(batch header + payload + commit bytes 0..16, seed = seq)
//   The last batch of a finished log is the seal: flags 1, no records. A log is sealed before
//   its point is committed, so a committed point's log without its seal is damage.
//
// What a reader accepts. A batch counts only when its header and its commit record are both
// intact; then its checksum must match, or the log is refused (Failed, naming the file and
// the batch's offset): a flipped byte is never guessed around. Bytes after the last counted
// batch are a torn tail (a crash during the append that was never fsynced, so none of its
// pre-images' blocks were overwritten yet) and are ignored — unless the file ends with an
// intact commit record for that batch or a later one, which shows that committed data follows
// the defect (Failed). A sealed log must end exactly at its seal. Every length is checked against
// the block size, the disk sizes, kMaxBatchPayload and the file size before anything is read or
// allocated; records naming a disk or block outside the replica are refused.
//
// Versions: 1 had whole-block records only (the range flag is unknown there and refused, so is
// a nonzero offset); 2 added range records. Writers write 2; readers read both.
//
// The one case a reader cannot tell from a torn tail: damage to the framing (header or commit
// record, not the data) of the final batch of an unsealed log. That log belongs to an apply
// that never committed, and such damage needs a crash and media corruption in the same bytes.
//
// Thread-safety: an UndoLogWriter or UndoLogReader is used by one thread at a time; distinct
// objects (also on the same file) are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/guid.h"
#include "core/model/status.h"
#include "core/store/fs.h"

namespace vmrepl {

struct UndoLogHeader {
  Guid vm_id;
  uint64_t seq = 0;
  uint32_t disk_count = 0;
  uint32_t block_size = 0;
};

// One pre-image: the content `block` of `disk` (or of the bytes [offset, offset + range_length)
// of it) had before the cycle first overwrote it.
struct UndoRecord {
  uint32_t disk = 0;
  uint64_t block = 0;
  bool zero = false;                // the old content was all zeros: restore as a hole
  std::span<const std::byte> data;  // the old bytes; empty when zero
  // A range record: range_length > 0, and data (unless zero) holds exactly range_length bytes.
  uint32_t offset = 0;
  uint32_t range_length = 0;  // 0 = the whole block

  bool is_range() const { return range_length != 0; }
};

// What a full read of a log found.
struct UndoLogScan {
  uint64_t batches = 0;     // counted batches, the seal included
  uint64_t records = 0;     // records in them
  bool sealed = false;      // the log ends with its seal
  uint64_t torn_bytes = 0;  // ignored bytes after the last counted batch
};

class UndoLog {
 public:
  static constexpr char kMagic[8] = {'V', 'M', 'R', 'U', 'N', 'D', 'O', '\0'};
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kMinVersion = 1;  // the oldest version readers accept
  static constexpr std::size_t kHeaderSize = 64;
  static constexpr std::size_t kBatchHeaderSize = 40;
  static constexpr std::size_t kRecordHeaderSize = 24;
  static constexpr std::size_t kCommitSize = 24;
  static constexpr uint32_t kBatchTag = 0x54414255;   // "UBAT"
  static constexpr uint32_t kCommitTag = 0x544D4355;  // "UCMT"
  static constexpr uint32_t kBatchSeal = 1;
  static constexpr uint32_t kRecordZero = 1;
  static constexpr uint32_t kRecordRange = 2;  // version 2 on
  // A batch's payload never exceeds this (writers split; readers refuse more), which bounds
  // the memory a reader allocates to verify one batch.
  static constexpr uint64_t kMaxBatchPayload = uint64_t{64} << 20;
  static constexpr uint32_t kMinBlockSize = 4096;
  static constexpr uint32_t kMaxBlockSize = 16u << 20;

  // "<seq>.undo" and its parse (decimal, no sign or leading zero, 1..INT64_MAX).
  static std::string file_name(uint64_t seq);
  static bool parse_file_name(std::string_view name, uint64_t* seq);
  // A log being created: "<seq>.undo.tmp". Never holds records; deleted at recovery.
  static std::string temp_file_name(uint64_t seq);
  static bool parse_temp_file_name(std::string_view name, uint64_t* seq);

  // The bytes of the length of `block` in a disk of `disk_size` bytes (the last block of a
  // disk may be short). REQUIRES: block < ceil(disk_size / block_size).
  static uint64_t block_length(uint64_t disk_size, uint32_t block_size, uint64_t block);
};

// Appends batches to a new log.
class UndoLogWriter {
 public:
  // Creates `<seq>.undo` inside `dir_fd` durably: the header is written to the temp name,
  // fdatasync'ed, renamed into place and the directory fsynced, so a log file that exists
  // always has a whole header. `display` names the file in messages. Fails (and creates
  // nothing) when the file exists.
  static Result<UndoLogWriter> create(int dir_fd, std::string display, const UndoLogHeader& h);

  UndoLogWriter() = default;
  UndoLogWriter(UndoLogWriter&&) noexcept = default;
  UndoLogWriter& operator=(UndoLogWriter&&) noexcept = default;
  UndoLogWriter(const UndoLogWriter&) = delete;
  UndoLogWriter& operator=(const UndoLogWriter&) = delete;

  // Appends one batch with its commit record and, unless `sync` is false, fdatasyncs. Records
  // must lie inside the disks given here and be well-formed (see the header comment; a range's
  // data, unless zero, is exactly range_length bytes): InvalidParameter otherwise, nothing
  // written. After an I/O failure the file may end in a torn batch and the writer refuses
  // further appends.
  Status append_batch(std::span<const UndoRecord> records, std::span<const uint64_t> disk_sizes,
                      bool sync = true);
  // fdatasyncs what was appended. It touches no member but the file: it may run on another
  // thread while this one appends (a later batch may or may not be made durable with it).
  // After a failure the caller must append nothing more.
  Status sync() const;
  // Appends the seal and, unless `sync` is false, fdatasyncs. No batch may follow.
  Status seal(bool sync = true);

  uint64_t size() const { return size_; }
  uint64_t batches() const { return batches_; }
  const std::string& display() const { return display_; }

 private:
  Status append(uint32_t flags, std::span<const UndoRecord> records, uint64_t payload, bool sync);

  fs::Fd fd_;
  std::string display_;
  UndoLogHeader header_;
  uint64_t size_ = 0;
  uint64_t batches_ = 0;
  bool sealed_ = false;
  Status failed_;
};

// Reads and verifies a log.
class UndoLogReader {
 public:
  // Opens `<seq>.undo` inside `dir_fd` (never following a symlink) and checks its header:
  // magic, version, checksum, and that it belongs to `vm_id`, `seq` and a replica with
  // disk_sizes.size() disks. Failed (naming `display`) otherwise; FileNotFound when missing.
  static Result<UndoLogReader> open(int dir_fd, std::string display, const Guid& vm_id,
                                    uint64_t seq, std::vector<uint64_t> disk_sizes);

  UndoLogReader(UndoLogReader&&) noexcept = default;
  UndoLogReader& operator=(UndoLogReader&&) noexcept = default;
  UndoLogReader(const UndoLogReader&) = delete;
  UndoLogReader& operator=(const UndoLogReader&) = delete;

  const UndoLogHeader& header() const { return header_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return file_size_; }

  // Called once per counted batch with its records, after the whole batch was verified; its
  // spans are valid during the call only. An error it returns stops the read.
  using BatchFn = std::function<Status(std::span<const UndoRecord> records)>;
  // Reads every batch in order (see the header comment for what counts). With
  // `require_seal`, a log that does not end in its seal is Failed.
  Result<UndoLogScan> read(const BatchFn& fn, bool require_seal);

 private:
  UndoLogReader() = default;
  // Decides what the bytes from `pos` on are: a torn tail (OK) or damage (Failed).
  Status classify_tail(uint64_t pos, uint64_t next_batch, std::string_view why) const;

  fs::Fd fd_;
  std::string display_;
  UndoLogHeader header_;
  uint32_t version_ = 0;
  std::vector<uint64_t> disk_sizes_;
  uint64_t file_size_ = 0;
};

}  // namespace vmrepl
