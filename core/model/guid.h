// Guid: VM and job identifiers, printed in the uppercase canonical form WMI uses
// (3F2504E0-4F89-11D3-9A0C-0305E82C3301).
//
// Thread-safety: value type; Guid::generate() may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/model/status.h"

namespace vmrepl {

class Guid {
 public:
  Guid() = default;  // all zero
  explicit Guid(const std::array<uint8_t, 16>& b) : b_(b) {}

  // Random version-4 GUID from the OS random source.
  static Guid generate();
  // Accepts 8-4-4-4-12 hex digits in any case, optionally in braces. Else InvalidParameter.
  static Result<Guid> parse(std::string_view s);
  static bool looks_like(std::string_view s) { return parse(s).ok(); }

  std::string to_string() const;  // uppercase, no braces
  bool is_nil() const;
  const std::array<uint8_t, 16>& bytes() const { return b_; }
  auto operator<=>(const Guid&) const = default;

 private:
  std::array<uint8_t, 16> b_{};
};

}  // namespace vmrepl
