#include "core/settings/json.h"

#include <nlohmann/json.hpp>

#include <exception>
#include <vector>

#include "core/settings/schema.h"
#include "core/settings/text_limits.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

constexpr std::string_view kFormat = "JSON";

// One JSON value as the handler keeps it: scalars in full, containers only as a kind.
struct JsonScalar {
  enum Kind : uint8_t { Null, Bool, Int, Uint, Float, String, Array, Object };
  Kind kind = Null;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;  // a string's value, or a float's text as written
};

struct JsonEntry {
  std::string key;
  JsonScalar value;
  std::vector<JsonScalar> items;  // when value.kind == Array
};

std::string describe(const JsonScalar& v) {
  switch (v.kind) {
    case JsonScalar::Null: return "null";
    case JsonScalar::Bool: return v.b ? "true" : "false";
    case JsonScalar::Int: return std::to_string(v.i);
    case JsonScalar::Uint: return std::to_string(v.u);
    case JsonScalar::Float: return preview(v.s);
    case JsonScalar::String: return "a JSON string";
    case JsonScalar::Array: return "a JSON array";
    case JsonScalar::Object: return "a JSON object";
  }
  return "a JSON value";
}

bool is_class_key(std::string_view k) { return names_equal(k, "__CLASS"); }

// Keeps the top-level object's keys and scalar / array-of-scalar values; skips the values of
// ignored `__*` keys and of nested containers without storing them. Returning false aborts
// the parse, with the reason in `status`.
class Collector final : public nlohmann::json_sax<nlohmann::json> {
 public:
  Status status;
  bool has_class = false;
  std::string class_name;
  std::vector<JsonEntry> entries;

