#include "core/settings/setting_fields.h"

#include <stdexcept>

#include "core/settings/value_text.h"

namespace vmrepl::settings_internal {

namespace {

const Property* find_field(const Instance& instance, std::string_view name) {
  for (const Property& p : instance.properties())
    if (names_equal(p.name, name)) return &p;
  return nullptr;
}

const Scalar* single(const Instance& instance, std::string_view name) {
  const Property* p = find_field(instance, name);
  if (!p || !p->values || p->values->size() != 1) return nullptr;
  return &p->values->front();
}

const PropertySchema& property_of(const ClassSchema& schema, std::string_view name) {
  const PropertySchema* p = schema.find(name);
  if (!p) throw std::logic_error("typed class writes unknown property " + std::string(name));
  return *p;
}

}  // namespace

Status check_typed_instance(const Instance& instance, std::string_view class_name) {
  if (!names_equal(instance.class_name(), class_name))
    return Status::InvalidParameter("expected an instance of " + std::string(class_name) + ", got " +
                                    preview(instance.class_name()));
  return check_instance(instance);
}

std::optional<uint64_t> field_uint(const Instance& instance, std::string_view name) {
  const Scalar* s = single(instance, name);
  if (!s || !std::holds_alternative<uint64_t>(*s)) return std::nullopt;
  return std::get<uint64_t>(*s);
}

std::optional<bool> field_bool(const Instance& instance, std::string_view name) {
  const Scalar* s = single(instance, name);
  if (!s || !std::holds_alternative<bool>(*s)) return std::nullopt;
  return std::get<bool>(*s);
}

std::optional<std::string> field_string(const Instance& instance, std::string_view name) {
  const Scalar* s = single(instance, name);
  if (!s || !std::holds_alternative<std::string>(*s)) return std::nullopt;
  return std::get<std::string>(*s);
}

std::optional<std::vector<std::string>> field_strings(const Instance& instance, std::string_view name) {
  const Property* p = find_field(instance, name);
  if (!p || !p->values) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(p->values->size());
  for (const Scalar& v : *p->values)
    if (const auto* s = std::get_if<std::string>(&v)) out.push_back(*s);
  return out;
}

void put_uint(Instance& out, const ClassSchema& schema, std::string_view name, std::optional<uint64_t> v) {
  const PropertySchema& p = property_of(schema, name);
  out.set(make_property(p, v ? std::optional<std::vector<Scalar>>(std::vector<Scalar>{*v}) : std::nullopt));
}

void put_bool(Instance& out, const ClassSchema& schema, std::string_view name, std::optional<bool> v) {
  const PropertySchema& p = property_of(schema, name);
  out.set(make_property(p, v ? std::optional<std::vector<Scalar>>(std::vector<Scalar>{*v}) : std::nullopt));
}

void put_string(Instance& out, const ClassSchema& schema, std::string_view name,
                const std::optional<std::string>& v) {
  const PropertySchema& p = property_of(schema, name);
  out.set(make_property(p, v ? std::optional<std::vector<Scalar>>(std::vector<Scalar>{*v}) : std::nullopt));
}

void put_strings(Instance& out, const ClassSchema& schema, std::string_view name,
                 const std::optional<std::vector<std::string>>& v) {
  const PropertySchema& p = property_of(schema, name);
  if (!v) {
    out.set(make_property(p, std::nullopt));
    return;
  }
  std::vector<Scalar> values(v->begin(), v->end());
  out.set(make_property(p, std::move(values)));
}

const ClassSchema& schema_of(std::string_view class_name) {
  auto s = find_class_schema(class_name);
  if (!s) throw std::logic_error("no schema for " + std::string(class_name));
  return **s;
}

bool is_hex_thumbprint(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

Status check_thumbprint(std::string_view name, const std::optional<std::string>& v) {
  if (!v || v->empty() || is_hex_thumbprint(*v)) return Status::OK();
  return Status::InvalidParameter(std::string(name) + " must be 40 or 64 hexadecimal digits (got " +
                                  preview(*v) + ")");
}

Status check_connection_point(std::string_view name, const std::optional<std::string>& v, bool required) {
  const std::string n(name);
  if (!v || v->empty()) {
    if (required) return Status::InvalidParameter(n + " is required (a host name)");
    return Status::OK();
  }
  const std::size_t chars = utf8_length(*v);
  if (chars == std::string::npos) return Status::InvalidParameter(n + " is not valid UTF-8");
  if (chars > 256)
    return Status::InvalidParameter(n + " must be at most 256 characters (got " + std::to_string(chars) + ")");
  for (char ch : *v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f)
      return Status::InvalidParameter(n + " must be a host name without spaces or control characters (got " +
                                      preview(*v) + ")");
  }
  return Status::OK();
}

}  // namespace vmrepl::settings_internal
