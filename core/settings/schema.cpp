#include "core/settings/schema.h"

#include <cmath>
#include <string>

#include "core/model/cim_datetime.h"
#include "core/settings/text_limits.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using settings_internal::bad_type;
using settings_internal::bad_value;
using settings_internal::preview;

PropertySchema prop(std::string name, CimType type) {
  PropertySchema p;
  p.name = std::move(name);
  p.type = type;
  return p;
}
PropertySchema str(std::string name, uint32_t max_length = 0) {
  PropertySchema p = prop(std::move(name), CimType::String);
  p.max_length = max_length;
  return p;
}
PropertySchema read_only(PropertySchema p) {
  p.read_only = true;
  return p;
}
PropertySchema unused(PropertySchema p) {
  p.unused = true;
  return p;
}
PropertySchema with_default(PropertySchema p, Scalar v) {
  p.default_value = std::move(v);
  return p;
}
PropertySchema array(PropertySchema p) {
  p.is_array = true;
  return p;
}
PropertySchema datetime(std::string name, DateTimeForm form) {
  PropertySchema p = prop(std::move(name), CimType::DateTime);
  p.datetime_form = form;
  return p;
}
PropertySchema u16(std::string name) { return prop(std::move(name), CimType::UInt16); }
PropertySchema boolean(std::string name) { return prop(std::move(name), CimType::Boolean); }

// CIM_ManagedElement, inherited by every setting-data class (Caption is MaxLen(64) there).
void add_managed_element(std::vector<PropertySchema>& v) {
  v.push_back(read_only(str("InstanceID")));
  v.push_back(str("Caption", 64));
  v.push_back(str("Description"));
  v.push_back(str("ElementName"));
}

ClassSchema replication_setting_data() {
  ClassSchema c;
  c.name = std::string(kReplicationSettingDataClass);
  c.superclass = "CIM_VirtualSystemSettingData";
  auto& v = c.properties;
  add_managed_element(v);
  v.back() = read_only(v.back());  // ElementName is the VM's display name
  v.push_back(read_only(str("VirtualSystemIdentifier")));
  v.push_back(read_only(with_default(str("VirtualSystemType"), std::string("Microsoft:Hyper-V:Replica"))));
  // Spec §3, in its table's order.
  v.push_back(u16("AuthenticationType"));
  v.push_back(str("CertificateThumbPrint", 128));
  v.push_back(read_only(str("RootCertificateThumbPrint", 128)));
  v.push_back(boolean("CompressionEnabled"));
  v.push_back(boolean("BypassProxyServer"));
  v.push_back(str("RecoveryConnectionPoint", 256));
  v.push_back(read_only(str("RecoveryHostSystem", 256)));
  v.push_back(read_only(str("PrimaryConnectionPoint", 256)));
  v.push_back(read_only(str("PrimaryHostSystem", 256)));
  v.push_back(with_default(u16("RecoveryServerPortNumber"), uint64_t{0}));
  v.push_back(with_default(boolean("ReplicateHostKvpItems"), true));
  v.push_back(u16("ApplicationConsistentSnapshotInterval"));
  v.push_back(with_default(u16("RecoveryHistory"), uint64_t{0}));
  v.push_back(array(str("IncludedDisks")));
  v.push_back(with_default(boolean("AutoResynchronizeEnabled"), false));
  v.push_back(with_default(datetime("AutoResynchronizeIntervalStart", DateTimeForm::PointOrInterval),
                           std::string("00000000183000.000000:000")));
  v.push_back(with_default(datetime("AutoResynchronizeIntervalEnd", DateTimeForm::PointOrInterval),
                           std::string("00000000060000.000000:000")));
  v.push_back(boolean("EnableWriteOrderPreservationAcrossDisks"));
  v.push_back(with_default(u16("ReplicationInterval"), uint64_t{300}));
  v.push_back(str("ReplicationProvider"));
  v.push_back(str("AdditionalSettings"));
  // CIM_VirtualSystemSettingData members: unused, but present in every fetched instance that a
  // client passes back (the sample serialises the whole instance with GetText).
  v.push_back(unused(u16("AutomaticRecoveryAction")));
  v.push_back(unused(u16("AutomaticShutdownAction")));
  v.push_back(unused(u16("AutomaticStartupAction")));
  v.push_back(unused(datetime("AutomaticStartupActionDelay", DateTimeForm::PointOrInterval)));
  v.push_back(unused(u16("AutomaticStartupActionSequenceNumber")));
  v.push_back(unused(str("ConfigurationDataRoot")));
  v.push_back(unused(str("ConfigurationFile")));
  v.push_back(unused(str("ConfigurationID")));
  v.push_back(unused(datetime("CreationTime", DateTimeForm::Point)));
  v.push_back(unused(str("LogDataRoot")));
  v.push_back(unused(array(str("Notes"))));
  v.push_back(unused(str("RecoveryFile")));
  v.push_back(unused(str("SnapshotDataRoot")));
  v.push_back(unused(str("SuspendDataRoot")));
  v.push_back(unused(str("SwapFileDataRoot")));
  return c;
}

