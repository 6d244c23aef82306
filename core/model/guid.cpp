#include "core/model/guid.h"

#include <sys/random.h>

#include <cstdio>
#include <random>

namespace vmrepl {

Guid Guid::generate() {
  std::array<uint8_t, 16> b{};
  size_t got = 0;
  while (got < b.size()) {
    ssize_t n = getrandom(b.data() + got, b.size() - got, 0);
    if (n <= 0) {  // no getrandom: fall back to the C++ random device
      std::random_device rd;
      for (auto& x : b) x = static_cast<uint8_t>(rd());
      break;
    }
    got += static_cast<size_t>(n);
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return Guid(b);
}

Result<Guid> Guid::parse(std::string_view s) {
  std::string_view in = s;
  if (in.size() == 38 && in.front() == '{' && in.back() == '}') in = in.substr(1, 36);
  auto fail = [&] {
    std::string shown(s.substr(0, 48));
    return Status::InvalidParameter("'" + shown + "' is not a GUID (expected 8-4-4-4-12 hex digits)");
  };
  if (in.size() != 36) return fail();
  std::array<uint8_t, 16> b{};
  size_t k = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (in[i] != '-') return fail();
      ++i;
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(in[i]), lo = hex(in[i + 1]);
    if (hi < 0 || lo < 0) return fail();
    b[k++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return Guid(b);
}

std::string Guid::to_string() const {
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", b_[0], b_[1],
                b_[2], b_[3], b_[4], b_[5], b_[6], b_[7], b_[8], b_[9], b_[10], b_[11], b_[12],
                b_[13], b_[14], b_[15]);
  return buf;
}

bool Guid::is_nil() const {
  for (auto x : b_)
    if (x) return false;
  return true;
}

}  // namespace vmrepl
