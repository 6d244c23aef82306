// ReplicationServiceSettingData: the typed form of Msvm_ReplicationServiceSettingData (spec §4),
// one host's replica-server settings as ModifyServiceSettings receives them.
//
// Field names are the model's property names; every property has a spec default except the
// identity strings and CertificateThumbPrint (std::optional, nullopt = null).
//
// Thread-safety: a value type; not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/schema.h"

namespace vmrepl {

struct ReplicationServiceSettingData {
  static constexpr std::string_view kClassName = kReplicationServiceSettingDataClass;

  std::optional<std::string> InstanceID;
  std::optional<std::string> ElementName;
  bool RecoveryServerEnabled = false;     // this host accepts replication
  uint16_t AllowedAuthenticationType = 0;  // 0 undefined, 1 Kerberos, 2 certificate, 3 both
  std::optional<std::string> CertificateThumbPrint;  // listener certificate, for types 2 and 3
  uint16_t HttpPort = 80;    // Kerberos listener
  uint16_t HttpsPort = 443;  // certificate listener
  uint32_t MonitoringInterval = 43200;  // seconds, 3600-604800
  // A time of day with zero date fields; 09:00 UTC by default.
  std::string MonitoringStartTime = "00000000090000.000000+000";

  // The instance must be of this class and pass check_instance; absent and null properties
  // take the defaults above.
  static Result<ReplicationServiceSettingData> from_instance(const Instance& instance);
  // Every field, in the schema's order, nullopt as null.
  Instance to_instance() const;
  // InvalidParameter (32773) naming the first property that breaks a rule of spec §4.
  Status validate() const;
  // decode_instance(text, kClassName) + from_instance + validate.
  static Result<ReplicationServiceSettingData> parse(std::string_view text);

  bool operator==(const ReplicationServiceSettingData&) const = default;
};

}  // namespace vmrepl
