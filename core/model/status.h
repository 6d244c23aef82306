// Status and Result<T>: errors as values inside the core.
//
// The status numbers are the model's return codes (spec §1), not errno values, so that a
// caller's checks written against Hyper-V carry over unchanged. One X-macro list generates the
// enum, the names and the default texts (as libuv's UV_ERRNO_MAP does).
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vmrepl {

// X(Enumerator, number, name as vmr_status_name prints it, default text)
#define VMREPL_STATUS_MAP(X)                                                             \
  X(Ok, 0, "Completed", "Completed with no error")                                       \
  X(JobStarted, 4096, "JobStarted", "Method parameters checked - job started")           \
  X(Failed, 32768, "Failed", "Failed")                                                   \
  X(AccessDenied, 32769, "AccessDenied", "Access denied")                                \
  X(NotSupported, 32770, "NotSupported", "Not supported")                                \
  X(Unknown, 32771, "Unknown", "Status is unknown")                                      \
  X(Timeout, 32772, "Timeout", "Timeout")                                                \
  X(InvalidParameter, 32773, "InvalidParameter", "Invalid parameter")                    \
  X(SystemInUse, 32774, "SystemInUse", "System is in use")                               \
  X(InvalidState, 32775, "InvalidState", "Invalid state for this operation")             \
  X(IncorrectDataType, 32776, "IncorrectDataType", "Incorrect data type")                \
  X(SystemNotAvailable, 32777, "SystemNotAvailable", "System is not available")          \
  X(OutOfMemory, 32778, "OutOfMemory", "Out of memory")                                  \
  X(FileNotFound, 32779, "FileNotFound", "File not found")

enum class Code : uint32_t {
#define VMREPL_X(e, n, name, text) e = n,
  VMREPL_STATUS_MAP(VMREPL_X)
#undef VMREPL_X
};

// "InvalidState" for 32775; "Unknown" for numbers outside the list.
std::string_view code_name(Code c);
std::string_view code_name(uint32_t c);
// "Invalid state for this operation".
std::string_view code_text(Code c);
// True for the numbers of VMREPL_STATUS_MAP.
bool is_known_code(uint32_t c);

class Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return {}; }
#define VMREPL_X(e, n, name, text) \
  static Status e(std::string msg = {}) { return Status(Code::e, std::move(msg)); }
  VMREPL_STATUS_MAP(VMREPL_X)
#undef VMREPL_X

  bool ok() const { return code_ == Code::Ok; }
  Code code() const { return code_; }
  uint32_t number() const { return static_cast<uint32_t>(code_); }
  // The detail given at creation, or the code's default text when there was none.
  std::string message() const;
  // "InvalidState: ReplicationState is 3 (Replicating); expected 5 or 6".
  std::string ToString() const;

  // Prefixes context to the message, keeping the code: "disk 0: <message>".
  Status Annotate(std::string_view context) const;

  bool IsInvalidParameter() const { return code_ == Code::InvalidParameter; }
  bool IsInvalidState() const { return code_ == Code::InvalidState; }
  bool IsNotFound() const { return code_ == Code::FileNotFound; }

 private:
  Code code_ = Code::Ok;
  std::string message_;
};

// A value or the Status explaining why there is none.
// REQUIRES: a Result is never built from an OK Status.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}              // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vmrepl

// Returns early with the status when `expr` (a Status) is not OK.
#define VMREPL_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::vmrepl::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)
