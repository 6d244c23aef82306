// Turning an errno into a model Status with the system's words in the message.
//
// ENOENT -> FileNotFound (32779), EACCES/EPERM -> AccessDenied (32769), ENOMEM ->
// OutOfMemory (32778), everything else -> Failed (32768). The message keeps the context and
// the errno text: "open /x/disk.img: No such file or directory (errno 2)".
//
// Thread-safety: pure function (uses strerror_r), callable from any thread.
#pragma once

#include <string_view>

#include "core/model/status.h"

namespace vmrepl {

Status errno_status(int err, std::string_view context);

}  // namespace vmrepl
