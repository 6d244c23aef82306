#include "settings/fixtures_helper.h"

#include <stdexcept>

namespace vmrepl::test {

const std::string_view kSpecExample =
    R"xml(<INSTANCE CLASSNAME="Msvm_ReplicationSettingData">
<PROPERTY NAME="InstanceID" TYPE="string"><VALUE>Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\HVR\0</VALUE></PROPERTY>
<PROPERTY NAME="VirtualSystemIdentifier" TYPE="string"><VALUE>3F2504E0-4F89-11D3-9A0C-0305E82C3301</VALUE></PROPERTY>
<PROPERTY NAME="AuthenticationType" TYPE="uint16"><VALUE>1</VALUE></PROPERTY>
<PROPERTY NAME="CertificateThumbPrint" TYPE="string"></PROPERTY>
<PROPERTY NAME="CompressionEnabled" TYPE="boolean"><VALUE>TRUE</VALUE></PROPERTY>
<PROPERTY NAME="PrimaryConnectionPoint" TYPE="string"><VALUE>hv-a.contoso.com</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryConnectionPoint" TYPE="string"><VALUE>hv-b.contoso.com</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryServerPortNumber" TYPE="uint16"><VALUE>80</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryHistory" TYPE="uint16"><VALUE>24</VALUE></PROPERTY>
<PROPERTY NAME="ApplicationConsistentSnapshotInterval" TYPE="uint16"><VALUE>4</VALUE></PROPERTY>
<PROPERTY NAME="ReplicationInterval" TYPE="uint16"><VALUE>300</VALUE></PROPERTY>
<PROPERTY.ARRAY NAME="IncludedDisks" TYPE="string"><VALUE.ARRAY><VALUE>\\HV-A\root\virtualization\v2:Msvm_StorageAllocationSettingData.InstanceID="Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D"</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>
<PROPERTY NAME="AutoResynchronizeIntervalStart" TYPE="datetime"><VALUE>00000000183000.000000:000</VALUE></PROPERTY>
</INSTANCE>)xml";

const std::string_view kSpecExampleDisk =
    R"(\\HV-A\root\virtualization\v2:Msvm_StorageAllocationSettingData.InstanceID="Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D")";

