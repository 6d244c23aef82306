// WMI object paths (spec §11), the form REF parameters take:
//   full:     \\HOST\root\virtualization\v2:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="<GUID>"
//   relative: Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="<GUID>"
// Keys are comma-separated; string keys are double-quoted with backslashes and quotes escaped
// by a backslash (so a literal `\` is written `\\`); numeric keys may be unquoted.
//
// Thread-safety: value type.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model/status.h"

namespace vmrepl {

inline constexpr std::string_view kVirtualizationNamespace = "root\\virtualization\\v2";

struct ObjectPath {
  std::string host;        // empty for a relative path
  std::string name_space;  // e.g. root\virtualization\v2; empty for a relative path
  std::string class_name;
  std::vector<std::pair<std::string, std::string>> keys;  // unescaped values, in order

  // Bounds: at most 4096 characters and 32 keys; anything malformed -> InvalidParameter
  // saying where.
  static Result<ObjectPath> parse(std::string_view text);
  // Full form when host is set, else relative.
  std::string format() const;
  std::string format_relative() const;

  // The value of a key, or nullptr.
  const std::string* key(std::string_view name) const;

  // Msvm_ComputerSystem path of a VM.
  static ObjectPath computer_system(std::string host, std::string guid);

  bool operator==(const ObjectPath&) const = default;
};

}  // namespace vmrepl
