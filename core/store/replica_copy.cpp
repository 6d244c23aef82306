#include "core/store/replica_copy.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

constexpr uint64_t kChunk = 1u << 20;

// The errors by which a filesystem says "not here" rather than "failed".
bool clone_unsupported(int err) {
  return err == EOPNOTSUPP || err == ENOTSUP || err == EXDEV || err == EINVAL || err == ENOTTY ||
         err == ENOSYS || err == EPERM;
}
bool copy_range_unsupported(int err) {
  return err == EXDEV || err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS || err == EINVAL;
}

// pread/pwrite fallback for one extent; all-zero chunks are skipped (the target is a hole).
Result<uint64_t> copy_by_hand(int src, int dst, uint64_t off, uint64_t len,
                              std::vector<std::byte>& buf) {
  uint64_t written = 0;
  buf.resize(kChunk);
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min(kChunk, len - done);
    std::span<std::byte> chunk(buf.data(), n);
    VMREPL_RETURN_IF_ERROR(pread_full(src, chunk, off + done));
    if (!is_all_zero(chunk)) {
      VMREPL_RETURN_IF_ERROR(pwrite_full(dst, chunk, off + done));
      written += n;
    }
    done += n;
  }
  return written;
}

}  // namespace

std::string_view copy_method_name(CopyMethod m) {
  return m == CopyMethod::Reflink ? "reflink" : "sparse-copy";
}

Result<FileCopy> sparse_copy(int src_fd, int dst_fd, uint64_t size) {
  if (::ftruncate(dst_fd, 0) != 0 || ::ftruncate(dst_fd, static_cast<off_t>(size)) != 0)
    return errno_status(errno, "ftruncate copy to " + std::to_string(size) + " bytes");
  FileCopy out;
  bool use_copy_range = true;
  std::vector<std::byte> buf;
  for (uint64_t pos = 0; pos < size;) {
    auto e = next_data_extent(src_fd, pos, size);
    if (!e.ok()) return e.status();
    if (!e->has_value()) break;
    const Extent x = **e;
    uint64_t done = 0;
    while (use_copy_range && done < x.length) {
      loff_t in = static_cast<loff_t>(x.offset + done);
      loff_t outp = in;
      const ssize_t n =
          ::copy_file_range(src_fd, &in, dst_fd, &outp, static_cast<size_t>(x.length - done), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (copy_range_unsupported(errno) && done == 0 && out.bytes_copied == 0) {
          use_copy_range = false;  // e.g. across filesystems on kernels that refuse it
          break;
        }
        return errno_status(errno, "copy_file_range at offset " + std::to_string(x.offset + done));
      }
      if (n == 0)
        return Status::Failed("copy_file_range: source ended at offset " +
                              std::to_string(x.offset + done) + ", expected " +
                              std::to_string(size) + " bytes");
      done += static_cast<uint64_t>(n);
      out.bytes_copied += static_cast<uint64_t>(n);
    }
    if (!use_copy_range && done < x.length) {
      auto n = copy_by_hand(src_fd, dst_fd, x.offset + done, x.length - done, buf);
      if (!n.ok()) return n.status();
      out.bytes_copied += *n;
    }
    pos = x.end();
  }
  out.method = CopyMethod::SparseCopy;
  return out;
}

Result<FileCopy> clone_or_copy(int src_fd, int dst_fd, uint64_t size) {
  if (::ftruncate(dst_fd, 0) != 0) return errno_status(errno, "ftruncate copy to 0 bytes");
  if (::ioctl(dst_fd, FICLONE, src_fd) == 0) {
    struct stat st {};
    if (::fstat(dst_fd, &st) != 0) return errno_status(errno, "fstat clone");
    if (static_cast<uint64_t>(st.st_size) != size)
      return Status::Failed("reflink clone is " + std::to_string(st.st_size) + " bytes; expected " +
                            std::to_string(size));
    return FileCopy{CopyMethod::Reflink, 0};
  }
  if (!clone_unsupported(errno)) return errno_status(errno, "ioctl(FICLONE)");
  return sparse_copy(src_fd, dst_fd, size);
}

}  // namespace vmrepl
