// File helpers the change feed and the cycle history share on top of fs.h: reading a whole
// small file relative to a directory descriptor (bounded, never following a symlink) and
// fdatasync with EINTR retried.
//
// Thread-safety: free functions over descriptors, callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/model/status.h"

namespace vmrepl::change_io {

// The content of the regular file `name` inside `dir_fd`. FileNotFound when it does not
// exist; Failed when it is not a regular file (or is a symlink), is larger than `max_bytes`,
// or cannot be read.
Result<std::string> read_file_at(int dir_fd, std::string_view name, uint64_t max_bytes);

// fdatasync(2), EINTR retried; `what` names the file in the error.
Status datasync(int fd, std::string_view what);

}  // namespace vmrepl::change_io
