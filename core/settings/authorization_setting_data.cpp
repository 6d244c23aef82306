#include "core/settings/authorization_setting_data.h"

#include "core/settings/decode.h"
#include "core/settings/setting_fields.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

Status invalid(std::string message) { return Status::InvalidParameter(std::move(message)); }

std::string_view strip_trailing_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool has_dotdot_component(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

bool is_valid_host_name(std::string_view name) {
  name = strip_trailing_dot(name);
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_label_char(c)) return false;
    if (end == name.size()) return true;
    start = end + 1;
  }
}

bool host_matches(std::string_view pattern, std::string_view host) {
  pattern = strip_trailing_dot(pattern);
  host = strip_trailing_dot(host);
  if (host.empty() || pattern.empty()) return false;
  if (pattern == "*") return true;
  if (pattern.substr(0, 2) == "*.") {
    const std::string_view suffix = pattern.substr(1);  // ".contoso.com"
    return host.size() > suffix.size() && names_equal(host.substr(host.size() - suffix.size()), suffix);
  }
  return names_equal(pattern, host);
}

Result<AuthorizationSettingData> AuthorizationSettingData::from_instance(const Instance& in) {
  VMREPL_RETURN_IF_ERROR(check_typed_instance(in, kClassName));
  AuthorizationSettingData s;
  s.InstanceID = field_string(in, "InstanceID");
  s.ElementName = field_string(in, "ElementName");
  s.AllowedPrimaryHostSystem = field_string(in, "AllowedPrimaryHostSystem");
  s.TrustGroup = field_string(in, "TrustGroup");
  s.ReplicaStorageLocation = field_string(in, "ReplicaStorageLocation");
  return s;
}

Instance AuthorizationSettingData::to_instance() const {
  const ClassSchema& c = schema_of(kClassName);
  Instance out(c.name);
  put_string(out, c, "InstanceID", InstanceID);
  put_string(out, c, "ElementName", ElementName);
  put_string(out, c, "AllowedPrimaryHostSystem", AllowedPrimaryHostSystem);
  put_string(out, c, "TrustGroup", TrustGroup);
  put_string(out, c, "ReplicaStorageLocation", ReplicaStorageLocation);
  return out;
}

Status AuthorizationSettingData::validate() const {
  if (!AllowedPrimaryHostSystem || AllowedPrimaryHostSystem->empty())
    return invalid("AllowedPrimaryHostSystem is required (a host name, '*' or '*.domain')");
  const std::string& host = *AllowedPrimaryHostSystem;
  const bool ok = host == "*" || (host.size() > 2 && host.compare(0, 2, "*.") == 0 &&
                                  is_valid_host_name(std::string_view(host).substr(2))) ||
                  is_valid_host_name(host);
  if (!ok)
    return invalid("AllowedPrimaryHostSystem must be a host name, '*' or '*.domain' (got " + preview(host) + ")");
  if (!TrustGroup || TrustGroup->empty()) return invalid("TrustGroup must not be empty");
  if (!ReplicaStorageLocation || ReplicaStorageLocation->empty())
    return invalid("ReplicaStorageLocation is required (an absolute folder)");
  const std::string& path = *ReplicaStorageLocation;
  if (path.find('\0') != std::string::npos)
    return invalid("ReplicaStorageLocation must not contain a NUL character");
  if (path.front() != '/')
    return invalid("ReplicaStorageLocation must be an absolute path (got " + preview(path) + ")");
  if (has_dotdot_component(path))
    return invalid("ReplicaStorageLocation must not contain a '..' component (got " + preview(path) + ")");
  return check_instance(to_instance());
}

Result<AuthorizationSettingData> AuthorizationSettingData::parse(std::string_view text) {
  auto inst = decode_instance(text, kClassName);
  if (!inst) return inst.status();
  auto s = from_instance(*inst);
  if (!s) return s.status();
  VMREPL_RETURN_IF_ERROR(s->validate());
  return s;
}

}  // namespace vmrepl