const std::string_view kFetchedInstance =
    "<?xml version=\"1.0\"?>\r\n"
    "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">\r\n"
    "  <PROPERTY NAME=\"__PATH\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>\\\\HV-B\\root\\virtualization\\v2:"
    "Msvm_ReplicationSettingData.InstanceID=\"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\\\HVR\\\\0\"</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__NAMESPACE\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>root\\virtualization\\v2</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__SERVER\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>HV-B</VALUE></PROPERTY>\r\n"
    "  <PROPERTY.ARRAY NAME=\"__DERIVATION\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE.ARRAY>"
    "<VALUE>CIM_VirtualSystemSettingData</VALUE><VALUE>CIM_SettingData</VALUE><VALUE>CIM_ManagedElement</VALUE>"
    "</VALUE.ARRAY></PROPERTY.ARRAY>\r\n"
    "  <PROPERTY NAME=\"__PROPERTY_COUNT\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"sint32\"><VALUE>43</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__RELPATH\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>Msvm_ReplicationSettingData."
    "InstanceID=\"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\\\HVR\\\\0\"</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__DYNASTY\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>CIM_ManagedElement</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__SUPERCLASS\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>CIM_VirtualSystemSettingData</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__CLASS\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"string\"><VALUE>Msvm_ReplicationSettingData</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"__GENUS\" CLASSORIGIN=\"___SYSTEM\" TYPE=\"sint32\"><VALUE>2</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AdditionalSettings\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"ApplicationConsistentSnapshotInterval\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"uint16\"><VALUE>0</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AuthenticationType\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"uint16\"><VALUE>1</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AutomaticRecoveryAction\" CLASSORIGIN=\"CIM_VirtualSystemSettingData\" PROPAGATED=\"true\" TYPE=\"uint16\"></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AutoResynchronizeEnabled\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"boolean\"><VALUE>FALSE</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AutoResynchronizeIntervalEnd\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"datetime\"><VALUE>00000000060000.000000:000</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"AutoResynchronizeIntervalStart\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"datetime\"><VALUE>00000000183000.000000:000</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"BypassProxyServer\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"boolean\"><VALUE>false</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"Caption\" CLASSORIGIN=\"CIM_ManagedElement\" PROPAGATED=\"true\" TYPE=\"string\"><VALUE>Replication Settings</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"CertificateThumbPrint\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE></VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"CompressionEnabled\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"boolean\"><VALUE>True</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"CreationTime\" CLASSORIGIN=\"CIM_VirtualSystemSettingData\" PROPAGATED=\"true\" TYPE=\"datetime\"><VALUE>20260925101500.000000+000</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"ElementName\" CLASSORIGIN=\"CIM_ManagedElement\" PROPAGATED=\"true\" TYPE=\"string\"><VALUE>web01</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"EnableWriteOrderPreservationAcrossDisks\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"boolean\"><VALUE>TRUE</VALUE></PROPERTY>\r\n"
    "  <PROPERTY.ARRAY NAME=\"IncludedDisks\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE.ARRAY>\r\n"
    "    <VALUE>Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D</VALUE>\r\n"
    "    <VALUE><![CDATA[Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\1\\D]]></VALUE>\r\n"
    "  </VALUE.ARRAY></PROPERTY.ARRAY>\r\n"
    "  <PROPERTY NAME=\"InstanceID\" CLASSORIGIN=\"CIM_ManagedElement\" PROPAGATED=\"true\" TYPE=\"string\">"
    "<QUALIFIER NAME=\"key\" TYPE=\"boolean\" PROPAGATED=\"true\" OVERRIDABLE=\"false\"><VALUE>TRUE</VALUE></QUALIFIER>"
    "<VALUE>Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0</VALUE></PROPERTY>\r\n"
    "  <PROPERTY.ARRAY NAME=\"Notes\" CLASSORIGIN=\"CIM_VirtualSystemSettingData\" PROPAGATED=\"true\" TYPE=\"string\"></PROPERTY.ARRAY>\r\n"
    "  <PROPERTY NAME=\"PrimaryConnectionPoint\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE>hv-a.contoso.com</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"PrimaryHostSystem\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE>HV-A.contoso.com</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"RecoveryConnectionPoint\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE>hv-b.contoso.com</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"RecoveryHistory\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"uint16\"><VALUE> 0 </VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"RecoveryHostSystem\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"><VALUE>HV-B.contoso.com</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"RecoveryServerPortNumber\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"uint16\"><VALUE>80</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"ReplicateHostKvpItems\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"boolean\"><VALUE>TRUE</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"ReplicationInterval\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"uint16\"><VALUE>300</VALUE></PROPERTY>\r\n"
    "  <PROPERTY.REFERENCE NAME=\"ReplicationProvider\" CLASSORIGIN=\"Msvm_ReplicationSettingData\"><VALUE.REFERENCE>"
    "<INSTANCEPATH><NAMESPACEPATH><HOST>HV-B</HOST><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"virtualization\"/>"
    "<NAMESPACE NAME=\"v2\"/></LOCALNAMESPACEPATH></NAMESPACEPATH><INSTANCENAME CLASSNAME=\"Msvm_ReplicationProvider\">"
    "<KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">22391CDC-272C-4DDF-BA88-9BEFB1A0975C</KEYVALUE></KEYBINDING>"
    "</INSTANCENAME></INSTANCEPATH></VALUE.REFERENCE></PROPERTY.REFERENCE>\r\n"
    "  <PROPERTY NAME=\"RootCertificateThumbPrint\" CLASSORIGIN=\"Msvm_ReplicationSettingData\" TYPE=\"string\"></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"VirtualSystemIdentifier\" CLASSORIGIN=\"CIM_VirtualSystemSettingData\" PROPAGATED=\"true\" TYPE=\"string\"><VALUE>3F2504E0-4F89-11D3-9A0C-0305E82C3301</VALUE></PROPERTY>\r\n"
    "  <PROPERTY NAME=\"VirtualSystemType\" CLASSORIGIN=\"CIM_VirtualSystemSettingData\" PROPAGATED=\"true\" TYPE=\"string\"><VALUE>Microsoft:Hyper-V:Replica</VALUE></PROPERTY>\r\n"
    "</INSTANCE>\r\n";

const std::string kAwkward =
    " <a & b> \"q\" 'x' \\\\H\\v \t\n\r\n\x01 \xC3\xA9\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x8E\x89 ]]> ";

