// ReplicationSettingData: the typed form of Msvm_ReplicationSettingData (spec §3), the settings
// of one replication relationship as CreateReplicationRelationship, ModifyReplicationSettings
// and ReverseReplicationRelationship receive them.
//
// Field names are the model's property names, so code reads like the scripts it mirrors.
// Properties with a default in the spec hold that default; the others are std::optional
// (nullopt = null). from_instance / to_instance convert to and from the generic Instance;
// validate() applies the model's rules and names the property and rule it breaks.
//
// Thread-safety: a value type; not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/instance.h"
#include "core/model/status.h"
#include "core/settings/schema.h"

namespace vmrepl {

struct ReplicationSettingData {
  static constexpr std::string_view kClassName = kReplicationSettingDataClass;

  // Identity (read-only: the server sets them).
  std::optional<std::string> InstanceID;  // Microsoft:<VM GUID>\HVR\0 (primary) or \1 (extended)
  std::optional<std::string> ElementName;  // VM display name
  std::optional<std::string> VirtualSystemIdentifier;  // VM GUID
  std::string VirtualSystemType = "Microsoft:Hyper-V:Replica";

  std::optional<uint16_t> AuthenticationType;  // 1 Kerberos, 2 certificate
  std::optional<std::string> CertificateThumbPrint;  // string(128); required for type 2
  std::optional<std::string> RootCertificateThumbPrint;  // read-only
  std::optional<bool> CompressionEnabled;
  std::optional<bool> BypassProxyServer;
  std::optional<std::string> RecoveryConnectionPoint;  // string(256): the recovery server
  std::optional<std::string> RecoveryHostSystem;       // read-only
  std::optional<std::string> PrimaryConnectionPoint;   // read-only
  std::optional<std::string> PrimaryHostSystem;        // read-only
  uint16_t RecoveryServerPortNumber = 0;  // must be set: 0 is refused
  bool ReplicateHostKvpItems = true;
  std::optional<uint16_t> ApplicationConsistentSnapshotInterval;  // hours, 0 = disabled
  uint16_t RecoveryHistory = 0;  // extra recovery points, 0-24
  std::optional<std::vector<std::string>> IncludedDisks;  // object paths or InstanceIDs
  bool AutoResynchronizeEnabled = false;
  std::string AutoResynchronizeIntervalStart = "00000000183000.000000:000";  // interval
  std::string AutoResynchronizeIntervalEnd = "00000000060000.000000:000";    // interval
  std::optional<bool> EnableWriteOrderPreservationAcrossDisks;
  uint16_t ReplicationInterval = 300;  // seconds: 30, 300 or 900
  std::optional<std::string> ReplicationProvider;
  std::optional<std::string> AdditionalSettings;

  // The instance must be of this class and pass check_instance (else its status); absent and
  // null properties take the defaults above. Caption, Description and the inherited unused
  // members (schema.h) have no field and are not kept.
  static Result<ReplicationSettingData> from_instance(const Instance& instance);
  // Every field, in the schema's order, nullopt as null.
  Instance to_instance() const;
  // InvalidParameter (32773) naming the first property that breaks a rule of spec §3.
  Status validate() const;
  // decode_instance(text, kClassName) + from_instance + validate.
  static Result<ReplicationSettingData> parse(std::string_view text);

  bool operator==(const ReplicationSettingData&) const = default;
};

}  // namespace vmrepl
