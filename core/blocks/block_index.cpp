#include "core/blocks/block_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include "core/blocks/buffer_pool.h"
#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

constexpr char kMagic[8] = {'V', 'M', 'R', 'B', 'I', 'D', 'X', '\0'};
constexpr std::size_t kTrailerSize = 8;
// Small enough to come from the heap (a fresh multi-MiB buffer per load costs page faults).
constexpr std::size_t kIoBuffer = 64 << 10;

BlockHash hash_of_zeros(HashAlgorithm a, uint32_t length) {
  const std::vector<std::byte> zeros(length);
  return hash_bytes(a, zeros);
}

// Full-block zero hashes are cached per (algorithm, block size): at most 2 x 13 entries, and
// a 16 MiB SHA-256 block would otherwise cost ~9 ms per index created or loaded.
BlockHash zero_block_hash(HashAlgorithm a, uint32_t block_size) {
  static std::mutex mu;
  static std::map<std::pair<HashAlgorithm, uint32_t>, BlockHash> cache;
  {
    std::lock_guard lock(mu);
    auto it = cache.find({a, block_size});
    if (it != cache.end()) return it->second;
  }
  const BlockHash h = hash_of_zeros(a, block_size);
  std::lock_guard lock(mu);
  cache.emplace(std::pair{a, block_size}, h);
  return h;
}

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

std::string hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

struct XxhStateFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using XxhState = std::unique_ptr<XXH3_state_t, XxhStateFree>;

XxhState new_checksum() {
  XxhState s(XXH3_createState());
  if (!s) throw std::bad_alloc();
  XXH3_64bits_reset(s.get());
  return s;
}

// Buffered sequential writer that checksums everything it writes (one checksum update per
// buffer, not per field).
class ChecksumWriter {
 public:
  explicit ChecksumWriter(int fd) : fd_(fd), sum_(new_checksum()), buf_(kIoBuffer) {}

  Status append(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    while (n > 0) {
      if (len_ == buf_.size()) VMREPL_RETURN_IF_ERROR(flush(true));
      const std::size_t take = std::min(n, buf_.size() - len_);
      std::memcpy(buf_.data() + len_, b, take);
      len_ += take;
      b += take;
      n -= take;
    }
    return Status::OK();
  }
  // Appends the checksum of everything so far (not itself checksummed) and flushes.
  Status finish() {
    XXH3_64bits_update(sum_.get(), buf_.data(), len_);
    std::byte t[kTrailerSize];
    put_u64(t, XXH3_64bits_digest(sum_.get()));
    if (buf_.size() - len_ < kTrailerSize) VMREPL_RETURN_IF_ERROR(flush(false));
    std::memcpy(buf_.data() + len_, t, kTrailerSize);
    len_ += kTrailerSize;
    return flush(false);
  }

 private:
  Status flush(bool checksum) {
    if (checksum) XXH3_64bits_update(sum_.get(), buf_.data(), len_);
    VMREPL_RETURN_IF_ERROR(pwrite_full(fd_, std::span<const std::byte>(buf_.data(), len_), offset_));
    offset_ += len_;
    len_ = 0;
    return Status::OK();
  }

  int fd_;
  XxhState sum_;
  std::vector<std::byte> buf_;
  std::size_t len_ = 0;
  uint64_t offset_ = 0;
};

// Buffered sequential reader over [0, size) that checksums every byte it loads.
class ChecksumReader {
 public:
  ChecksumReader(int fd, uint64_t size) : fd_(fd), size_(size), sum_(new_checksum()) {
    buf_.resize(static_cast<std::size_t>(std::min<uint64_t>(kIoBuffer, size)));
  }

  Status read(void* dst, std::size_t n) {
    auto* out = static_cast<std::byte*>(dst);
    while (n > 0) {
      if (pos_ == len_) VMREPL_RETURN_IF_ERROR(refill());
      const std::size_t take = std::min(n, len_ - pos_);
      std::memcpy(out, buf_.data() + pos_, take);
      pos_ += take;
      out += take;
      n -= take;
    }
    return Status::OK();
  }
  // Reads (and checksums) everything not consumed yet.
  Status drain() {
    while (offset_ < size_) VMREPL_RETURN_IF_ERROR(refill());
    pos_ = len_;
    return Status::OK();
  }
  uint64_t digest() const { return XXH3_64bits_digest(sum_.get()); }

 private:
  Status refill() {
    const auto n = static_cast<std::size_t>(std::min<uint64_t>(buf_.size(), size_ - offset_));
    if (n == 0) return Status::Failed("read past the end of the checksummed content");
    VMREPL_RETURN_IF_ERROR(pread_full(fd_, std::span(buf_.data(), n), offset_));
    XXH3_64bits_update(sum_.get(), buf_.data(), n);
    offset_ += n;
    pos_ = 0;
    len_ = n;
    return Status::OK();
  }

