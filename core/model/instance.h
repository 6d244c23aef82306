// Instance: a read-only-to-clients property bag in the shape of a WMI/CIM instance.
//
// Every object the engine hands out (VM, relationship, job, settings, statistics) is an
// Instance: a class name plus typed, ordered properties that may be null. Properties are read
// by name, so adding one never changes a signature (the C ABI's property bags sit on this).
// The text codecs (CIM-XML, MOF, JSON) live in core/settings.
//
// Thread-safety: a value type; not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/model/status.h"

namespace vmrepl {

// CIM intrinsic types used by the model. Datetime values are kept as their CIM strings.
enum class CimType : uint8_t {
  Boolean, UInt8, SInt8, UInt16, SInt16, UInt32, SInt32, UInt64, SInt64, Real64, String, DateTime,
  Reference,
};

// "uint16", "datetime", "reference"... as CIM-XML's TYPE attribute spells them.
std::string_view cim_type_name(CimType t);
std::optional<CimType> cim_type_from_name(std::string_view name);
bool cim_type_is_unsigned(CimType t);
bool cim_type_is_signed(CimType t);
bool cim_type_is_text(CimType t);  // String, DateTime, Reference
// Largest value of an unsigned type / range of a signed type.
uint64_t cim_type_max_unsigned(CimType t);
int64_t cim_type_min_signed(CimType t);
int64_t cim_type_max_signed(CimType t);

// A scalar value: bool for Boolean, uint64_t for unsigned, int64_t for signed, double for
// Real64, std::string for String / DateTime / Reference.
using Scalar = std::variant<bool, uint64_t, int64_t, double, std::string>;

struct Property {
  std::string name;
  CimType type = CimType::String;
  bool is_array = false;
  // Null when empty. A scalar property holds exactly one element.
  std::optional<std::vector<Scalar>> values;

  bool is_null() const { return !values.has_value(); }
  bool operator==(const Property&) const = default;
};

class Instance {
 public:
  Instance() = default;
  explicit Instance(std::string class_name) : class_name_(std::move(class_name)) {}

  const std::string& class_name() const { return class_name_; }
  void set_class_name(std::string c) { class_name_ = std::move(c); }
  const std::vector<Property>& properties() const { return props_; }

  const Property* find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }

  // Setters replace a property of the same name (keeping its position) or append it.
  Instance& set_bool(std::string_view name, bool v);
  Instance& set_uint(std::string_view name, CimType t, uint64_t v);
  Instance& set_u16(std::string_view name, uint16_t v) { return set_uint(name, CimType::UInt16, v); }
  Instance& set_u32(std::string_view name, uint32_t v) { return set_uint(name, CimType::UInt32, v); }
  Instance& set_u64(std::string_view name, uint64_t v) { return set_uint(name, CimType::UInt64, v); }
  Instance& set_sint(std::string_view name, CimType t, int64_t v);
  Instance& set_real(std::string_view name, double v);
  Instance& set_string(std::string_view name, std::string v, CimType t = CimType::String);
  Instance& set_datetime(std::string_view name, std::string v) {
    return set_string(name, std::move(v), CimType::DateTime);
  }
  Instance& set_string_array(std::string_view name, std::vector<std::string> v,
                             CimType t = CimType::String);
  Instance& set_uint_array(std::string_view name, CimType t, const std::vector<uint64_t>& v);
  Instance& set_null(std::string_view name, CimType t, bool is_array = false);
  Instance& set(Property p);
  bool remove(std::string_view name);

  // Typed getters. Unknown name -> InvalidParameter naming it; null or a value of another
  // type -> IncorrectDataType naming it.
  Result<bool> get_bool(std::string_view name) const;
  Result<uint64_t> get_u64(std::string_view name) const;  // any unsigned type, or signed >= 0
  Result<int64_t> get_i64(std::string_view name) const;   // any integer type that fits
  Result<std::string> get_string(std::string_view name) const;  // String / DateTime / Reference
  Result<std::vector<std::string>> get_string_array(std::string_view name) const;
  // Null and absent both give nullopt; a value of another type gives nullopt too.
  std::optional<uint64_t> u64_or_null(std::string_view name) const;
  std::optional<std::string> string_or_null(std::string_view name) const;
  std::optional<bool> bool_or_null(std::string_view name) const;

  bool operator==(const Instance&) const = default;

 private:
  Property& slot(std::string_view name);
  std::string class_name_;
  std::vector<Property> props_;
};

}  // namespace vmrepl
