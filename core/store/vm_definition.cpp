#include "core/store/vm_definition.h"

#include <cstdio>

namespace vmrepl {

namespace {

Status bad_name(const std::string& rule) {
  return Status::InvalidParameter("ElementName: " + rule);
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

std::string code_point(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", cp);
  return buf;
}

bool is_control(uint32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

}  // namespace

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

Status validate_vm_name(std::string_view name) {
  if (name.empty()) return bad_name("must not be empty");
  if (name.size() > VmLimits::kMaxNameBytes)
    return bad_name(std::to_string(name.size()) + " bytes is too long; at most " +
                    std::to_string(VmLimits::kMaxNameBytes) + " bytes allowed");
  // Decode UTF-8 by hand: the checks below are per code point.
  size_t i = 0;
  while (i < name.size()) {
    const auto c = static_cast<unsigned char>(name[i]);
    uint32_t cp = 0;
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      cp = c, len = 1, min = 0;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1Fu, len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0Fu, len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07u, len = 4, min = 0x10000;
    } else {
      return bad_name("not valid UTF-8 (byte " + hex_byte(c) + " at offset " + std::to_string(i) +
                      ")");
    }
    if (i + len > name.size())
      return bad_name("not valid UTF-8 (truncated sequence at offset " + std::to_string(i) + ")");
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(name[i + k]);
      if ((cc & 0xC0) != 0x80)
        return bad_name("not valid UTF-8 (bad continuation byte at offset " +
                        std::to_string(i + k) + ")");
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min)
      return bad_name("not valid UTF-8 (overlong encoding at offset " + std::to_string(i) + ")");
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return bad_name("not valid UTF-8 (" + code_point(cp) + " at offset " + std::to_string(i) +
                      ")");
    if (cp == 0) return bad_name("must not contain a NUL byte (offset " + std::to_string(i) + ")");
    if (is_control(cp))
      return bad_name("must not contain control characters (" + code_point(cp) + " at offset " +
                      std::to_string(i) + ")");
    if (cp == '/' || cp == '\\') return bad_name("must not contain '/' or '\\'");
    i += len;
  }
  if (name == "." || name == "..") return bad_name("'" + std::string(name) + "' is not allowed");
  if (Guid::looks_like(name))
    return bad_name("must not be a GUID ('" + std::string(name) +
                    "'); a GUID identifies a VM by its Name");
  return Status::OK();
}

Status validate_disk_sizes(std::span<const uint64_t> sizes) {
  if (sizes.size() < VmLimits::kMinDisks || sizes.size() > VmLimits::kMaxDisks)
    return Status::InvalidParameter(
        "disks: " + std::to_string(sizes.size()) + " disks given; a VM has " +
        std::to_string(VmLimits::kMinDisks) + " to " + std::to_string(VmLimits::kMaxDisks));
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::string prop = "disks[" + std::to_string(i) + "]: ";
    const uint64_t s = sizes[i];
    if (s == 0) return Status::InvalidParameter(prop + "size must be greater than 0");
    if (s % VmLimits::kDiskAlignment != 0)
      return Status::InvalidParameter(prop + std::to_string(s) + " bytes is not a multiple of " +
                                      std::to_string(VmLimits::kDiskAlignment));
    if (s > VmLimits::kMaxDiskBytes)
      return Status::InvalidParameter(prop + std::to_string(s) +
                                      " bytes is more than the maximum of " +
                                      std::to_string(VmLimits::kMaxDiskBytes) + " (64 TiB)");
  }
  return Status::OK();
}

Status validate_definition(const VmDefinition& def) {
  VMREPL_RETURN_IF_ERROR(validate_vm_name(def.name));
  VMREPL_RETURN_IF_ERROR(validate_disk_sizes(def.disk_sizes));
  if (def.id && def.id->is_nil())
    return Status::InvalidParameter("Name: the nil GUID is not a valid VM id");
  return Status::OK();
}

}  // namespace vmrepl
