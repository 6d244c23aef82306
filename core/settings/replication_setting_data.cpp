#include "core/settings/replication_setting_data.h"

#include "core/model/cim_datetime.h"
#include "core/settings/decode.h"
#include "core/settings/setting_fields.h"
#include "core/settings/text_limits.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

std::optional<uint16_t> opt_u16(const Instance& in, std::string_view name) {
  auto v = field_uint(in, name);
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);  // check_instance bounded it to uint16
}

Status invalid(std::string message) { return Status::InvalidParameter(std::move(message)); }

Status check_interval(std::string_view name, const std::string& v) {
  if (is_cim_interval(v)) return Status::OK();
  return invalid(std::string(name) + " must be a CIM interval ddddddddHHMMSS.mmmmmm:000 (got " + preview(v) + ")");
}

}  // namespace

Result<ReplicationSettingData> ReplicationSettingData::from_instance(const Instance& in) {
  VMREPL_RETURN_IF_ERROR(check_typed_instance(in, kClassName));
  ReplicationSettingData s;
  s.InstanceID = field_string(in, "InstanceID");
  s.ElementName = field_string(in, "ElementName");
  s.VirtualSystemIdentifier = field_string(in, "VirtualSystemIdentifier");
  if (auto v = field_string(in, "VirtualSystemType")) s.VirtualSystemType = *v;
  s.AuthenticationType = opt_u16(in, "AuthenticationType");
  s.CertificateThumbPrint = field_string(in, "CertificateThumbPrint");
  s.RootCertificateThumbPrint = field_string(in, "RootCertificateThumbPrint");
  s.CompressionEnabled = field_bool(in, "CompressionEnabled");
  s.BypassProxyServer = field_bool(in, "BypassProxyServer");
  s.RecoveryConnectionPoint = field_string(in, "RecoveryConnectionPoint");
  s.RecoveryHostSystem = field_string(in, "RecoveryHostSystem");
  s.PrimaryConnectionPoint = field_string(in, "PrimaryConnectionPoint");
  s.PrimaryHostSystem = field_string(in, "PrimaryHostSystem");
  if (auto v = opt_u16(in, "RecoveryServerPortNumber")) s.RecoveryServerPortNumber = *v;
  if (auto v = field_bool(in, "ReplicateHostKvpItems")) s.ReplicateHostKvpItems = *v;
  s.ApplicationConsistentSnapshotInterval = opt_u16(in, "ApplicationConsistentSnapshotInterval");
  if (auto v = opt_u16(in, "RecoveryHistory")) s.RecoveryHistory = *v;
  s.IncludedDisks = field_strings(in, "IncludedDisks");
  if (auto v = field_bool(in, "AutoResynchronizeEnabled")) s.AutoResynchronizeEnabled = *v;
  if (auto v = field_string(in, "AutoResynchronizeIntervalStart")) s.AutoResynchronizeIntervalStart = *v;
  if (auto v = field_string(in, "AutoResynchronizeIntervalEnd")) s.AutoResynchronizeIntervalEnd = *v;
  s.EnableWriteOrderPreservationAcrossDisks = field_bool(in, "EnableWriteOrderPreservationAcrossDisks");
  if (auto v = opt_u16(in, "ReplicationInterval")) s.ReplicationInterval = *v;
  s.ReplicationProvider = field_string(in, "ReplicationProvider");
  s.AdditionalSettings = field_string(in, "AdditionalSettings");
  return s;
}

Instance ReplicationSettingData::to_instance() const {
  const ClassSchema& c = schema_of(kClassName);
  Instance out(c.name);
  put_string(out, c, "InstanceID", InstanceID);
  put_string(out, c, "ElementName", ElementName);
  put_string(out, c, "VirtualSystemIdentifier", VirtualSystemIdentifier);
  put_string(out, c, "VirtualSystemType", VirtualSystemType);
  put_uint(out, c, "AuthenticationType", AuthenticationType);
  put_string(out, c, "CertificateThumbPrint", CertificateThumbPrint);
  put_string(out, c, "RootCertificateThumbPrint", RootCertificateThumbPrint);
  put_bool(out, c, "CompressionEnabled", CompressionEnabled);
  put_bool(out, c, "BypassProxyServer", BypassProxyServer);
  put_string(out, c, "RecoveryConnectionPoint", RecoveryConnectionPoint);
  put_string(out, c, "RecoveryHostSystem", RecoveryHostSystem);
  put_string(out, c, "PrimaryConnectionPoint", PrimaryConnectionPoint);
  put_string(out, c, "PrimaryHostSystem", PrimaryHostSystem);
  put_uint(out, c, "RecoveryServerPortNumber", RecoveryServerPortNumber);
  put_bool(out, c, "ReplicateHostKvpItems", ReplicateHostKvpItems);
  put_uint(out, c, "ApplicationConsistentSnapshotInterval", ApplicationConsistentSnapshotInterval);
  put_uint(out, c, "RecoveryHistory", RecoveryHistory);
  put_strings(out, c, "IncludedDisks", IncludedDisks);
  put_bool(out, c, "AutoResynchronizeEnabled", AutoResynchronizeEnabled);
  put_string(out, c, "AutoResynchronizeIntervalStart", AutoResynchronizeIntervalStart);
  put_string(out, c, "AutoResynchronizeIntervalEnd", AutoResynchronizeIntervalEnd);
  put_bool(out, c, "EnableWriteOrderPreservationAcrossDisks", EnableWriteOrderPreservationAcrossDisks);
  put_uint(out, c, "ReplicationInterval", ReplicationInterval);
  put_string(out, c, "ReplicationProvider", ReplicationProvider);
  put_string(out, c, "AdditionalSettings", AdditionalSettings);
  return out;
}

