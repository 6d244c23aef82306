#include "core/blocks/unique_fd.h"

#include <cerrno>

#include "core/blocks/posix_error.h"

namespace vmrepl {

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status(errno, "open " + path);
  return UniqueFd(fd);
}

}  // namespace vmrepl
