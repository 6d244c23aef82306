// UniqueFd: sole owner of a POSIX file descriptor, closed on destruction; plus open_file(),
// which returns one or a Status explaining why not.
//
// Thread-safety: a UniqueFd is not synchronized; the descriptor it holds may be used for
// pread/pwrite from several threads at once (those calls take explicit offsets).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "core/model/status.h"

namespace vmrepl {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  // Close errors are ignored here: callers that wrote data fsync before closing.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added and EINTR retried. ENOENT gives FileNotFound.
Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0644);

}  // namespace vmrepl
