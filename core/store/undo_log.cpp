#include "core/store/undo_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <memory>

#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"

namespace vmrepl {
namespace {

constexpr std::string_view kSuffix = ".undo";
constexpr std::string_view kTempSuffix = ".undo.tmp";
constexpr mode_t kFileMode = 0600;

void put_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_u64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint32_t get_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t xxh64(const std::byte* p, std::size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(p, n, seed);
}

bool valid_block_size(uint32_t bs) {
  return bs >= UndoLog::kMinBlockSize && bs <= UndoLog::kMaxBlockSize && (bs & (bs - 1)) == 0;
}

uint64_t block_count(uint64_t disk_size, uint32_t block_size) {
  return disk_size / block_size + (disk_size % block_size != 0 ? 1 : 0);
}

std::string at(uint64_t off) { return " at offset " + std::to_string(off); }

// Why a record header does not fit the format `version` or the replica's geometry, or "" when
// it does. `length` and `offset` are the header's fields.
std::string record_problem(uint32_t version, uint32_t disk, uint64_t block, uint32_t flags,
                           uint32_t length, uint32_t offset, std::span<const uint64_t> disk_sizes,
                           uint32_t block_size) {
  if (disk >= disk_sizes.size())
    return "disk " + std::to_string(disk) + " does not exist (the replica has " +
           std::to_string(disk_sizes.size()) + " disks)";
  const uint64_t blocks = block_count(disk_sizes[disk], block_size);
  const std::string what = "disk " + std::to_string(disk) + " block " + std::to_string(block);
  if (block >= blocks)
    return what + " is past the end (" + std::to_string(blocks) + " blocks)";
  const uint32_t known =
      UndoLog::kRecordZero | (version >= 2 ? UndoLog::kRecordRange : uint32_t{0});
  if ((flags & ~known) != 0)
    return "unknown flags " + std::to_string(flags) + " (format version " +
           std::to_string(version) + ")";
  const uint64_t block_len = UndoLog::block_length(disk_sizes[disk], block_size, block);
  if ((flags & UndoLog::kRecordRange) == 0) {
    if (offset != 0) return what + ": offset " + std::to_string(offset) + " without the range flag";
    const uint64_t want = (flags & UndoLog::kRecordZero) != 0 ? 0 : block_len;
    if (length != want)
      return "length " + std::to_string(length) + "; " + what + " needs " + std::to_string(want);
    return {};
  }
  const std::string range = "range of " + std::to_string(length) + " bytes at offset " +
                            std::to_string(offset) + " of " + what + " (" +
                            std::to_string(block_len) + " bytes)";
  if (length == 0) return "empty " + range;
  if (uint64_t{offset} + length > block_len) return range + " runs past the block";
  if (offset == 0 && length == block_len) return range + " is the whole block (not a range)";
  return {};
}

// The data bytes that follow a record header.
uint32_t data_bytes(uint32_t flags, uint32_t length) {
  return (flags & UndoLog::kRecordZero) != 0 ? 0 : length;
}

// A record's header fields as the writer stores them.
uint32_t flags_of(const UndoRecord& r) {
  return (r.zero ? UndoLog::kRecordZero : 0) | (r.is_range() ? UndoLog::kRecordRange : 0);
}
uint32_t length_of(const UndoRecord& r) {
  return r.is_range() ? r.range_length : static_cast<uint32_t>(r.data.size());
}

struct XxhFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

}  // namespace

// --- UndoLog ---

std::string UndoLog::file_name(uint64_t seq) { return std::to_string(seq) + std::string(kSuffix); }
std::string UndoLog::temp_file_name(uint64_t seq) {
  return std::to_string(seq) + std::string(kTempSuffix);
}

namespace {
bool parse_seq_with(std::string_view name, std::string_view suffix, uint64_t* seq) {
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return false;
  const std::string_view digits = name.substr(0, name.size() - suffix.size());
  if (digits.empty() || digits.size() > 19 || digits[0] == '0') return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size()) return false;
  if (v == 0 || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *seq = v;
  return true;
}
}  // namespace

bool UndoLog::parse_file_name(std::string_view name, uint64_t* seq) {
  return parse_seq_with(name, kSuffix, seq);
}
bool UndoLog::parse_temp_file_name(std::string_view name, uint64_t* seq) {
  return parse_seq_with(name, kTempSuffix, seq);
}

uint64_t UndoLog::block_length(uint64_t disk_size, uint32_t block_size, uint64_t block) {
  const uint64_t off = block * block_size;
  return std::min<uint64_t>(block_size, disk_size - off);
}

// --- UndoLogWriter ---

Result<UndoLogWriter> UndoLogWriter::create(int dir_fd, std::string display,
                                            const UndoLogHeader& h) {
  if (!valid_block_size(h.block_size) || h.disk_count == 0 || h.seq == 0 ||
      h.seq > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Status::InvalidParameter("undo log " + display + ": invalid header (seq " +
                                    std::to_string(h.seq) + ", " + std::to_string(h.disk_count) +
                                    " disks, block size " + std::to_string(h.block_size) + ")");
  std::byte hdr[UndoLog::kHeaderSize] = {};
  std::memcpy(hdr, UndoLog::kMagic, 8);
  put_u32(hdr + 8, UndoLog::kVersion);
  put_u32(hdr + 12, UndoLog::kHeaderSize);
  std::memcpy(hdr + 16, h.vm_id.bytes().data(), 16);
  put_u64(hdr + 32, h.seq);
  put_u32(hdr + 40, h.disk_count);
  put_u32(hdr + 44, h.block_size);
  put_u64(hdr + 56, xxh64(hdr, 56, 0));

  const std::string name = UndoLog::file_name(h.seq);
  const std::string tmp = UndoLog::temp_file_name(h.seq);
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    return Status::Failed("undo log " + display + " already exists");
  // A temp file is only ever a create that did not finish: start over.
  if (::unlinkat(dir_fd, tmp.c_str(), 0) != 0 && errno != ENOENT)
    return errno_status(errno, "unlink " + display + ".tmp");
  fs::Fd fd(
      ::openat(dir_fd, tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode));
  if (!fd) return errno_status(errno, "create " + display + ".tmp");
  VMREPL_RETURN_IF_ERROR(pwrite_full(fd.get(), hdr, 0).Annotate(display));
  if (::fdatasync(fd.get()) != 0) return errno_status(errno, "fdatasync " + display + ".tmp");
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0)
    return errno_status(errno, "rename " + display + ".tmp");
  VMREPL_RETURN_IF_ERROR(fs::fsync_fd(dir_fd, "directory of " + display));

  UndoLogWriter w;
  w.fd_ = std::move(fd);
  w.display_ = std::move(display);
  w.header_ = h;
  w.size_ = UndoLog::kHeaderSize;
  return w;
}

Status UndoLogWriter::append_batch(std::span<const UndoRecord> records,
                                   std::span<const uint64_t> disk_sizes, bool sync) {
  if (!failed_.ok()) return failed_;
  if (sealed_) return Status::InvalidState("undo log " + display_ + " is sealed");
  if (disk_sizes.size() != header_.disk_count)
    return Status::InvalidParameter("undo log " + display_ + ": " +
                                    std::to_string(disk_sizes.size()) + " disk sizes for " +
                                    std::to_string(header_.disk_count) + " disks");
  uint64_t payload = 0;
  for (const auto& r : records) {
    if (r.data.size() > UndoLog::kMaxBlockSize)
      return Status::InvalidParameter("undo log " + display_ + ": record data too long");
    std::string why = record_problem(UndoLog::kVersion, r.disk, r.block, flags_of(r), length_of(r),
                                     r.offset, disk_sizes, header_.block_size);
    // A range's length is its own field: the data must agree with it (none when zero).
    if (why.empty() && r.is_range() && r.data.size() != data_bytes(flags_of(r), r.range_length))
      why = std::to_string(r.data.size()) + " data bytes for a " +
            (r.zero ? "zero " : "") + "range of " + std::to_string(r.range_length) + " bytes";
    if (!why.empty())
      return Status::InvalidParameter("undo log " + display_ +
                                      ": refusing to log a record: " + why);
    payload += UndoLog::kRecordHeaderSize + r.data.size();
  }
  if (payload > UndoLog::kMaxBatchPayload || records.size() > UINT32_MAX)
    return Status::InvalidParameter("undo log " + display_ + ": batch of " +
                                    std::to_string(payload) + " bytes exceeds the limit of " +
                                    std::to_string(UndoLog::kMaxBatchPayload));
  return append(0, records, payload, sync);
}

Status UndoLogWriter::sync() const {
  if (!fd_) return Status::InvalidState("undo log writer is not open");
  if (::fdatasync(fd_.get()) != 0) return errno_status(errno, "fdatasync undo log " + display_);
  return Status::OK();
}

Status UndoLogWriter::seal(bool sync) {
  if (!failed_.ok()) return failed_;
  if (sealed_) return Status::OK();
  VMREPL_RETURN_IF_ERROR(append(UndoLog::kBatchSeal, {}, 0, sync));
  sealed_ = true;
  return Status::OK();
}

Status UndoLogWriter::append(uint32_t flags, std::span<const UndoRecord> records,
                             uint64_t payload, bool sync) {
  if (!fd_) return Status::InvalidState("undo log writer is not open");
  const uint64_t seed = header_.seq;
  // The batch's own bytes (header, record headers, commit) go in one small buffer; the
  // pre-images are written from where they lie, not staged in a multi-MiB copy.
  std::vector<std::byte> meta(UndoLog::kBatchHeaderSize + records.size() * UndoLog::kRecordHeaderSize +
                              UndoLog::kCommitSize);
  std::vector<std::span<const std::byte>> pieces;
  pieces.reserve(2 * records.size() + 2);
  std::byte* p = meta.data();
  put_u32(p, UndoLog::kBatchTag);
  put_u32(p + 4, flags);
  put_u64(p + 8, batches_);
  put_u64(p + 16, payload);
  put_u32(p + 24, static_cast<uint32_t>(records.size()));
  put_u64(p + 32, xxh64(p, 32, seed));
  pieces.emplace_back(p, UndoLog::kBatchHeaderSize);
  std::byte* q = p + UndoLog::kBatchHeaderSize;
  for (const auto& r : records) {
    put_u32(q, r.disk);
    put_u32(q + 4, flags_of(r));
    put_u64(q + 8, r.block);
    put_u32(q + 16, length_of(r));
    put_u32(q + 20, r.offset);
    pieces.emplace_back(q, UndoLog::kRecordHeaderSize);
    if (!r.data.empty()) pieces.emplace_back(r.data);
    q += UndoLog::kRecordHeaderSize;
  }
  put_u32(q, UndoLog::kCommitTag);
  put_u64(q + 8, batches_);
  // The commit's checksum covers every byte of the batch before it, in file order.
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> h(XXH3_createState(), &XXH3_freeState);
  if (!h || XXH3_64bits_reset_withSeed(h.get(), seed) != XXH_OK)
    return Status::OutOfMemory("undo log " + display_ + ": no checksum state");
  for (const auto& piece : pieces) XXH3_64bits_update(h.get(), piece.data(), piece.size());
  XXH3_64bits_update(h.get(), q, 16);
  put_u64(q + 16, XXH3_64bits_digest(h.get()));
  pieces.emplace_back(q, UndoLog::kCommitSize);
  const uint64_t total = UndoLog::kBatchHeaderSize + payload + UndoLog::kCommitSize;

  Status st = pwritev_full(fd_.get(), pieces, size_);
  if (st.ok() && sync && ::fdatasync(fd_.get()) != 0)
    st = errno_status(errno, "fdatasync undo log " + display_);
  if (!st.ok()) {
    // After a failed write or fdatasync the file's tail is unknown: never append past it.
    failed_ = st.Annotate("undo log " + display_);
    return failed_;
  }
  size_ += total;
  ++batches_;
  return Status::OK();
}

// --- UndoLogReader ---

Result<UndoLogReader> UndoLogReader::open(int dir_fd, std::string display, const Guid& vm_id,
                                          uint64_t seq, std::vector<uint64_t> disk_sizes) {
  const std::string name = UndoLog::file_name(seq);
  fs::Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return errno_status(errno, "open undo log " + display);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "fstat undo log " + display);
  if (!S_ISREG(st.st_mode)) return Status::Failed("undo log " + display + " is not a file");
  auto bad = [&](const std::string& why) {
    return Status::Failed("undo log " + display + ": header: " + why);
  };
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < UndoLog::kHeaderSize)
    return bad("file is " + std::to_string(size) + " bytes, shorter than the header");
  std::byte hdr[UndoLog::kHeaderSize];
  VMREPL_RETURN_IF_ERROR(pread_full(fd.get(), hdr, 0).Annotate("undo log " + display));
  if (std::memcmp(hdr, UndoLog::kMagic, 8) != 0) return bad("not an undo log (bad magic)");
  if (get_u64(hdr + 56) != xxh64(hdr, 56, 0)) return bad("checksum mismatch at offset 0");
  const uint32_t version = get_u32(hdr + 8);
  if (version < UndoLog::kMinVersion || version > UndoLog::kVersion)
    return Status::NotSupported("undo log " + display + ": format version " +
                                std::to_string(version) + "; this build reads versions " +
                                std::to_string(UndoLog::kMinVersion) + " to " +
                                std::to_string(UndoLog::kVersion));
  if (get_u32(hdr + 12) != UndoLog::kHeaderSize || get_u64(hdr + 48) != 0)
    return bad("unexpected header size or reserved bytes");
  UndoLogHeader h;
  std::array<uint8_t, 16> id{};
  std::memcpy(id.data(), hdr + 16, 16);
  h.vm_id = Guid(id);
  h.seq = get_u64(hdr + 32);
  h.disk_count = get_u32(hdr + 40);
  h.block_size = get_u32(hdr + 44);
  if (h.vm_id != vm_id)
    return bad("belongs to VM " + h.vm_id.to_string() + ", not " + vm_id.to_string());
  if (h.seq != seq)
    return bad("holds seq " + std::to_string(h.seq) + ", not " + std::to_string(seq));
  if (h.disk_count != disk_sizes.size())
    return bad(std::to_string(h.disk_count) + " disks; the replica has " +
               std::to_string(disk_sizes.size()));
  if (!valid_block_size(h.block_size))
    return bad("invalid block size " + std::to_string(h.block_size));

  UndoLogReader r;
  r.fd_ = std::move(fd);
  r.display_ = std::move(display);
  r.header_ = h;
  r.version_ = version;
  r.disk_sizes_ = std::move(disk_sizes);
  r.file_size_ = size;
  return r;
}

