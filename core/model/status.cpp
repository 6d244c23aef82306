#include "core/model/status.h"

namespace vmrepl {

std::string_view code_name(Code c) { return code_name(static_cast<uint32_t>(c)); }

std::string_view code_name(uint32_t c) {
  switch (c) {
#define VMREPL_X(e, n, name, text) \
  case n:                          \
    return name;
    VMREPL_STATUS_MAP(VMREPL_X)
#undef VMREPL_X
  }
  return "Unknown";
}

std::string_view code_text(Code c) {
  switch (c) {
#define VMREPL_X(e, n, name, text) \
  case Code::e:                    \
    return text;
    VMREPL_STATUS_MAP(VMREPL_X)
#undef VMREPL_X
  }
  return "Status is unknown";
}

bool is_known_code(uint32_t c) {
  switch (c) {
#define VMREPL_X(e, n, name, text) case n:
    VMREPL_STATUS_MAP(VMREPL_X)
#undef VMREPL_X
    return true;
  }
  return false;
}

std::string Status::message() const {
  return message_.empty() ? std::string(code_text(code_)) : message_;
}

std::string Status::ToString() const {
  std::string s(code_name(code_));
  s += ": ";
  s += message();
  return s;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message();
  return Status(code_, std::move(m));
}

}  // namespace vmrepl
