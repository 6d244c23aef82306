#include "core/store/change_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <span>

#include "core/blocks/posix_error.h"
#include "core/blocks/sparse_io.h"
#include "core/store/fs.h"

namespace vmrepl::change_io {

Result<std::string> read_file_at(int dir_fd, std::string_view name, uint64_t max_bytes) {
  VMREPL_RETURN_IF_ERROR(fs::check_component(name));
  const std::string n(name);
  fs::Fd fd(::openat(dir_fd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP) return Status::Failed("open " + n + ": is a symbolic link");
    return errno_status(errno, "open " + n);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "stat " + n);
  if (!S_ISREG(st.st_mode)) return Status::Failed(n + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return Status::Failed(n + " is " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(max_bytes) + " such a file can have");
  }
  std::string content(static_cast<std::size_t>(size), '\0');
  VMREPL_RETURN_IF_ERROR(
      pread_full(fd.get(), std::as_writable_bytes(std::span(content.data(), content.size())), 0)
          .Annotate("read " + n));
  return content;
}

Status datasync(int fd, std::string_view what) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno_status(errno, "fdatasync " + std::string(what));
  }
  return Status::OK();
}

}  // namespace vmrepl::change_io
