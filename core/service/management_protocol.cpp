#include "core/service/management_protocol.h"

#include "core/protocol/protocol_limits.h"

namespace vmrepl::management {

using nlohmann::json;

namespace {

json scalar_to_json(const Scalar& v) {
  return std::visit([](const auto& x) -> json { return json(x); }, v);
}

Result<Scalar> scalar_from_json(const json& v, CimType t, const std::string& name) {
  auto bad = [&](const char* what) {
    return Status(Code::IncorrectDataType, "instance property '" + name + "' (" + std::string(cim_type_name(t)) +
                                               ") must hold " + what);
  };
  if (t == CimType::Boolean) {
    if (!v.is_boolean()) return bad("booleans");
    return Scalar(v.get<bool>());
  }
  if (cim_type_is_unsigned(t)) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) return bad("unsigned integers");
    uint64_t u = v.get<uint64_t>();
    if (u > cim_type_max_unsigned(t)) return bad("values in range");
    return Scalar(u);
  }
  if (cim_type_is_signed(t)) {
    if (!v.is_number_integer()) return bad("integers");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return bad("values in range");
    int64_t i = v.get<int64_t>();
    if (i < cim_type_min_signed(t) || i > cim_type_max_signed(t)) return bad("values in range");
    return Scalar(i);
  }
  if (t == CimType::Real64) {
    if (!v.is_number()) return bad("numbers");
    return Scalar(v.get<double>());
  }
  if (!v.is_string()) return bad("strings");
  return Scalar(v.get<std::string>());
}

// Deepest [ / { nesting of a JSON text, strings skipped; stops early past `limit`.
std::size_t nesting(std::string_view s, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

json instance_to_json(const Instance& inst) {
  json props = json::array();
  for (const auto& p : inst.properties()) {
    json v;
    if (p.is_null()) {
      v = nullptr;
    } else if (p.is_array) {
      v = json::array();
      for (const auto& s : *p.values) v.push_back(scalar_to_json(s));
    } else {
      v = (*p.values).empty() ? json(nullptr) : scalar_to_json((*p.values)[0]);
    }
    props.push_back({{"name", p.name}, {"type", std::string(cim_type_name(p.type))}, {"array", p.is_array}, {"value", v}});
  }
  return {{"class", inst.class_name()}, {"properties", std::move(props)}};
}

Result<Instance> instance_from_json(const json& j) {
  if (!j.is_object() || !j.contains("class") || !j["class"].is_string() || !j.contains("properties") ||
      !j["properties"].is_array())
    return Status(Code::IncorrectDataType, "instance: expected {\"class\": string, \"properties\": array}");
  Instance inst(j["class"].get<std::string>());
  for (const auto& p : j["properties"]) {
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || !p.contains("type") ||
        !p["type"].is_string() || !p.contains("array") || !p["array"].is_boolean() || !p.contains("value"))
      return Status(Code::IncorrectDataType, "instance: a property must be {name, type, array, value}");
    Property prop;
    prop.name = p["name"].get<std::string>();
    auto t = cim_type_from_name(p["type"].get<std::string>());
    if (!t) return Status(Code::IncorrectDataType, "instance property '" + prop.name + "': unknown CIM type");
    prop.type = *t;
    prop.is_array = p["array"].get<bool>();
    const json& v = p["value"];
    if (!v.is_null()) {
      std::vector<Scalar> values;
      if (prop.is_array) {
        if (!v.is_array()) return Status(Code::IncorrectDataType, "instance property '" + prop.name + "' must be an array");
        for (const auto& e : v) {
          auto s = scalar_from_json(e, prop.type, prop.name);
          if (!s) return s.status();
          values.push_back(std::move(s).value());
        }
      } else {
        auto s = scalar_from_json(v, prop.type, prop.name);
        if (!s) return s.status();
        values.push_back(std::move(s).value());
      }
      prop.values = std::move(values);
    }
    inst.set(std::move(prop));
  }
  return inst;
}

Result<json> parse_body(std::string_view text) {
  if (text.empty()) return json::object();
  if (text.size() > protocol::kMaxJsonBytes)
    return Status::InvalidParameter("management body of " + std::to_string(text.size()) + " bytes is over the limit of " +
                                    std::to_string(protocol::kMaxJsonBytes));
  if (nesting(text, kMaxBodyNesting) > kMaxBodyNesting)
    return Status::InvalidParameter("management body nests deeper than " + std::to_string(kMaxBodyNesting) + " levels");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status(Code::IncorrectDataType, "management body is not a JSON object");
  return j;
}

Result<std::string> arg_string(const json& args, std::string_view method, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_string())
    return Status(Code::IncorrectDataType,
                  std::string(method) + ": argument '" + name + "' must be a string");
  return it->get<std::string>();
}

Result<uint64_t> arg_uint(const json& args, std::string_view method, const char* name, uint64_t max) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max)
    return Status(Code::IncorrectDataType, std::string(method) + ": argument '" + name +
                                               "' must be an unsigned integer up to " + std::to_string(max));
  return it->get<uint64_t>();
}

Result<bool> arg_bool(const json& args, std::string_view method, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_boolean())
    return Status(Code::IncorrectDataType, std::string(method) + ": argument '" + name + "' must be a boolean");
  return it->get<bool>();
}

}  // namespace vmrepl::management