ClassSchema replication_service_setting_data() {
  ClassSchema c;
  c.name = std::string(kReplicationServiceSettingDataClass);
  c.superclass = "CIM_SettingData";
  auto& v = c.properties;
  add_managed_element(v);
  v.push_back(with_default(boolean("RecoveryServerEnabled"), false));
  v.push_back(with_default(u16("AllowedAuthenticationType"), uint64_t{0}));
  v.push_back(str("CertificateThumbPrint", 128));
  v.push_back(with_default(u16("HttpPort"), uint64_t{80}));
  v.push_back(with_default(u16("HttpsPort"), uint64_t{443}));
  v.push_back(with_default(prop("MonitoringInterval", CimType::UInt32), uint64_t{43200}));
  // 09:00 as a time of day in UTC (the spec: 09:00 local, expressed in UTC; hosts run in UTC).
  v.push_back(with_default(datetime("MonitoringStartTime", DateTimeForm::TimeOfDay),
                           std::string("00000000090000.000000+000")));
  return c;
}

ClassSchema replication_authorization_setting_data() {
  ClassSchema c;
  c.name = std::string(kReplicationAuthorizationSettingDataClass);
  c.superclass = "CIM_SettingData";
  auto& v = c.properties;
  add_managed_element(v);  // InstanceID: documented as always null
  v.push_back(str("AllowedPrimaryHostSystem"));
  v.push_back(str("TrustGroup"));
  v.push_back(str("ReplicaStorageLocation"));
  return c;
}

std::string_view alternative_name(const Scalar& v) {
  switch (v.index()) {
    case 0: return "a boolean";
    case 1: return "an unsigned integer";
    case 2: return "a signed integer";
    case 3: return "a real number";
    default: return "a string";
  }
}

std::string type_label(const PropertySchema& p) {
  std::string s(cim_type_name(p.type));
  if (p.is_array) s += "[]";
  return s;
}

Status check_datetime(const PropertySchema& p, const std::string& s) {
  auto point = parse_cim_datetime(s);
  if (point.ok()) return Status::OK();
  const bool interval_ok = is_cim_interval(s);
  switch (p.datetime_form) {
    case DateTimeForm::Point:
      if (interval_ok) return bad_type(p, preview(s) + " is an interval; a point in time is required");
      return bad_type(p, point.status().message());
    case DateTimeForm::PointOrInterval:
      if (interval_ok) return Status::OK();
      if (s.size() == 25 && s[21] == ':') return bad_type(p, parse_cim_interval(s).status().message());
      return bad_type(p, point.status().message());
    case DateTimeForm::TimeOfDay:
      // Date fields all zero: check the time and offset with a placeholder date.
      if (s.size() == 25 && s.compare(0, 8, "00000000") == 0) {
        auto t = parse_cim_datetime("19700101" + s.substr(8));
        if (t.ok()) return Status::OK();
        return bad_type(p, preview(s) + " is not a CIM time of day: " + t.status().message());
      }
      return bad_type(p, point.status().message());
  }
  return bad_type(p, point.status().message());
}

}  // namespace

bool names_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

Property PropertySchema::default_property() const {
  Property p{name, type, is_array, std::nullopt};
  if (default_value) p.values = std::vector<Scalar>{*default_value};
  return p;
}

const PropertySchema* ClassSchema::find(std::string_view property) const {
  for (const auto& p : properties)
    if (names_equal(p.name, property)) return &p;
  return nullptr;
}

