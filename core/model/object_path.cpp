#include "core/model/object_path.h"

namespace vmrepl {

namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxKeys = 32;

bool is_ident_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

Status bad(std::string_view text, size_t pos, std::string_view why) {
  std::string shown(text.substr(0, 80));
  return Status::InvalidParameter("malformed object path '" + shown + (text.size() > 80 ? "..." : "") +
                                  "' at offset " + std::to_string(pos) + ": " + std::string(why));
}

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
}

}  // namespace

Result<ObjectPath> ObjectPath::parse(std::string_view text) {
  if (text.empty()) return Status::InvalidParameter("empty object path");
  if (text.size() > kMaxPath) return bad(text, kMaxPath, "longer than 4096 characters");
  ObjectPath p;
  size_t i = 0;
  if (text.starts_with("\\\\") || text.starts_with("//")) {
    i = 2;
    size_t host_end = text.find_first_of("\\/", i);
    if (host_end == std::string_view::npos || host_end == i) return bad(text, i, "expected \\\\HOST\\namespace:");
    p.host = std::string(text.substr(i, host_end - i));
    size_t colon = text.find(':', host_end);
    if (colon == std::string_view::npos) return bad(text, host_end, "expected ':' after the namespace");
    p.name_space = std::string(text.substr(host_end + 1, colon - host_end - 1));
    for (char& c : p.name_space)
      if (c == '/') c = '\\';
    if (p.name_space.empty()) return bad(text, host_end + 1, "empty namespace");
    i = colon + 1;
  } else if (size_t colon = text.find(':'); colon != std::string_view::npos &&
                                             text.find('.') != std::string_view::npos &&
                                             colon < text.find('.')) {
    // namespace:Class.Key="v" without a host
    p.name_space = std::string(text.substr(0, colon));
    i = colon + 1;
  }
  size_t cls_start = i;
  while (i < text.size() && is_ident_char(text[i])) ++i;
  if (i == cls_start) return bad(text, i, "expected a class name");
  p.class_name = std::string(text.substr(cls_start, i - cls_start));
  if (i == text.size()) return bad(text, i, "expected '.' and keys after the class name");
  if (text[i] != '.') return bad(text, i, "expected '.' after the class name");
  ++i;
  while (true) {
    if (p.keys.size() == kMaxKeys) return bad(text, i, "more than 32 keys");
    size_t ks = i;
    while (i < text.size() && is_ident_char(text[i])) ++i;
    if (i == ks) return bad(text, i, "expected a key name");
    std::string key(text.substr(ks, i - ks));
    if (i >= text.size() || text[i] != '=') return bad(text, i, "expected '=' after key " + key);
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\\') {
          if (i >= text.size()) return bad(text, i, "unterminated escape in key " + key);
          value += text[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return bad(text, i, "unterminated quoted value of key " + key);
    } else {
      size_t vs = i;
      if (i < text.size() && text[i] == '-') ++i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
      if (i == vs || (i == vs + 1 && text[vs] == '-'))
        return bad(text, i, "expected a quoted string or a number for key " + key);
      value = std::string(text.substr(vs, i - vs));
    }
    for (const auto& kv : p.keys)
      if (kv.first == key) return bad(text, ks, "key " + key + " given twice");
    p.keys.emplace_back(std::move(key), std::move(value));
    if (i == text.size()) break;
    if (text[i] != ',') return bad(text, i, "expected ',' between keys");
    ++i;
  }
  return p;
}

std::string ObjectPath::format_relative() const {
  std::string out = class_name;
  out += '.';
  bool first = true;
  for (const auto& [k, v] : keys) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v);
    out += '"';
  }
  return out;
}

std::string ObjectPath::format() const {
  if (host.empty()) {
    if (name_space.empty()) return format_relative();
    return name_space + ":" + format_relative();
  }
  return "\\\\" + host + "\\" + (name_space.empty() ? std::string(kVirtualizationNamespace) : name_space) +
         ":" + format_relative();
}

const std::string* ObjectPath::key(std::string_view name) const {
  for (const auto& kv : keys)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

ObjectPath ObjectPath::computer_system(std::string host, std::string guid) {
  ObjectPath p;
  p.host = std::move(host);
  p.name_space = std::string(kVirtualizationNamespace);
  p.class_name = "Msvm_ComputerSystem";
  p.keys = {{"CreationClassName", "Msvm_ComputerSystem"}, {"Name", std::move(guid)}};
  return p;
}

}  // namespace vmrepl
