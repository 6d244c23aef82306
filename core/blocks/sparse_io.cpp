#include "core/blocks/sparse_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "core/blocks/posix_error.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

std::string at(uint64_t offset) { return " at offset " + std::to_string(offset); }

// Filesystems (or kernels) without SEEK_DATA/SEEK_HOLE answer with these.
bool seek_unsupported(int err) { return err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP; }

}  // namespace

Result<std::optional<Extent>> next_data_extent(int fd, uint64_t from, uint64_t end) {
  if (from >= end) return std::optional<Extent>{};
  const off_t d = ::lseek(fd, static_cast<off_t>(from), SEEK_DATA);
  if (d < 0) {
    if (errno == ENXIO) return std::optional<Extent>{};  // only holes up to end of file
    if (seek_unsupported(errno)) return std::optional<Extent>{Extent{from, end - from}};
    return errno_status(errno, "lseek(SEEK_DATA)" + at(from));
  }
  const auto data = static_cast<uint64_t>(d);
  if (data >= end) return std::optional<Extent>{};
  const off_t h = ::lseek(fd, d, SEEK_HOLE);
  uint64_t hole = end;
  if (h >= 0) {
    hole = std::min<uint64_t>(static_cast<uint64_t>(h), end);
  } else if (!seek_unsupported(errno)) {
    return errno_status(errno, "lseek(SEEK_HOLE)" + at(data));
  }
  return std::optional<Extent>{Extent{data, hole - data}};
}

Result<std::vector<Extent>> data_extents(int fd, uint64_t begin, uint64_t end) {
  std::vector<Extent> out;
  uint64_t pos = begin;
  while (pos < end) {
    auto e = next_data_extent(fd, pos, end);
    if (!e.ok()) return e.status();
    if (!e->has_value()) break;
    out.push_back(**e);
    pos = (*e)->end();
  }
  return out;
}

Result<std::vector<Extent>> data_extents(const std::string& path) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return errno_status(errno, "fstat " + path);
  auto r = data_extents(fd->get(), 0, static_cast<uint64_t>(st.st_size));
  if (!r.ok()) return r.status().Annotate(path);
  return r;
}

Status create_sparse_file(const std::string& path, uint64_t size) {
  auto fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
  if (!fd.ok()) return fd.status();
  if (::ftruncate(fd->get(), static_cast<off_t>(size)) != 0) {
    return errno_status(errno, "ftruncate " + path + " to " + std::to_string(size) + " bytes");
  }
  return Status::OK();
}

Status pread_full(int fd, std::span<std::byte> buf, uint64_t offset) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "pread " + std::to_string(buf.size() - done) + " bytes" +
                                     at(offset + done));
    }
    if (n == 0) {
      return Status::Failed("pread: unexpected end of file" + at(offset + done) + " (wanted " +
                            std::to_string(buf.size()) + " bytes" + at(offset) + ")");
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::OK();
}

Status pwrite_full(int fd, std::span<const std::byte> buf, uint64_t offset) {
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "pwrite " + std::to_string(buf.size() - done) + " bytes" +
                                     at(offset + done));
    }
    if (n == 0) return Status::Failed("pwrite wrote nothing" + at(offset + done));
    done += static_cast<std::size_t>(n);
  }
  return Status::OK();
}

Status pwritev_full(int fd, std::span<const std::span<const std::byte>> pieces, uint64_t offset) {
  constexpr std::size_t kMaxIov = 512;  // below IOV_MAX (1024 on Linux)
  std::array<iovec, kMaxIov> iov{};
  std::size_t first = 0;   // the first piece not fully written
  std::size_t skip = 0;    // bytes of it already written
  uint64_t at_off = offset;
  while (first < pieces.size()) {
    std::size_t n = 0;
    for (std::size_t i = first; i < pieces.size() && n < kMaxIov; ++i) {
      const std::size_t from = i == first ? skip : 0;
      if (pieces[i].size() == from) continue;
      iov[n].iov_base = const_cast<std::byte*>(pieces[i].data() + from);
      iov[n].iov_len = pieces[i].size() - from;
      ++n;
    }
    if (n == 0) break;
    const ssize_t w = ::pwritev(fd, iov.data(), static_cast<int>(n), static_cast<off_t>(at_off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "pwritev" + at(at_off));
    }
    if (w == 0) return Status::Failed("pwritev wrote nothing" + at(at_off));
    at_off += static_cast<uint64_t>(w);
    std::size_t left = static_cast<std::size_t>(w);
    while (first < pieces.size() && left >= pieces[first].size() - skip) {
      left -= pieces[first].size() - skip;
      skip = 0;
      ++first;
    }
    skip += left;
  }
  return Status::OK();
}