const std::vector<ClassSchema>& class_schemas() {
  static const std::vector<ClassSchema> kSchemas = {
      replication_setting_data(),
      replication_service_setting_data(),
      replication_authorization_setting_data(),
  };
  return kSchemas;
}

Result<const ClassSchema*> find_class_schema(std::string_view class_name) {
  for (const auto& c : class_schemas())
    if (names_equal(c.name, class_name)) return &c;
  std::string known;
  for (const auto& c : class_schemas()) {
    if (!known.empty()) known += ", ";
    known += c.name;
  }
  return Status::InvalidParameter("unknown class " + preview(class_name) + " (known: " + known + ")");
}

Status check_value(const PropertySchema& p, const Scalar& value) {
  const std::string want = type_label(p);
  if (p.type == CimType::Boolean) {
    if (!std::holds_alternative<bool>(value))
      return bad_type(p, std::string(alternative_name(value)) + " is not a boolean");
    return Status::OK();
  }
  if (cim_type_is_unsigned(p.type)) {
    if (!std::holds_alternative<uint64_t>(value))
      return bad_type(p, std::string(alternative_name(value)) + " is not a " + want);
    const uint64_t v = std::get<uint64_t>(value);
    if (v > cim_type_max_unsigned(p.type))
      return bad_type(p, std::to_string(v) + " is out of range for " + want + " (0.." +
                             std::to_string(cim_type_max_unsigned(p.type)) + ")");
    return Status::OK();
  }
  if (cim_type_is_signed(p.type)) {
    if (!std::holds_alternative<int64_t>(value))
      return bad_type(p, std::string(alternative_name(value)) + " is not a " + want);
    const int64_t v = std::get<int64_t>(value);
    if (v < cim_type_min_signed(p.type) || v > cim_type_max_signed(p.type))
      return bad_type(p, std::to_string(v) + " is out of range for " + want);
    return Status::OK();
  }
  if (p.type == CimType::Real64) {
    if (!std::holds_alternative<double>(value))
      return bad_type(p, std::string(alternative_name(value)) + " is not a real64");
    if (!std::isfinite(std::get<double>(value))) return bad_type(p, "a real64 must be finite");
    return Status::OK();
  }
  // String, DateTime, Reference.
  if (!std::holds_alternative<std::string>(value))
    return bad_type(p, std::string(alternative_name(value)) + " is not a " + want);
  const std::string& s = std::get<std::string>(value);
  if (s.find('\0') != std::string::npos) return bad_value(p, "the value contains a NUL character");
  const std::size_t chars = settings_internal::utf8_length(s);
  if (chars == std::string::npos) return bad_value(p, "the value is not valid UTF-8");
  if (p.max_length != 0 && chars > p.max_length)
    return bad_value(p, "the value has " + std::to_string(chars) + " characters; the limit is " +
                            std::to_string(p.max_length) + " (string(" +
                            std::to_string(p.max_length) + "))");
  if (p.type == CimType::DateTime) return check_datetime(p, s);
  return Status::OK();
}

Status check_instance(const Instance& instance) {
  auto schema = find_class_schema(instance.class_name());
  if (!schema) return schema.status();
  const ClassSchema& c = **schema;
  const auto& props = instance.properties();
  for (std::size_t i = 0; i < props.size(); ++i) {
    const Property& p = props[i];
    const PropertySchema* ps = c.find(p.name);
    if (!ps) return Status::InvalidParameter(c.name + " has no property " + preview(p.name));
    for (std::size_t j = 0; j < i; ++j)
      if (names_equal(props[j].name, p.name))
        return Status::InvalidParameter(c.name + ": property " + ps->name + " appears twice");
    if (p.type != ps->type || p.is_array != ps->is_array) {
      std::string got(cim_type_name(p.type));
      if (p.is_array) got += "[]";
      return bad_type(*ps, "the instance says " + got + ", the class says " + type_label(*ps));
    }
    if (!p.values) continue;
    if (!p.is_array && p.values->size() != 1)
      return bad_type(*ps, "a scalar holds " + std::to_string(p.values->size()) + " values");
    if (p.values->size() > kMaxArrayElements)
      return bad_value(*ps, "more than " + std::to_string(kMaxArrayElements) + " elements");
    for (const Scalar& v : *p.values) VMREPL_RETURN_IF_ERROR(check_value(*ps, v));
  }
  return Status::OK();
}

}  // namespace vmrepl