  int fd_;
  uint64_t size_;
  XxhState sum_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0, len_ = 0;
  uint64_t offset_ = 0;
};

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

struct Header {
  uint32_t version = 0, algorithm = 0, block_size = 0, reserved = 0;
  uint64_t disk_size = 0, block_count = 0;
};

// Validates a header against itself and the real file size. Returns the expected count.
Status check_header(const std::byte* raw, const Header& h, uint64_t file_size) {
  if (std::memcmp(raw, kMagic, sizeof kMagic) != 0) {
    return Status::Failed("not a block index (bad magic)");
  }
  if (h.version != BlockIndex::kFormatVersion) {
    return Status::Failed("unsupported version " + std::to_string(h.version) + " (expected " +
                          std::to_string(BlockIndex::kFormatVersion) + ")");
  }
  if (h.reserved != 0) return Status::Failed("reserved header field is " + std::to_string(h.reserved));
  Status g = BlockIndex::check_geometry(h.algorithm, h.block_size, h.disk_size);
  if (!g.ok()) return Status::Failed(g.message());
  const uint64_t expected_count = BlockIndex::block_count_for(h.disk_size, h.block_size);
  if (h.block_count != expected_count) {
    return Status::Failed("block count " + std::to_string(h.block_count) +
                          " does not match disk size " + std::to_string(h.disk_size) +
                          " / block size " + std::to_string(h.block_size) + " (expected " +
                          std::to_string(expected_count) + ")");
  }
  // No overflow: count <= 2^56 / 2^12 = 2^44 and an entry is at most 33 bytes.
  const uint64_t entry = 1 + digest_size(static_cast<HashAlgorithm>(h.algorithm));
  const uint64_t expected_size = BlockIndex::kHeaderSize + h.block_count * entry + kTrailerSize;
  if (file_size != expected_size) {
    return Status::Failed("file is " + std::to_string(file_size) + " bytes but its header (" +
                          std::to_string(h.block_count) + " entries) implies " +
                          std::to_string(expected_size) + " bytes: truncated or extended");
  }
  return Status::OK();
}

}  // namespace

namespace {

// Leaked on purpose: indexes held by statics may be destroyed after it would be.
VectorPool<BlockEntry>& entry_pool() {
  static auto* pool = new VectorPool<BlockEntry>(std::size_t{64} << 20, std::size_t{64} << 20);
  return *pool;
}

}  // namespace

BlockIndex::~BlockIndex() { entry_pool().give(std::move(entries_)); }

BlockIndex& BlockIndex::operator=(BlockIndex&& o) noexcept {
  if (this != &o) {
    entry_pool().give(std::move(entries_));
    algorithm_ = o.algorithm_;
    block_size_ = o.block_size_;
    disk_size_ = o.disk_size_;
    entries_ = std::move(o.entries_);
    zero_full_ = o.zero_full_;
    zero_tail_ = o.zero_tail_;
  }
  return *this;
}

BlockIndex::BlockIndex()
    : algorithm_(HashAlgorithm::Xxh3_128),
      block_size_(kDefaultBlockSize),
      zero_full_(zero_block_hash(algorithm_, block_size_)),
      zero_tail_(zero_full_) {}

BlockIndex BlockIndex::clone() const {
  BlockIndex c;
  c.algorithm_ = algorithm_;
  c.block_size_ = block_size_;
  c.disk_size_ = disk_size_;
  c.entries_ = entry_pool().take(entries_.size());
  c.entries_.assign(entries_.begin(), entries_.end());
  c.zero_full_ = zero_full_;
  c.zero_tail_ = zero_tail_;
  return c;
}

Status BlockIndex::check_geometry(uint32_t algorithm, uint32_t block_size, uint64_t disk_size) {
  if (!is_known_hash_algorithm(algorithm)) {
    return Status::InvalidParameter("unknown hash algorithm " + std::to_string(algorithm));
  }
  if (block_size < kMinBlockSize || block_size > kMaxBlockSize ||
      (block_size & (block_size - 1)) != 0) {
    return Status::InvalidParameter("block size " + std::to_string(block_size) +
                                    " is not a power of two between " +
                                    std::to_string(kMinBlockSize) + " and " +
                                    std::to_string(kMaxBlockSize));
  }
  if (disk_size > kMaxDiskSize) {
    return Status::InvalidParameter("disk size " + std::to_string(disk_size) +
                                    " exceeds the maximum " + std::to_string(kMaxDiskSize));
  }
  return Status::OK();
}