Result<SparseRead> read_blocks(int fd, uint64_t offset, std::span<std::byte> buf,
                               uint32_t block_size, std::span<uint8_t> is_hole, HoleFill fill) {
  if (block_size == 0) return Status::InvalidParameter("read_blocks: block size 0");
  const uint64_t size = buf.size();
  const uint64_t nblocks = (size + block_size - 1) / block_size;
  if (is_hole.size() < nblocks) {
    return Status::InvalidParameter("read_blocks: " + std::to_string(is_hole.size()) +
                                    " hole flags for " + std::to_string(nblocks) + " blocks");
  }
  std::fill_n(is_hole.begin(), nblocks, uint8_t{1});
  SparseRead r;
  const uint64_t end = offset + size;
  uint64_t pos = offset;
  while (pos < end) {
    auto e = next_data_extent(fd, pos, end);
    if (!e.ok()) return e.status();
    if (!e->has_value()) break;
    // Widen the extent to whole blocks: a block with any data in it is read entirely (its
    // hole part reads as zeros); the next search starts at the following block boundary.
    const uint64_t first = ((*e)->offset - offset) / block_size;
    const uint64_t last = std::min(nblocks, ((*e)->end() - offset + block_size - 1) / block_size);
    const uint64_t run_begin = first * block_size;
    const uint64_t run_end = std::min(size, last * block_size);
    VMREPL_RETURN_IF_ERROR(
        pread_full(fd, buf.subspan(run_begin, run_end - run_begin), offset + run_begin));
    r.bytes_read += run_end - run_begin;
    std::fill(is_hole.begin() + static_cast<std::ptrdiff_t>(first),
              is_hole.begin() + static_cast<std::ptrdiff_t>(last), uint8_t{0});
    pos = offset + run_end;
  }
  for (uint64_t b = 0; b < nblocks; ++b) {
    if (is_hole[b] == 0) continue;
    ++r.hole_blocks;
    if (fill == HoleFill::Zero) {
      const uint64_t len = std::min<uint64_t>(block_size, size - b * block_size);
      std::memset(buf.data() + b * block_size, 0, len);
    }
  }
  return r;
}

Result<BlockWrite> write_block(int fd, uint64_t offset, std::span<const std::byte> data) {
  if (!is_all_zero(data)) {
    VMREPL_RETURN_IF_ERROR(pwrite_full(fd, data, offset));
    return BlockWrite::Data;
  }
  const uint64_t end = offset + data.size();
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status(errno, "fstat");
  const auto old_size = static_cast<uint64_t>(st.st_size);
  if (old_size < end && ::ftruncate(fd, static_cast<off_t>(end)) != 0) {
    return errno_status(errno, "ftruncate to " + std::to_string(end) + " bytes");
  }
  // Past the old end the extension already is a hole; only the part before needs punching.
  const uint64_t punch_end = std::min(end, old_size);
  if (punch_end > offset) {
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(punch_end - offset)) != 0) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) {
        return errno_status(errno, "fallocate(PUNCH_HOLE)" + at(offset));
      }
      VMREPL_RETURN_IF_ERROR(pwrite_full(fd, data.first(punch_end - offset), offset));
      return BlockWrite::Data;
    }
  }
  return BlockWrite::Hole;
}

}  // namespace vmrepl
