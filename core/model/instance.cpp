#include "core/model/instance.h"

#include <limits>

namespace vmrepl {

namespace {
struct TypeRow {
  CimType t;
  std::string_view name;
};
constexpr TypeRow kTypes[] = {
    {CimType::Boolean, "boolean"}, {CimType::UInt8, "uint8"},       {CimType::SInt8, "sint8"},
    {CimType::UInt16, "uint16"},   {CimType::SInt16, "sint16"},     {CimType::UInt32, "uint32"},
    {CimType::SInt32, "sint32"},   {CimType::UInt64, "uint64"},     {CimType::SInt64, "sint64"},
    {CimType::Real64, "real64"},   {CimType::String, "string"},     {CimType::DateTime, "datetime"},
    {CimType::Reference, "reference"},
};
}  // namespace

std::string_view cim_type_name(CimType t) {
  for (const auto& r : kTypes)
    if (r.t == t) return r.name;
  return "string";
}

std::optional<CimType> cim_type_from_name(std::string_view name) {
  for (const auto& r : kTypes)
    if (r.name == name) return r.t;
  return std::nullopt;
}

bool cim_type_is_unsigned(CimType t) {
  return t == CimType::UInt8 || t == CimType::UInt16 || t == CimType::UInt32 || t == CimType::UInt64;
}
bool cim_type_is_signed(CimType t) {
  return t == CimType::SInt8 || t == CimType::SInt16 || t == CimType::SInt32 || t == CimType::SInt64;
}
bool cim_type_is_text(CimType t) {
  return t == CimType::String || t == CimType::DateTime || t == CimType::Reference;
}

uint64_t cim_type_max_unsigned(CimType t) {
  switch (t) {
    case CimType::UInt8: return std::numeric_limits<uint8_t>::max();
    case CimType::UInt16: return std::numeric_limits<uint16_t>::max();
    case CimType::UInt32: return std::numeric_limits<uint32_t>::max();
    default: return std::numeric_limits<uint64_t>::max();
  }
}
int64_t cim_type_min_signed(CimType t) {
  switch (t) {
    case CimType::SInt8: return std::numeric_limits<int8_t>::min();
    case CimType::SInt16: return std::numeric_limits<int16_t>::min();
    case CimType::SInt32: return std::numeric_limits<int32_t>::min();
    default: return std::numeric_limits<int64_t>::min();
  }
}
int64_t cim_type_max_signed(CimType t) {
  switch (t) {
    case CimType::SInt8: return std::numeric_limits<int8_t>::max();
    case CimType::SInt16: return std::numeric_limits<int16_t>::max();
    case CimType::SInt32: return std::numeric_limits<int32_t>::max();
    default: return std::numeric_limits<int64_t>::max();
  }
}

const Property* Instance::find(std::string_view name) const {
  for (const auto& p : props_)
    if (p.name == name) return &p;
  return nullptr;
}

Property& Instance::slot(std::string_view name) {
  for (auto& p : props_)
    if (p.name == name) return p;
  props_.push_back(Property{std::string(name), CimType::String, false, std::nullopt});
  return props_.back();
}

Instance& Instance::set(Property p) {
  Property& s = slot(p.name);
  s = std::move(p);
  return *this;
}

Instance& Instance::set_bool(std::string_view name, bool v) {
  return set(Property{std::string(name), CimType::Boolean, false, std::vector<Scalar>{v}});
}
Instance& Instance::set_uint(std::string_view name, CimType t, uint64_t v) {
  return set(Property{std::string(name), t, false, std::vector<Scalar>{v}});
}
Instance& Instance::set_sint(std::string_view name, CimType t, int64_t v) {
  return set(Property{std::string(name), t, false, std::vector<Scalar>{v}});
}
Instance& Instance::set_real(std::string_view name, double v) {
  return set(Property{std::string(name), CimType::Real64, false, std::vector<Scalar>{v}});
}
Instance& Instance::set_string(std::string_view name, std::string v, CimType t) {
  return set(Property{std::string(name), t, false, std::vector<Scalar>{std::move(v)}});
}
Instance& Instance::set_string_array(std::string_view name, std::vector<std::string> v, CimType t) {
  std::vector<Scalar> vals;
  vals.reserve(v.size());
  for (auto& s : v) vals.emplace_back(std::move(s));
  return set(Property{std::string(name), t, true, std::move(vals)});
}
Instance& Instance::set_uint_array(std::string_view name, CimType t, const std::vector<uint64_t>& v) {
  std::vector<Scalar> vals(v.begin(), v.end());
  return set(Property{std::string(name), t, true, std::move(vals)});
}
Instance& Instance::set_null(std::string_view name, CimType t, bool is_array) {
  return set(Property{std::string(name), t, is_array, std::nullopt});
}

bool Instance::remove(std::string_view name) {
  for (auto it = props_.begin(); it != props_.end(); ++it) {
    if (it->name == name) {
      props_.erase(it);
      return true;
    }
  }
  return false;
}

namespace {
Status unknown(std::string_view name) {
  return Status::InvalidParameter("no property named " + std::string(name));
}
Status wrong(std::string_view name, std::string_view want, const Property& p) {
  std::string m = "property " + std::string(name) + " is ";
  m += p.is_null() ? "null" : (p.is_array ? "an array of " : "") + std::string(cim_type_name(p.type));
  m += ", not ";
  m += want;
  return Status::IncorrectDataType(std::move(m));
}
const Scalar* scalar(const Property& p) {
  if (p.is_array || !p.values || p.values->size() != 1) return nullptr;
  return &p.values->front();
}
}  // namespace

Result<bool> Instance::get_bool(std::string_view name) const {
  const Property* p = find(name);
  if (!p) return unknown(name);
  const Scalar* s = scalar(*p);
  if (!s || !std::holds_alternative<bool>(*s)) return wrong(name, "a boolean", *p);
  return std::get<bool>(*s);
}

Result<uint64_t> Instance::get_u64(std::string_view name) const {
  const Property* p = find(name);
  if (!p) return unknown(name);
  const Scalar* s = scalar(*p);
  if (s && std::holds_alternative<uint64_t>(*s)) return std::get<uint64_t>(*s);
  if (s && std::holds_alternative<int64_t>(*s) && std::get<int64_t>(*s) >= 0)
    return static_cast<uint64_t>(std::get<int64_t>(*s));
  return wrong(name, "an unsigned integer", *p);
}

Result<int64_t> Instance::get_i64(std::string_view name) const {
  const Property* p = find(name);
  if (!p) return unknown(name);
  const Scalar* s = scalar(*p);
  if (s && std::holds_alternative<int64_t>(*s)) return std::get<int64_t>(*s);
  if (s && std::holds_alternative<uint64_t>(*s) &&
      std::get<uint64_t>(*s) <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(std::get<uint64_t>(*s));
  return wrong(name, "a signed integer", *p);
}

Result<std::string> Instance::get_string(std::string_view name) const {
  const Property* p = find(name);
  if (!p) return unknown(name);
  const Scalar* s = scalar(*p);
  if (!s || !std::holds_alternative<std::string>(*s)) return wrong(name, "a string", *p);
  return std::get<std::string>(*s);
}

Result<std::vector<std::string>> Instance::get_string_array(std::string_view name) const {
  const Property* p = find(name);
  if (!p) return unknown(name);
  if (!p->is_array || !p->values || !cim_type_is_text(p->type))
    return wrong(name, "an array of strings", *p);
  std::vector<std::string> out;
  for (const auto& v : *p->values) out.push_back(std::get<std::string>(v));
  return out;
}

std::optional<uint64_t> Instance::u64_or_null(std::string_view name) const {
  auto r = get_u64(name);
  if (!r) return std::nullopt;
  return *r;
}
std::optional<std::string> Instance::string_or_null(std::string_view name) const {
  auto r = get_string(name);
  if (!r) return std::nullopt;
  return std::move(r).value();
}
std::optional<bool> Instance::bool_or_null(std::string_view name) const {
  auto r = get_bool(name);
  if (!r) return std::nullopt;
  return *r;
}

}  // namespace vmrepl