Result<BlockIndex> BlockIndex::create(HashAlgorithm algorithm, uint32_t block_size,
                                      uint64_t disk_size) {
  VMREPL_RETURN_IF_ERROR(
      check_geometry(static_cast<uint32_t>(algorithm), block_size, disk_size));
  BlockIndex x;
  x.algorithm_ = algorithm;
  x.block_size_ = block_size;
  x.disk_size_ = disk_size;
  x.zero_full_ = zero_block_hash(algorithm, block_size);
  const uint64_t count = block_count_for(disk_size, block_size);
  const auto tail = static_cast<uint32_t>(disk_size % block_size);
  x.zero_tail_ = tail == 0 ? x.zero_full_ : hash_of_zeros(algorithm, tail);
  try {
    x.entries_ = entry_pool().take(count);
    x.entries_.assign(count, BlockEntry{x.zero_full_, BlockEntry::kZero});
  } catch (const std::bad_alloc&) {
    return Status::OutOfMemory("block index of " + std::to_string(count) + " entries");
  }
  if (count > 0) x.entries_.back().hash = x.zero_tail_;
  return x;
}

uint32_t BlockIndex::block_length(uint64_t i) const {
  const uint64_t rest = disk_size_ - block_offset(i);
  return rest < block_size_ ? static_cast<uint32_t>(rest) : block_size_;
}

const BlockHash& BlockIndex::zero_hash(uint64_t i) const {
  return i + 1 == entries_.size() ? zero_tail_ : zero_full_;
}

void BlockIndex::set_from_bytes(uint64_t i, std::span<const std::byte> data) {
  if (is_all_zero(data)) {
    set_zero(i);
  } else {
    set_data(i, hash_bytes(algorithm_, data));
  }
}

bool BlockIndex::operator==(const BlockIndex& o) const {
  return algorithm_ == o.algorithm_ && block_size_ == o.block_size_ &&
         disk_size_ == o.disk_size_ && entries_ == o.entries_;
}

BlockIndex::PendingSave::~PendingSave() {
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

BlockIndex::PendingSave::PendingSave(PendingSave&& o) noexcept
    : path_(std::move(o.path_)), tmp_(std::exchange(o.tmp_, std::string())) {}

BlockIndex::PendingSave& BlockIndex::PendingSave::operator=(PendingSave&& o) noexcept {
  if (this != &o) {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    path_ = std::move(o.path_);
    tmp_ = std::exchange(o.tmp_, std::string());
  }
  return *this;
}

Status BlockIndex::PendingSave::commit() {
  if (tmp_.empty()) return Status::InvalidState("save block index " + path_ + ": nothing to commit");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return errno_status(errno, "rename " + tmp_ + " to " + path_);
  tmp_.clear();
  // The rename is durable only once the directory entry is.
  const std::string dir = dir_of(path_);
  auto dfd = open_file(dir, O_RDONLY | O_DIRECTORY);
  if (!dfd.ok()) return dfd.status().Annotate("save block index " + path_);
  if (::fsync(dfd->get()) != 0) return errno_status(errno, "fsync directory " + dir);
  return Status::OK();
}

Result<BlockIndex::PendingSave> BlockIndex::prepare_save(const std::string& path) const {
  std::string tmp = path + ".tmp.XXXXXX";
  const int raw_fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw_fd < 0) return errno_status(errno, "create temporary file for " + path);
  UniqueFd fd(raw_fd);
  PendingSave pending;
  pending.path_ = path;
  pending.tmp_ = tmp;  // removed if anything below fails
  ChecksumWriter w(fd.get());
  std::byte header[kHeaderSize] = {};
  std::memcpy(header, kMagic, sizeof kMagic);
  put_u32(header + 8, kFormatVersion);
  put_u32(header + 12, static_cast<uint32_t>(algorithm_));
  put_u32(header + 16, block_size_);
  put_u32(header + 20, 0);
  put_u64(header + 24, disk_size_);
  put_u64(header + 32, entries_.size());
  const std::string ctx = "save block index " + path;
  VMREPL_RETURN_IF_ERROR(w.append(header, sizeof header).Annotate(ctx));
  const std::size_t ds = digest_size(algorithm_);
  for (const BlockEntry& e : entries_) {
    VMREPL_RETURN_IF_ERROR(w.append(&e.flags, 1).Annotate(ctx));
    VMREPL_RETURN_IF_ERROR(w.append(e.hash.bytes.data(), ds).Annotate(ctx));
  }
  VMREPL_RETURN_IF_ERROR(w.finish().Annotate(ctx));
  if (::fsync(fd.get()) != 0) return errno_status(errno, "fsync " + tmp).Annotate(ctx);
  return pending;
}

Status BlockIndex::save(const std::string& path) const {
  auto pending = prepare_save(path);
  if (!pending) return pending.status();
  return pending->commit().Annotate("save block index " + path);
}

