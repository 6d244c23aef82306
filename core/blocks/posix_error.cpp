#include "core/blocks/posix_error.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace vmrepl {
namespace {

// strerror_r has two signatures; overloads pick whichever this libc provides.
[[maybe_unused]] const char* pick(int rc, const char* buf) { return rc == 0 ? buf : "unknown error"; }
[[maybe_unused]] const char* pick(const char* msg, const char*) { return msg; }

Code code_for(int err) {
  switch (err) {
    case ENOENT: return Code::FileNotFound;
    case EACCES:
    case EPERM: return Code::AccessDenied;
    case ENOMEM: return Code::OutOfMemory;
    default: return Code::Failed;
  }
}

}  // namespace

Status errno_status(int err, std::string_view context) {
  char buf[256];
  buf[0] = '\0';
  const char* text = pick(strerror_r(err, buf, sizeof buf), buf);
  std::string msg(context);
  msg += ": ";
  msg += text;
  msg += " (errno ";
  msg += std::to_string(err);
  msg += ")";
  return Status(code_for(err), std::move(msg));
}

}  // namespace vmrepl