Status ReplicationSettingData::validate() const {
  if (!AuthenticationType)
    return invalid("AuthenticationType is required: 1 (Kerberos) or 2 (certificate)");
  if (*AuthenticationType != 1 && *AuthenticationType != 2)
    return invalid("AuthenticationType must be 1 (Kerberos) or 2 (certificate) (got " +
                   std::to_string(*AuthenticationType) + ")");
  if (*AuthenticationType == 2 && (!CertificateThumbPrint || CertificateThumbPrint->empty()))
    return invalid("CertificateThumbPrint is required when AuthenticationType is 2 (certificate)");
  VMREPL_RETURN_IF_ERROR(check_thumbprint("CertificateThumbPrint", CertificateThumbPrint));
  VMREPL_RETURN_IF_ERROR(check_thumbprint("RootCertificateThumbPrint", RootCertificateThumbPrint));
  VMREPL_RETURN_IF_ERROR(check_connection_point("RecoveryConnectionPoint", RecoveryConnectionPoint, true));
  VMREPL_RETURN_IF_ERROR(check_connection_point("RecoveryHostSystem", RecoveryHostSystem, false));
  VMREPL_RETURN_IF_ERROR(check_connection_point("PrimaryConnectionPoint", PrimaryConnectionPoint, false));
  VMREPL_RETURN_IF_ERROR(check_connection_point("PrimaryHostSystem", PrimaryHostSystem, false));
  if (RecoveryServerPortNumber == 0)
    return invalid("RecoveryServerPortNumber must not be 0 (the recovery server's listener port)");
  if (ReplicationInterval != 30 && ReplicationInterval != 300 && ReplicationInterval != 900)
    return invalid("ReplicationInterval must be 30, 300 or 900 seconds (got " +
                   std::to_string(ReplicationInterval) + ")");
  if (RecoveryHistory > 24)
    return invalid("RecoveryHistory must be 0 to 24 (got " + std::to_string(RecoveryHistory) + ")");
  if (ApplicationConsistentSnapshotInterval) {
    const uint16_t vss = *ApplicationConsistentSnapshotInterval;
    if (vss > 12)
      return invalid("ApplicationConsistentSnapshotInterval must be 0 to 12 hours (got " +
                     std::to_string(vss) + ")");
    if (vss > 0 && RecoveryHistory == 0)
      return invalid("ApplicationConsistentSnapshotInterval must be 0 when RecoveryHistory is 0 (got " +
                     std::to_string(vss) + ")");
  }
  VMREPL_RETURN_IF_ERROR(check_interval("AutoResynchronizeIntervalStart", AutoResynchronizeIntervalStart));
  VMREPL_RETURN_IF_ERROR(check_interval("AutoResynchronizeIntervalEnd", AutoResynchronizeIntervalEnd));
  if (IncludedDisks) {
    if (IncludedDisks->size() > kMaxArrayElements)
      return invalid("IncludedDisks must have at most " + std::to_string(kMaxArrayElements) + " disks");
    for (std::size_t i = 0; i < IncludedDisks->size(); ++i)
      if ((*IncludedDisks)[i].empty())
        return invalid("IncludedDisks[" + std::to_string(i) + "] must not be empty");
  }
  // What the rules above do not cover (UTF-8, NUL, string(N) of the other strings) the schema
  // check does; the datetime fields were checked above, so its codes here are all 32773.
  return check_instance(to_instance());
}

Result<ReplicationSettingData> ReplicationSettingData::parse(std::string_view text) {
  auto inst = decode_instance(text, kClassName);
  if (!inst) return inst.status();
  auto s = from_instance(*inst);
  if (!s) return s.status();
  VMREPL_RETURN_IF_ERROR(s->validate());
  return s;
}

}  // namespace vmrepl