Result<BlockIndex> BlockIndex::load(const std::string& path) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  const std::string ctx = "block index " + path;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return errno_status(errno, "fstat " + path);
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderSize + kTrailerSize) {
    return Status::Failed(ctx + ": file is " + std::to_string(file_size) +
                          " bytes, shorter than header and checksum (" +
                          std::to_string(kHeaderSize + kTrailerSize) + "): truncated");
  }
  const uint64_t content = file_size - kTrailerSize;

  // One pass: the checksum covers every byte, and it is judged before anything the header
  // says, so any flipped byte reads as corruption. Entries are only allocated once the header
  // agrees with the real file size.
  try {
    ChecksumReader r(fd->get(), content);
    std::byte raw[kHeaderSize];
    VMREPL_RETURN_IF_ERROR(r.read(raw, sizeof raw).Annotate(ctx));
    Header h;
    h.version = get_u32(raw + 8);
    h.algorithm = get_u32(raw + 12);
    h.block_size = get_u32(raw + 16);
    h.reserved = get_u32(raw + 20);
    h.disk_size = get_u64(raw + 24);
    h.block_count = get_u64(raw + 32);
    const Status header_status = check_header(raw, h, file_size);

    BlockIndex x;
    if (header_status.ok()) {
      x.algorithm_ = static_cast<HashAlgorithm>(h.algorithm);
      x.block_size_ = h.block_size;
      x.disk_size_ = h.disk_size;
      x.entries_ = entry_pool().try_take(h.block_count);
      x.entries_.resize(h.block_count);
      const std::size_t ds = digest_size(x.algorithm_);
      std::byte e[33];
      for (BlockEntry& entry : x.entries_) {
        VMREPL_RETURN_IF_ERROR(r.read(e, 1 + ds).Annotate(ctx));
        entry.flags = static_cast<uint8_t>(e[0]);
        std::memcpy(entry.hash.bytes.data(), e + 1, ds);
      }
    }
    VMREPL_RETURN_IF_ERROR(r.drain().Annotate(ctx));
    std::byte trailer[kTrailerSize];
    VMREPL_RETURN_IF_ERROR(pread_full(fd->get(), trailer, content).Annotate(ctx));
    const uint64_t stored = get_u64(trailer), computed = r.digest();
    if (stored != computed) {
      std::string msg = ctx + ": checksum mismatch (stored " + hex64(stored) + ", computed " +
                        hex64(computed) + "): the file is corrupt";
      if (!header_status.ok()) msg += "; also " + header_status.message();
      return Status::Failed(msg);
    }
    if (!header_status.ok()) return Status::Failed(ctx + ": " + header_status.message());

    x.zero_full_ = zero_block_hash(x.algorithm_, x.block_size_);
    const auto tail = static_cast<uint32_t>(x.disk_size_ % x.block_size_);
    x.zero_tail_ = tail == 0 ? x.zero_full_ : hash_of_zeros(x.algorithm_, tail);
    for (uint64_t i = 0; i < x.entries_.size(); ++i) {
      const BlockEntry& e = x.entries_[i];
      if ((e.flags & ~BlockEntry::kZero) != 0) {
        return Status::Failed(ctx + ": entry " + std::to_string(i) + " has unknown flags " +
                              std::to_string(e.flags));
      }
      if (e.is_zero() && e.hash != x.zero_hash(i)) {
        return Status::Failed(ctx + ": entry " + std::to_string(i) +
                              " is flagged zero but does not hold the zero-block hash");
      }
    }
    return x;
  } catch (const std::bad_alloc&) {
    return Status::OutOfMemory(ctx + ": not enough memory for " + std::to_string(file_size) +
                               " bytes of index");
  }
}

Result<std::vector<uint64_t>> diff(const BlockIndex& a, const BlockIndex& b) {
  if (a.algorithm() != b.algorithm() || a.block_size() != b.block_size()) {
    return Status::InvalidParameter(
        "cannot compare block indexes with different algorithms or block sizes (" +
        std::string(hash_algorithm_name(a.algorithm())) + "/" + std::to_string(a.block_size()) +
        " vs " + std::string(hash_algorithm_name(b.algorithm())) + "/" +
        std::to_string(b.block_size()) + ")");
  }
  std::vector<uint64_t> out;
  const uint64_t common = std::min(a.block_count(), b.block_count());
  const uint64_t total = std::max(a.block_count(), b.block_count());
  for (uint64_t i = 0; i < common; ++i) {
    if (a.entry(i) != b.entry(i)) out.push_back(i);
  }
  for (uint64_t i = common; i < total; ++i) out.push_back(i);
  return out;
}

}  // namespace vmrepl
