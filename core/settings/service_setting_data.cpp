#include "core/settings/service_setting_data.h"

#include "core/model/cim_datetime.h"
#include "core/settings/decode.h"
#include "core/settings/setting_fields.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

Status invalid(std::string message) { return Status::InvalidParameter(std::move(message)); }

// 00000000HHMMSS.mmmmmmsUUU with a valid time and offset.
bool is_time_of_day(const std::string& v) {
  return v.size() == 25 && v.compare(0, 8, "00000000") == 0 &&
         is_cim_datetime("19700101" + v.substr(8));
}

}  // namespace

Result<ReplicationServiceSettingData> ReplicationServiceSettingData::from_instance(const Instance& in) {
  VMREPL_RETURN_IF_ERROR(check_typed_instance(in, kClassName));
  ReplicationServiceSettingData s;
  s.InstanceID = field_string(in, "InstanceID");
  s.ElementName = field_string(in, "ElementName");
  if (auto v = field_bool(in, "RecoveryServerEnabled")) s.RecoveryServerEnabled = *v;
  if (auto v = field_uint(in, "AllowedAuthenticationType")) s.AllowedAuthenticationType = static_cast<uint16_t>(*v);
  s.CertificateThumbPrint = field_string(in, "CertificateThumbPrint");
  if (auto v = field_uint(in, "HttpPort")) s.HttpPort = static_cast<uint16_t>(*v);
  if (auto v = field_uint(in, "HttpsPort")) s.HttpsPort = static_cast<uint16_t>(*v);
  if (auto v = field_uint(in, "MonitoringInterval")) s.MonitoringInterval = static_cast<uint32_t>(*v);
  if (auto v = field_string(in, "MonitoringStartTime")) s.MonitoringStartTime = *v;
  return s;
}

Instance ReplicationServiceSettingData::to_instance() const {
  const ClassSchema& c = schema_of(kClassName);
  Instance out(c.name);
  put_string(out, c, "InstanceID", InstanceID);
  put_string(out, c, "ElementName", ElementName);
  put_bool(out, c, "RecoveryServerEnabled", RecoveryServerEnabled);
  put_uint(out, c, "AllowedAuthenticationType", AllowedAuthenticationType);
  put_string(out, c, "CertificateThumbPrint", CertificateThumbPrint);
  put_uint(out, c, "HttpPort", HttpPort);
  put_uint(out, c, "HttpsPort", HttpsPort);
  put_uint(out, c, "MonitoringInterval", MonitoringInterval);
  put_string(out, c, "MonitoringStartTime", MonitoringStartTime);
  return out;
}

Status ReplicationServiceSettingData::validate() const {
  if (AllowedAuthenticationType > 3)
    return invalid("AllowedAuthenticationType must be 0 to 3 (0 undefined, 1 Kerberos, 2 certificate, "
                   "3 both) (got " + std::to_string(AllowedAuthenticationType) + ")");
  const bool needs_certificate = AllowedAuthenticationType == 2 || AllowedAuthenticationType == 3;
  if (RecoveryServerEnabled && needs_certificate && (!CertificateThumbPrint || CertificateThumbPrint->empty()))
    return invalid("CertificateThumbPrint is required when RecoveryServerEnabled is TRUE and "
                   "AllowedAuthenticationType is " + std::to_string(AllowedAuthenticationType));
  VMREPL_RETURN_IF_ERROR(check_thumbprint("CertificateThumbPrint", CertificateThumbPrint));
  if (HttpPort == 0) return invalid("HttpPort must not be 0 (the Kerberos listener port)");
  if (HttpsPort == 0) return invalid("HttpsPort must not be 0 (the certificate listener port)");
  if (MonitoringInterval < 3600 || MonitoringInterval > 604800)
    return invalid("MonitoringInterval must be 3600 to 604800 seconds (got " +
                   std::to_string(MonitoringInterval) + ")");
  if (!is_time_of_day(MonitoringStartTime))
    return invalid("MonitoringStartTime must be a time of day 00000000HHMMSS.mmmmmmsUUU with zero date "
                   "fields (got " + preview(MonitoringStartTime) + ")");
  return check_instance(to_instance());
}

Result<ReplicationServiceSettingData> ReplicationServiceSettingData::parse(std::string_view text) {
  auto inst = decode_instance(text, kClassName);
  if (!inst) return inst.status();
  auto s = from_instance(*inst);
  if (!s) return s.status();
  VMREPL_RETURN_IF_ERROR(s->validate());
  return s;
}

}  // namespace vmrepl