  bool null() override { return value(JsonScalar{}); }
  bool boolean(bool v) override {
    JsonScalar s;
    s.kind = JsonScalar::Bool;
    s.b = v;
    return value(std::move(s));
  }
  bool number_integer(number_integer_t v) override {
    JsonScalar s;
    s.kind = JsonScalar::Int;
    s.i = v;
    return value(std::move(s));
  }
  bool number_unsigned(number_unsigned_t v) override {
    JsonScalar s;
    s.kind = JsonScalar::Uint;
    s.u = v;
    return value(std::move(s));
  }
  bool number_float(number_float_t v, const string_t& raw) override {
    JsonScalar s;
    s.kind = JsonScalar::Float;
    s.d = v;
    s.s = raw.substr(0, kMaxNumberChars + 1);
    return value(std::move(s));
  }
  bool string(string_t& v) override {
    JsonScalar s;
    s.kind = JsonScalar::String;
    s.s = std::move(v);
    return value(std::move(s));
  }
  bool binary(binary_t&) override { return fail(Status::InvalidParameter("JSON: binary values are not supported")); }
  bool start_object(std::size_t) override { return open(JsonScalar::Object); }
  bool start_array(std::size_t) override { return open(JsonScalar::Array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1 && skip_from_ == 0) {
      key_ = std::move(k);
      ignore_key_ = key_.substr(0, 2) == "__" && !is_class_key(key_);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string& last_token, const nlohmann::detail::exception& e) override {
    // 406: a number too large for a double, e.g. 1e400.
    if (e.id == 406) {
      return fail(Status::IncorrectDataType((skip_from_ == 0 && !key_.empty() ? key_ + ": " : std::string()) +
                                            "the number " + preview(last_token) + " is out of range"));
    }
    std::string what = e.what();
    const std::size_t tag = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && tag != std::string::npos) what.erase(0, tag + 2);
    // The parser quotes the input it last read, which may be long: keep messages short.
    constexpr std::size_t kMaxDetail = 200;
    if (what.size() > kMaxDetail) {
      std::size_t cut = kMaxDetail;
      while (cut > 0 && (static_cast<unsigned char>(what[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
      what = what.substr(0, cut) + "...";
    }
    return fail(Status::InvalidParameter("JSON: not well-formed: " + what));
  }

 private:
  bool fail(Status s) {
    if (status.ok()) status = std::move(s);
    return false;
  }

  bool value(JsonScalar s) {
    if (skip_from_ != 0) return true;
    if (depth_ == 0)
      return fail(Status::InvalidParameter("JSON setting data must be an object, not " + describe(s)));
    if (depth_ == 1) {
      if (is_class_key(key_)) {
        if (s.kind != JsonScalar::String) return fail(Status::InvalidParameter("JSON: __CLASS must be a string"));
        if (has_class) return fail(Status::InvalidParameter("JSON: __CLASS appears twice"));
        has_class = true;
        class_name = std::move(s.s);
      } else if (!ignore_key_) {
        entries.push_back(JsonEntry{key_, std::move(s), {}});
      }
      return true;
    }
    return push_item(std::move(s));  // depth 2: an element of a stored array
  }

  bool push_item(JsonScalar s) {
    auto& items = entries.back().items;
    if (items.size() == kMaxArrayElements)
      return fail(Status::InvalidParameter(entries.back().key + ": more than " +
                                           std::to_string(kMaxArrayElements) + " elements"));
    items.push_back(std::move(s));
    return true;
  }

  bool open(JsonScalar::Kind kind) {
    if (depth_ == 0 && kind != JsonScalar::Object)
      return fail(Status::InvalidParameter("JSON setting data must be an object, not a JSON array"));
    if (depth_ == 1 && skip_from_ == 0) {
      if (is_class_key(key_)) return fail(Status::InvalidParameter("JSON: __CLASS must be a string"));
      if (ignore_key_) {
        skip_from_ = depth_ + 1;
      } else {
        JsonScalar marker;
        marker.kind = kind;
        entries.push_back(JsonEntry{key_, std::move(marker), {}});
        if (kind == JsonScalar::Object) skip_from_ = depth_ + 1;
      }
    } else if (depth_ == 2 && skip_from_ == 0) {
      JsonScalar marker;
      marker.kind = kind;
      if (!push_item(std::move(marker))) return false;
      skip_from_ = depth_ + 1;
    }
    ++depth_;
    if (depth_ > kMaxJsonDepth)
      return fail(Status::InvalidParameter("JSON: nesting deeper than " + std::to_string(kMaxJsonDepth) +
                                           " levels"));
    return true;
  }

  bool close() {
    --depth_;
    if (skip_from_ != 0 && depth_ < skip_from_) skip_from_ = 0;
    return true;
  }

  std::size_t depth_ = 0;      // containers open
  std::size_t skip_from_ = 0;  // depth at which skipped content started; 0 when not skipping
  std::string key_;
  bool ignore_key_ = false;
};

Result<Scalar> convert_scalar(const PropertySchema& p, const JsonScalar& s) {
  const std::string type(cim_type_name(p.type));
  switch (s.kind) {
    case JsonScalar::Null: return bad_value(p, "null array elements are not supported");
    case JsonScalar::Array:
    case JsonScalar::Object: return bad_type(p, "nested arrays or objects are not allowed");
    default: break;
  }
  Scalar v;
  if (p.type == CimType::Boolean) {
    if (s.kind != JsonScalar::Bool) return bad_type(p, describe(s) + " is not a boolean (true or false)");
    v = s.b;
  } else if (cim_type_is_text(p.type)) {
    if (s.kind != JsonScalar::String) return bad_type(p, describe(s) + " is not a JSON string (" + type + ")");
    v = s.s;
  } else if (p.type == CimType::Real64) {
    if (s.kind == JsonScalar::Float) v = s.d;
    else if (s.kind == JsonScalar::Int) v = static_cast<double>(s.i);
    else if (s.kind == JsonScalar::Uint) v = static_cast<double>(s.u);
    else return bad_type(p, describe(s) + " is not a number");
  } else if (s.kind == JsonScalar::Float) {
    // Integers too large for 64 bits arrive as floats; their text tells the two cases apart.
    const bool integral = s.s.find_first_of(".eE") == std::string::npos;
    if (integral) return bad_type(p, preview(s.s) + " is out of range for " + type);
    return bad_type(p, preview(s.s) + " is not an integer (" + type + ")");
  } else if (cim_type_is_unsigned(p.type)) {
    if (s.kind == JsonScalar::Int) return bad_type(p, describe(s) + " is negative; " + type + " is unsigned");
    if (s.kind != JsonScalar::Uint) return bad_type(p, describe(s) + " is not a " + type);
    v = s.u;
  } else {  // signed
    if (s.kind == JsonScalar::Int) {
      v = s.i;
    } else if (s.kind == JsonScalar::Uint) {
      if (s.u > static_cast<uint64_t>(cim_type_max_signed(p.type)))
        return bad_type(p, describe(s) + " is out of range for " + type);
      v = static_cast<int64_t>(s.u);
    } else {
      return bad_type(p, describe(s) + " is not a " + type);
    }
  }
  VMREPL_RETURN_IF_ERROR(check_value(p, v));
  return v;
}

Result<Property> convert(const PropertySchema& p, const JsonEntry& e) {
  const std::string type(cim_type_name(p.type));
  switch (e.value.kind) {
    case JsonScalar::Null: return make_property(p, std::nullopt);
    case JsonScalar::Object: return bad_type(p, "a JSON object is not a valid value");
    case JsonScalar::Array: {
      if (!p.is_array) return bad_type(p, "a JSON array was given for a scalar " + type);
      std::vector<Scalar> values;
      values.reserve(e.items.size());
      for (const JsonScalar& s : e.items) {
        auto v = convert_scalar(p, s);
        if (!v) return v.status();
        values.push_back(std::move(*v));
      }
      return make_property(p, std::move(values));
    }
    default: {
      if (p.is_array) return bad_type(p, describe(e.value) + " was given for an array (" + type + "[])");
      auto v = convert_scalar(p, e.value);
      if (!v) return v.status();
      return make_property(p, std::vector<Scalar>{std::move(*v)});
    }
  }
}

nlohmann::ordered_json to_json(const Scalar& v) {
  switch (v.index()) {
    case 0: return std::get<bool>(v);
    case 1: return std::get<uint64_t>(v);
    case 2: return std::get<int64_t>(v);
    case 3: return std::get<double>(v);
    default: return std::get<std::string>(v);
  }
}

}  // namespace

std::string encode_json(const Instance& instance) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!instance.class_name().empty()) j["__CLASS"] = instance.class_name();
  for (const Property& p : instance.properties()) {
    nlohmann::ordered_json& slot = j[p.name];
    if (!p.values) {
      slot = nullptr;
    } else if (!p.is_array && p.values->size() == 1) {
      slot = to_json(p.values->front());
    } else {
      slot = nlohmann::ordered_json::array();
      for (const Scalar& v : *p.values) slot.push_back(to_json(v));
    }
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<Instance> decode_json(std::string_view text, std::string_view expected_class) {
  VMREPL_RETURN_IF_ERROR(check_text(text, kFormat));
  text = strip_bom(text);
  Collector sax;
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const std::exception& e) {
    // The SAX interface reports errors through parse_error; anything thrown is unexpected.
    return Status::InvalidParameter(std::string("JSON: ") + e.what());
  }
  if (!sax.status.ok()) return sax.status;
  if (!parsed) return Status::InvalidParameter("JSON: not well-formed");
  if (sax.has_class && sax.class_name.empty()) return Status::InvalidParameter("JSON: __CLASS is empty");

  auto schema = resolve_class(sax.class_name, expected_class, kFormat);
  if (!schema) return schema.status();
  const ClassSchema& c = **schema;
  Instance inst(c.name);
  for (const JsonEntry& e : sax.entries) {
    const PropertySchema* p = c.find(e.key);
    if (!p) return Status::InvalidParameter(c.name + " has no property " + preview(e.key));
    if (inst.has(p->name)) return bad_value(*p, "the property appears twice");
    auto prop = convert(*p, e);
    if (!prop) return prop.status();
    inst.set(std::move(*prop));
  }
  return inst;
}

}  // namespace vmrepl
