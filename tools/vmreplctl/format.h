// How values are shown to people: the model's numbers with their names ("3 Replicating"),
// CIM datetimes as readable times, byte counts with a binary unit, and aligned tables.
// Names are those of the Python binding's IntEnums (vmrepl.enums), so every client speaks
// the same language.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "handles.h"

namespace vmreplctl {

// The name of value `v` of the enumerated property `property` (ReplicationMode,
// ReplicationState, ReplicationHealth, EnabledState, JobState, JobType, ...); empty when the
// property is not an enumeration or the value has no name.
std::string enum_name(std::string_view property, uint64_t v);

// "3 Replicating"; just the number when it has no name.
std::string numbered(std::string_view property, uint64_t v);

// "64.0 MiB"; "512 B" below 1 KiB.
std::string human_bytes(uint64_t n);

// A CIM datetime: a point ("20240501120000.123456+000") as "2024-05-01 12:00:00.123 UTC+000",
// the zero point as "never"; an interval ("00000000000001.500000:000") as "1.500 s". Other
// text: nullopt.
std::optional<std::string> human_datetime(std::string_view cim);

// A property's value for a table cell or a "Key  value" line.
std::string render_value(std::string_view property, const Json& v);

// Parses a disk size: a whole number with an optional K, M, G or T (powers of 1024, case
// insensitive, optionally followed by "iB" or "B"). nullopt when malformed or zero.
std::optional<uint64_t> parse_size(std::string_view text);

// Aligned columns separated by two spaces; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "Key  value" lines, keys aligned; `skip` names properties left out.
void print_properties(std::ostream& out, const Json& instance, const std::vector<std::string>& skip = {},
                      std::string_view indent = "");

}  // namespace vmreplctl
