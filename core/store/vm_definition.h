// VmDefinition: what a caller asks for when defining a VM, and the rules it must meet. The rules
// live here, apart from VmStore, so the service layer can check a request synchronously (and
// answer 32773 at once) before it starts a job.
//
// Every failure is InvalidParameter (32773) and names the property and the rule:
//   "ElementName: must not contain '/' or '\\'", "disks[1]: 5000 bytes is not a multiple of 4096".
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/guid.h"
#include "core/model/status.h"

namespace vmrepl {

struct VmDefinition {
  std::string name;                  // ElementName
  std::optional<Guid> id;            // Name (the VM GUID); generated when unset
  std::vector<uint64_t> disk_sizes;  // bytes, one entry per disk, in index order
};

struct VmLimits {
  static constexpr size_t kMaxNameBytes = 100;
  static constexpr size_t kMinDisks = 1;
  static constexpr size_t kMaxDisks = 16;
  static constexpr uint64_t kDiskAlignment = 4096;
  static constexpr uint64_t kMaxDiskBytes = uint64_t{64} << 40;  // 64 TiB
};

// ElementName rules: non-empty; at most kMaxNameBytes bytes; valid UTF-8 (no overlong forms,
// surrogates or code points above U+10FFFF); no NUL and no control characters (C0, DEL, C1);
// not "." or ".."; no '/' or '\'; not a GUID (a GUID names a VM by its Name, so a look-up by
// "name or GUID" must never be ambiguous).
Status validate_vm_name(std::string_view name);

// Disk rules: kMinDisks..kMaxDisks disks; each size > 0, a multiple of kDiskAlignment and at
// most kMaxDiskBytes.
Status validate_disk_sizes(std::span<const uint64_t> sizes);

// The name, the disks and the id (which must not be the nil GUID), in that order.
Status validate_definition(const VmDefinition& def);

// `s` made safe to show in a message: printable ASCII kept, other bytes as \xNN, cut after
// `max` bytes with "...". Names come from callers and may hold anything.
std::string printable(std::string_view s, size_t max = 120);

}  // namespace vmrepl
