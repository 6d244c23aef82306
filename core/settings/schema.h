// Class schemas of the setting-data classes vmrepl reads from text (spec §3, §4): for each class
// its properties with CIM type, array-ness, default, string(N) limit and read-only flag.
//
// The codecs encode any Instance without a schema, but decode only classes listed here: the
// schema supplies the types, so a JSON or MOF value can be typed and checked exactly. Class and
// property names match case-insensitively, as in WMI; decoded instances carry the schema's
// spelling.
//
// Thread-safety: the registry is built once (function-local static) and never changes; every
// function here may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/instance.h"
#include "core/model/status.h"

namespace vmrepl {

inline constexpr std::string_view kReplicationSettingDataClass = "Msvm_ReplicationSettingData";
inline constexpr std::string_view kReplicationServiceSettingDataClass =
    "Msvm_ReplicationServiceSettingData";
inline constexpr std::string_view kReplicationAuthorizationSettingDataClass =
    "Msvm_ReplicationAuthorizationSettingData";

// Which CIM datetime spellings a datetime property accepts.
enum class DateTimeForm : uint8_t {
  Point,            // yyyymmddHHMMSS.mmmmmmsUUU
  PointOrInterval,  // also ddddddddHHMMSS.mmmmmm:000 (the spec's "datetime (interval)")
  TimeOfDay,        // a point, or one whose date fields are all zero: 00000000HHMMSS.mmmmmmsUUU
};

struct PropertySchema {
  std::string name;
  CimType type = CimType::String;
  bool is_array = false;
  bool read_only = false;        // the server sets it; a client's value is informational
  bool unused = false;           // inherited and documented as unused: accepted, never interpreted
  uint32_t max_length = 0;       // string(N): at most N characters (code points); 0 = no limit
  std::optional<Scalar> default_value;  // nullopt: the default is null
  DateTimeForm datetime_form = DateTimeForm::Point;  // only for CimType::DateTime

  // The property as an instance carries it by default: the default value, or null.
  Property default_property() const;
};

struct ClassSchema {
  std::string name;
  std::string superclass;
  std::vector<PropertySchema> properties;  // the order the typed classes write them in

  // Case-insensitive; nullptr when the class has no such property.
  const PropertySchema* find(std::string_view property) const;
};

// Every known class, in a fixed order.
const std::vector<ClassSchema>& class_schemas();
// Case-insensitive. Unknown -> InvalidParameter "unknown class 'X' (known: ...)".
Result<const ClassSchema*> find_class_schema(std::string_view class_name);

// Checks one value against its property: the Scalar alternative for the type, the type's range,
// finite reals, and for text: valid UTF-8, no NUL, string(N), datetime spelling.
// Errors name the property; wrong type/range/datetime -> IncorrectDataType (32776), length, NUL
// and UTF-8 -> InvalidParameter (32773).
Status check_value(const PropertySchema& property, const Scalar& value);

// Checks a whole instance against its class: known class and properties (32773), no duplicates
// (32773), each property's type and array-ness as the schema says (32776), arrays within
// kMaxArrayElements (32773), every value as check_value.
Status check_instance(const Instance& instance);

// ASCII case-insensitive equality, the rule for WMI class and property names.
bool names_equal(std::string_view a, std::string_view b);

}  // namespace vmrepl