Instance full_replication_setting_data() {
  Instance i{std::string(kReplicationSettingDataClass)};
  i.set_string("InstanceID", "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0");
  i.set_string("Caption", "Replication Settings");
  i.set_string("Description", kAwkward);
  i.set_string("ElementName", " web01 ");
  i.set_string("VirtualSystemIdentifier", "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  i.set_string("VirtualSystemType", "Microsoft:Hyper-V:Replica");
  i.set_u16("AuthenticationType", 2);
  i.set_string("CertificateThumbPrint", "A909502DD82AE41433E6F83886B00D4277A32A7B");
  i.set_string("RootCertificateThumbPrint",
               "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
  i.set_bool("CompressionEnabled", true);
  i.set_bool("BypassProxyServer", false);
  i.set_string("RecoveryConnectionPoint", "hv-b.contoso.com");
  i.set_string("RecoveryHostSystem", "HV-B.contoso.com");
  i.set_string("PrimaryConnectionPoint", "hv-a.contoso.com");
  i.set_string("PrimaryHostSystem", "HV-A.contoso.com");
  i.set_u16("RecoveryServerPortNumber", 65535);
  i.set_bool("ReplicateHostKvpItems", false);
  i.set_u16("ApplicationConsistentSnapshotInterval", 12);
  i.set_u16("RecoveryHistory", 24);
  i.set_string_array("IncludedDisks", {std::string(kSpecExampleDisk), "disk <1> & \"2\"", "Microsoft:X\\0\\0\\D"});
  i.set_bool("AutoResynchronizeEnabled", true);
  i.set_datetime("AutoResynchronizeIntervalStart", "00000000200000.000000:000");
  i.set_datetime("AutoResynchronizeIntervalEnd", "00000000050000.000000:000");
  i.set_bool("EnableWriteOrderPreservationAcrossDisks", true);
  i.set_u16("ReplicationInterval", 30);
  i.set_string("ReplicationProvider",
               "\\\\HV-B\\root\\virtualization\\v2:Msvm_ReplicationProvider.Name=\"22391CDC-272C-4DDF-BA88-9BEFB1A0975C\"");
  i.set_string("AdditionalSettings", "");
  i.set_u16("AutomaticRecoveryAction", 3);
  i.set_u16("AutomaticShutdownAction", 4);
  i.set_u16("AutomaticStartupAction", 2);
  i.set_datetime("AutomaticStartupActionDelay", "00000000000120.000000:000");
  i.set_u16("AutomaticStartupActionSequenceNumber", 0);
  i.set_string("ConfigurationDataRoot", "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V");
  i.set_null("ConfigurationFile", CimType::String);
  i.set_string("ConfigurationID", "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  i.set_datetime("CreationTime", "20260925101500.123456+060");
  i.set_null("LogDataRoot", CimType::String);
  i.set_string_array("Notes", {});
  i.set_null("RecoveryFile", CimType::String);
  i.set_string("SnapshotDataRoot", "");
  i.set_string("SuspendDataRoot", "   ");
  i.set_null("SwapFileDataRoot", CimType::String);
  return i;
}

Instance full_service_setting_data() {
  Instance i{std::string(kReplicationServiceSettingDataClass)};
  i.set_string("InstanceID", "Microsoft:ReplicationServiceSettingData");
  i.set_string("Caption", "Replication service settings");
  i.set_null("Description", CimType::String);
  i.set_string("ElementName", "Hyper-V Replica");
  i.set_bool("RecoveryServerEnabled", true);
  i.set_u16("AllowedAuthenticationType", 3);
  i.set_string("CertificateThumbPrint", "a909502dd82ae41433e6f83886b00d4277a32a7b");
  i.set_u16("HttpPort", 8080);
  i.set_u16("HttpsPort", 8443);
  i.set_u32("MonitoringInterval", 604800);
  i.set_datetime("MonitoringStartTime", "00000000063000.000000-480");
  return i;
}

Instance full_authorization_setting_data() {
  Instance i{std::string(kReplicationAuthorizationSettingDataClass)};
  i.set_null("InstanceID", CimType::String);
  i.set_string("Caption", "Authorization entry");
  i.set_string("Description", kAwkward);
  i.set_string("ElementName", "contoso primaries");
  i.set_string("AllowedPrimaryHostSystem", "*.contoso.com");
  i.set_string("TrustGroup", "DEFAULT");
  i.set_string("ReplicaStorageLocation", "/srv/replicas/a b/\xC3\xA9");
  return i;
}

Instance full_instance(std::string_view class_name) {
  if (class_name == kReplicationSettingDataClass) return full_replication_setting_data();
  if (class_name == kReplicationServiceSettingDataClass) return full_service_setting_data();
  if (class_name == kReplicationAuthorizationSettingDataClass) return full_authorization_setting_data();
  throw std::invalid_argument("no full instance for " + std::string(class_name));
}

Property sample_property(const PropertySchema& p) {
  Scalar v;
  if (p.type == CimType::Boolean) {
    v = true;
  } else if (cim_type_is_unsigned(p.type)) {
    v = cim_type_max_unsigned(p.type);
  } else if (cim_type_is_signed(p.type)) {
    v = cim_type_min_signed(p.type);
  } else if (p.type == CimType::Real64) {
    v = 0.1;
  } else if (p.type == CimType::DateTime) {
    switch (p.datetime_form) {
      case DateTimeForm::Point: v = std::string("20260925101500.123456+060"); break;
      case DateTimeForm::PointOrInterval: v = std::string("00000001183000.000000:000"); break;
      case DateTimeForm::TimeOfDay: v = std::string("00000000063000.000000-480"); break;
    }
  } else {
    v = kAwkward;
  }
  std::vector<Scalar> values{v};
  if (p.is_array) values.push_back(cim_type_is_text(p.type) ? Scalar{std::string()} : v);
  return Property{p.name, p.type, p.is_array, std::move(values)};
}

}  // namespace vmrepl::test