Status UndoLogReader::classify_tail(uint64_t pos, uint64_t next_batch, std::string_view why) const {
  // An intact commit record at the very end of the file, for a batch at or after the one
  // expected at `pos`, means committed data follows the defect: that is damage, not a tear.
  if (file_size_ - pos >= UndoLog::kCommitSize) {
    std::byte c[UndoLog::kCommitSize];
    VMREPL_RETURN_IF_ERROR(pread_full(fd_.get(), c, file_size_ - UndoLog::kCommitSize)
                               .Annotate("undo log " + display_));
    const uint64_t max_batches =
        (file_size_ - pos) / (UndoLog::kBatchHeaderSize + UndoLog::kCommitSize);
    const uint64_t n = get_u64(c + 8);
    if (get_u32(c) == UndoLog::kCommitTag && get_u32(c + 4) == 0 && n >= next_batch &&
        n - next_batch < max_batches && file_size_ - UndoLog::kCommitSize > pos)
      return Status::Failed("undo log " + display_ + ": batch " + std::to_string(next_batch) +
                            at(pos) + " is damaged (" + std::string(why) +
                            ") and committed batches follow it");
  }
  return Status::OK();
}

Result<UndoLogScan> UndoLogReader::read(const BatchFn& fn, bool require_seal) {
  UndoLogScan scan;
  const uint64_t seed = header_.seq;
  std::unique_ptr<XXH3_state_t, XxhFree> xs(XXH3_createState());
  if (!xs) return Status::OutOfMemory("undo log " + display_ + ": checksum state");
  std::vector<std::byte> body;
  std::vector<UndoRecord> records;
  uint64_t pos = UndoLog::kHeaderSize;
  auto damaged = [&](uint64_t where, const std::string& why) {
    return Status::Failed("undo log " + display_ + ": batch " + std::to_string(scan.batches) +
                          at(where) + ": " + why);
  };
  for (;;) {
    if (pos == file_size_) break;
    if (scan.sealed)
      return Status::Failed("undo log " + display_ + ": " + std::to_string(file_size_ - pos) +
                            " bytes after the seal" + at(pos));
    std::string tear;  // why the bytes from `pos` are not a counted batch
    std::byte hdr[UndoLog::kBatchHeaderSize];
    uint64_t payload = 0;
    uint32_t flags = 0, count = 0;
    if (file_size_ - pos < UndoLog::kBatchHeaderSize + UndoLog::kCommitSize) {
      tear = "incomplete batch";
    } else {
      VMREPL_RETURN_IF_ERROR(pread_full(fd_.get(), hdr, pos).Annotate("undo log " + display_));
      flags = get_u32(hdr + 4);
      payload = get_u64(hdr + 16);
      count = get_u32(hdr + 24);
      if (get_u32(hdr) != UndoLog::kBatchTag || get_u64(hdr + 32) != xxh64(hdr, 32, seed) ||
          get_u64(hdr + 8) != scan.batches) {
        tear = "batch header not intact";
      } else if (get_u32(hdr + 28) != 0 || (flags & ~UndoLog::kBatchSeal) != 0 ||
                 payload > UndoLog::kMaxBatchPayload ||
                 uint64_t{count} * UndoLog::kRecordHeaderSize > payload ||
                 ((flags & UndoLog::kBatchSeal) != 0 && (count != 0 || payload != 0))) {
        // The header's own checksum matched, so these values were written like this.
        return damaged(pos, "invalid batch header (flags " + std::to_string(flags) + ", " +
                                std::to_string(count) + " records, " + std::to_string(payload) +
                                " bytes)");
      } else if (payload + UndoLog::kBatchHeaderSize + UndoLog::kCommitSize > file_size_ - pos) {
        tear = "batch extends past the end of the file";
      }
    }
    if (tear.empty()) {
      body.resize(payload + UndoLog::kCommitSize);
      VMREPL_RETURN_IF_ERROR(pread_full(fd_.get(), body, pos + UndoLog::kBatchHeaderSize)
                                 .Annotate("undo log " + display_));
      const std::byte* c = body.data() + payload;
      if (get_u32(c) != UndoLog::kCommitTag || get_u32(c + 4) != 0 ||
          get_u64(c + 8) != scan.batches)
        tear = "commit record not intact";
    }
    if (!tear.empty()) {
      VMREPL_RETURN_IF_ERROR(classify_tail(pos, scan.batches, tear));
      scan.torn_bytes = file_size_ - pos;
      break;
    }
    // Header and commit record are intact: the batch was committed and must verify.
    const std::byte* c = body.data() + payload;
    XXH3_64bits_reset_withSeed(xs.get(), seed);
    XXH3_64bits_update(xs.get(), hdr, sizeof hdr);
    XXH3_64bits_update(xs.get(), body.data(), static_cast<std::size_t>(payload + 16));
    if (XXH3_64bits_digest(xs.get()) != get_u64(c + 16))
      return damaged(pos, "checksum mismatch (the batch's bytes changed after it was written)");

    records.clear();
    uint64_t off = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const uint64_t where = pos + UndoLog::kBatchHeaderSize + off;
      if (payload - off < UndoLog::kRecordHeaderSize)
        return damaged(pos, "record " + std::to_string(i) + at(where) + " runs past the batch");
      const std::byte* r = body.data() + off;
      const uint32_t disk = get_u32(r);
      const uint32_t rflags = get_u32(r + 4);
      const uint64_t block = get_u64(r + 8);
      const uint32_t length = get_u32(r + 16);
      const uint32_t offset = get_u32(r + 20);
      const std::string why = record_problem(version_, disk, block, rflags, length, offset,
                                             disk_sizes_, header_.block_size);
      if (!why.empty()) return damaged(pos, "record " + std::to_string(i) + at(where) + ": " + why);
      off += UndoLog::kRecordHeaderSize;
      const uint32_t n = data_bytes(rflags, length);
      if (payload - off < n)
        return damaged(pos,
                       "record " + std::to_string(i) + at(where) + ": data runs past the batch");
      const bool range = (rflags & UndoLog::kRecordRange) != 0;
      records.push_back(UndoRecord{disk, block, (rflags & UndoLog::kRecordZero) != 0,
                                   std::span<const std::byte>(body.data() + off, n),
                                   range ? offset : 0, range ? length : 0});
      off += n;
    }
    if (off != payload)
      return damaged(pos, std::to_string(payload - off) + " payload bytes follow the last record");
    if ((flags & UndoLog::kBatchSeal) != 0) scan.sealed = true;
    if (!records.empty()) VMREPL_RETURN_IF_ERROR(fn(records));
    scan.records += records.size();
    ++scan.batches;
    pos += UndoLog::kBatchHeaderSize + payload + UndoLog::kCommitSize;
  }
  if (require_seal && !scan.sealed) {
    const uint64_t end = file_size_ - scan.torn_bytes;
    return Status::Failed("undo log " + display_ + " is not sealed: it ends after batch " +
                          std::to_string(scan.batches) + at(end) +
                          (scan.torn_bytes != 0
                               ? " with " + std::to_string(scan.torn_bytes) + " incomplete bytes"
                               : std::string()) +
                          "; the point's undo data is damaged");
  }
  return scan;
}

}  // namespace vmrepl
