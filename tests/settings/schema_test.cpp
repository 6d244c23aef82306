// The class schemas: the properties, types, defaults and limits of spec §3 and §4, and the
// value and instance checks the codecs and typed classes rely on.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/settings/schema.h"
#include "core/settings/text_limits.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

struct Expect {
  const char* name;
  CimType type;
  bool is_array;
  bool read_only;
  uint32_t max_length;
};

const ClassSchema& schema(std::string_view name) {
  auto s = find_class_schema(name);
  BOOST_REQUIRE(s.ok());
  return **s;
}

void check_property(const ClassSchema& c, const Expect& e) {
  BOOST_TEST_CONTEXT(c.name << "." << e.name) {
    const PropertySchema* p = c.find(e.name);
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST(p->name == e.name);
    BOOST_TEST(static_cast<int>(p->type) == static_cast<int>(e.type));
    BOOST_TEST(p->is_array == e.is_array);
    BOOST_TEST(p->read_only == e.read_only);
    BOOST_TEST(p->max_length == e.max_length);
  }
}

std::optional<Scalar> default_of(const ClassSchema& c, std::string_view name) {
  const PropertySchema* p = c.find(name);
  BOOST_REQUIRE(p != nullptr);
  return p->default_value;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schema_tests)

BOOST_AUTO_TEST_CASE(registry_holds_the_three_setting_classes_in_order) {
  const auto& all = class_schemas();
  BOOST_REQUIRE_EQUAL(all.size(), 3u);
  BOOST_TEST(all[0].name == "Msvm_ReplicationSettingData");
  BOOST_TEST(all[0].superclass == "CIM_VirtualSystemSettingData");
  BOOST_TEST(all[1].name == "Msvm_ReplicationServiceSettingData");
  BOOST_TEST(all[1].superclass == "CIM_SettingData");
  BOOST_TEST(all[2].name == "Msvm_ReplicationAuthorizationSettingData");
  BOOST_TEST(all[2].superclass == "CIM_SettingData");
}

BOOST_AUTO_TEST_CASE(class_lookup_is_case_insensitive) {
  auto s = find_class_schema("msvm_replicationsettingdata");
  BOOST_REQUIRE(s.ok());
  BOOST_TEST((*s)->name == "Msvm_ReplicationSettingData");
  BOOST_TEST((*s)->find("replicationinterval")->name == "ReplicationInterval");
  BOOST_TEST((*s)->find("NoSuchProperty") == nullptr);
}

BOOST_AUTO_TEST_CASE(unknown_class_is_invalid_parameter_naming_it) {
  auto s = find_class_schema("Msvm_ConcreteJob");
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.status().number() == 32773u);
  BOOST_TEST(s.status().message().find("unknown class 'Msvm_ConcreteJob'") != std::string::npos);
  BOOST_TEST(s.status().message().find("Msvm_ReplicationSettingData") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(replication_setting_data_has_every_property_of_section_3) {
  const ClassSchema& c = schema(kReplicationSettingDataClass);
  const Expect expected[] = {
      {"AuthenticationType", CimType::UInt16, false, false, 0},
      {"CertificateThumbPrint", CimType::String, false, false, 128},
      {"RootCertificateThumbPrint", CimType::String, false, true, 128},
      {"CompressionEnabled", CimType::Boolean, false, false, 0},
      {"BypassProxyServer", CimType::Boolean, false, false, 0},
      {"RecoveryConnectionPoint", CimType::String, false, false, 256},
      {"RecoveryHostSystem", CimType::String, false, true, 256},
      {"PrimaryConnectionPoint", CimType::String, false, true, 256},
      {"PrimaryHostSystem", CimType::String, false, true, 256},
      {"RecoveryServerPortNumber", CimType::UInt16, false, false, 0},
      {"ReplicateHostKvpItems", CimType::Boolean, false, false, 0},
      {"ApplicationConsistentSnapshotInterval", CimType::UInt16, false, false, 0},
      {"RecoveryHistory", CimType::UInt16, false, false, 0},
      {"IncludedDisks", CimType::String, true, false, 0},
      {"AutoResynchronizeEnabled", CimType::Boolean, false, false, 0},
      {"AutoResynchronizeIntervalStart", CimType::DateTime, false, false, 0},
      {"AutoResynchronizeIntervalEnd", CimType::DateTime, false, false, 0},
      {"EnableWriteOrderPreservationAcrossDisks", CimType::Boolean, false, false, 0},
      {"ReplicationInterval", CimType::UInt16, false, false, 0},
      {"ReplicationProvider", CimType::String, false, false, 0},
      {"AdditionalSettings", CimType::String, false, false, 0},
      {"ElementName", CimType::String, false, true, 0},
      {"VirtualSystemIdentifier", CimType::String, false, true, 0},
      {"InstanceID", CimType::String, false, true, 0},
      {"VirtualSystemType", CimType::String, false, true, 0},
      {"Caption", CimType::String, false, false, 64},
      {"Description", CimType::String, false, false, 0},
      {"Notes", CimType::String, true, false, 0},
      {"CreationTime", CimType::DateTime, false, false, 0},
  };
  for (const auto& e : expected) check_property(c, e);
  BOOST_TEST(c.properties.size() == 42u);
  BOOST_TEST(c.find("Notes")->unused);
  BOOST_TEST(!c.find("ReplicationInterval")->unused);
}

BOOST_AUTO_TEST_CASE(replication_setting_data_defaults_follow_the_spec) {
  const ClassSchema& c = schema(kReplicationSettingDataClass);
  BOOST_TEST((default_of(c, "RecoveryServerPortNumber") == Scalar{uint64_t{0}}));
  BOOST_TEST((default_of(c, "ReplicateHostKvpItems") == Scalar{true}));
  BOOST_TEST((default_of(c, "RecoveryHistory") == Scalar{uint64_t{0}}));
  BOOST_TEST((default_of(c, "AutoResynchronizeEnabled") == Scalar{false}));
  BOOST_TEST((default_of(c, "AutoResynchronizeIntervalStart") == Scalar{std::string("00000000183000.000000:000")}));
  BOOST_TEST((default_of(c, "AutoResynchronizeIntervalEnd") == Scalar{std::string("00000000060000.000000:000")}));
  BOOST_TEST((default_of(c, "ReplicationInterval") == Scalar{uint64_t{300}}));
  BOOST_TEST((default_of(c, "VirtualSystemType") == Scalar{std::string("Microsoft:Hyper-V:Replica")}));
  BOOST_TEST(!default_of(c, "AuthenticationType").has_value());
  BOOST_TEST(!default_of(c, "CertificateThumbPrint").has_value());
  BOOST_TEST(!default_of(c, "ApplicationConsistentSnapshotInterval").has_value());
  BOOST_TEST(!default_of(c, "IncludedDisks").has_value());
  BOOST_TEST((c.find("AutoResynchronizeIntervalStart")->datetime_form == DateTimeForm::PointOrInterval));
  BOOST_TEST((c.find("CreationTime")->datetime_form == DateTimeForm::Point));
}

BOOST_AUTO_TEST_CASE(service_setting_data_has_the_section_4_properties_and_defaults) {
  const ClassSchema& c = schema(kReplicationServiceSettingDataClass);
  const Expect expected[] = {
      {"RecoveryServerEnabled", CimType::Boolean, false, false, 0},
      {"AllowedAuthenticationType", CimType::UInt16, false, false, 0},
      {"CertificateThumbPrint", CimType::String, false, false, 128},
      {"HttpPort", CimType::UInt16, false, false, 0},
      {"HttpsPort", CimType::UInt16, false, false, 0},
      {"MonitoringInterval", CimType::UInt32, false, false, 0},
      {"MonitoringStartTime", CimType::DateTime, false, false, 0},
      {"InstanceID", CimType::String, false, true, 0},
      {"ElementName", CimType::String, false, false, 0},
  };
  for (const auto& e : expected) check_property(c, e);
  BOOST_TEST(c.properties.size() == 11u);
  BOOST_TEST((default_of(c, "RecoveryServerEnabled") == Scalar{false}));
  BOOST_TEST((default_of(c, "AllowedAuthenticationType") == Scalar{uint64_t{0}}));
  BOOST_TEST((default_of(c, "HttpPort") == Scalar{uint64_t{80}}));
  BOOST_TEST((default_of(c, "HttpsPort") == Scalar{uint64_t{443}}));
  BOOST_TEST((default_of(c, "MonitoringInterval") == Scalar{uint64_t{43200}}));
  BOOST_TEST((default_of(c, "MonitoringStartTime") == Scalar{std::string("00000000090000.000000+000")}));
  BOOST_TEST((c.find("MonitoringStartTime")->datetime_form == DateTimeForm::TimeOfDay));
  BOOST_TEST(!default_of(c, "CertificateThumbPrint").has_value());
}

BOOST_AUTO_TEST_CASE(authorization_setting_data_has_the_section_4_properties) {
  const ClassSchema& c = schema(kReplicationAuthorizationSettingDataClass);
  const Expect expected[] = {
      {"AllowedPrimaryHostSystem", CimType::String, false, false, 0},
      {"TrustGroup", CimType::String, false, false, 0},
      {"ReplicaStorageLocation", CimType::String, false, false, 0},
      {"InstanceID", CimType::String, false, true, 0},
      {"ElementName", CimType::String, false, false, 0},
  };
  for (const auto& e : expected) check_property(c, e);
  BOOST_TEST(c.properties.size() == 7u);
  for (const auto& p : c.properties) BOOST_TEST(!p.default_value.has_value());
}

BOOST_AUTO_TEST_CASE(default_property_is_the_default_or_null) {
  const ClassSchema& c = schema(kReplicationSettingDataClass);
  Property interval = c.find("ReplicationInterval")->default_property();
  BOOST_TEST(interval.name == "ReplicationInterval");
  BOOST_TEST(static_cast<int>(interval.type) == static_cast<int>(CimType::UInt16));
  BOOST_REQUIRE(interval.values.has_value());
  BOOST_TEST((interval.values->front() == Scalar{uint64_t{300}}));
  Property disks = c.find("IncludedDisks")->default_property();
  BOOST_TEST(disks.is_array);
  BOOST_TEST(disks.is_null());
}

BOOST_AUTO_TEST_CASE(check_value_enforces_type_and_range) {
  const ClassSchema& c = schema(kReplicationSettingDataClass);
  const PropertySchema& port = *c.find("RecoveryServerPortNumber");
  BOOST_TEST(check_value(port, Scalar{uint64_t{65535}}).ok());
  Status over = check_value(port, Scalar{uint64_t{65536}});
  BOOST_TEST(over.number() == 32776u);
  BOOST_TEST(over.message() == "RecoveryServerPortNumber: 65536 is out of range for uint16 (0..65535)");
  Status signed_value = check_value(port, Scalar{int64_t{5}});
  BOOST_TEST(signed_value.number() == 32776u);
  BOOST_TEST(signed_value.message().find("RecoveryServerPortNumber") != std::string::npos);
  BOOST_TEST(check_value(port, Scalar{std::string("5")}).number() == 32776u);
  const PropertySchema& flag = *c.find("CompressionEnabled");
  BOOST_TEST(check_value(flag, Scalar{false}).ok());
  BOOST_TEST(check_value(flag, Scalar{uint64_t{1}}).number() == 32776u);
  const ClassSchema& svc = schema(kReplicationServiceSettingDataClass);
  const PropertySchema& monitoring = *svc.find("MonitoringInterval");
  BOOST_TEST(check_value(monitoring, Scalar{uint64_t{4294967295u}}).ok());
  BOOST_TEST(check_value(monitoring, Scalar{uint64_t{4294967296u}}).number() == 32776u);
}

BOOST_AUTO_TEST_CASE(check_value_counts_string_limits_in_characters) {
  const ClassSchema& c = schema(kReplicationSettingDataClass);
  const PropertySchema& thumb = *c.find("CertificateThumbPrint");
  BOOST_TEST(check_value(thumb, Scalar{std::string(128, 'a')}).ok());
  Status s = check_value(thumb, Scalar{std::string(129, 'a')});
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "CertificateThumbPrint: the value has 129 characters; the limit is 128 (string(128))");
  std::string accented;
  for (int i = 0; i < 128; ++i) accented += "\xC3\xA9";  // 128 characters, 256 bytes
  BOOST_TEST(check_value(thumb, Scalar{accented}).ok());
  const PropertySchema& caption = *c.find("Caption");
  BOOST_TEST(check_value(caption, Scalar{std::string(64, 'c')}).ok());
  BOOST_TEST(check_value(caption, Scalar{std::string(65, 'c')}).number() == 32773u);
}

BOOST_AUTO_TEST_CASE(check_value_rejects_nul_and_invalid_utf8) {
  const PropertySchema& desc = *schema(kReplicationSettingDataClass).find("Description");
  Status nul = check_value(desc, Scalar{std::string("a\0b", 3)});
  BOOST_TEST(nul.number() == 32773u);
  BOOST_TEST(nul.message() == "Description: the value contains a NUL character");
  for (const char* bad : {"\xFF", "\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    Status s = check_value(desc, Scalar{std::string(bad)});
    BOOST_TEST(s.number() == 32773u);
    BOOST_TEST(s.message() == "Description: the value is not valid UTF-8");
  }
  BOOST_TEST(check_value(desc, Scalar{std::string("\xF0\x9F\x8E\x89 \xE6\x97\xA5")}).ok());
}

BOOST_AUTO_TEST_CASE(check_value_checks_datetime_forms) {
  const ClassSchema& rsd = schema(kReplicationSettingDataClass);
  const PropertySchema& created = *rsd.find("CreationTime");
  BOOST_TEST(check_value(created, Scalar{std::string("20260925101500.000000+000")}).ok());
  Status interval = check_value(created, Scalar{std::string("00000000183000.000000:000")});
  BOOST_TEST(interval.number() == 32776u);
  BOOST_TEST(interval.message().find("CreationTime: '00000000183000.000000:000' is an interval") == 0);
  const PropertySchema& start = *rsd.find("AutoResynchronizeIntervalStart");
  BOOST_TEST(check_value(start, Scalar{std::string("00000000183000.000000:000")}).ok());
  BOOST_TEST(check_value(start, Scalar{std::string("20260925183000.000000+000")}).ok());
  BOOST_TEST(check_value(start, Scalar{std::string("00000000243000.000000:000")}).number() == 32776u);
  const PropertySchema& monitoring = *schema(kReplicationServiceSettingDataClass).find("MonitoringStartTime");
  BOOST_TEST(check_value(monitoring, Scalar{std::string("00000000090000.000000+000")}).ok());
  BOOST_TEST(check_value(monitoring, Scalar{std::string("00000000250000.000000+000")}).number() == 32776u);
  BOOST_TEST(check_value(monitoring, Scalar{std::string("00000000090000.000000:000")}).number() == 32776u);
}

BOOST_AUTO_TEST_CASE(check_instance_accepts_every_full_instance) {
  for (const auto& c : class_schemas()) {
    BOOST_TEST_CONTEXT(c.name) {
      Instance full = test::full_instance(c.name);
      BOOST_TEST(full.properties().size() == c.properties.size());
      BOOST_TEST(check_instance(full).ok(), check_instance(full).ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(check_instance_rejects_unknown_duplicate_and_mistyped_properties) {
  Instance unknown{std::string(kReplicationSettingDataClass)};
  unknown.set_u16("Frobnicate", 1);
  BOOST_TEST(check_instance(unknown).number() == 32773u);
  BOOST_TEST(check_instance(unknown).message() == "Msvm_ReplicationSettingData has no property 'Frobnicate'");

  Instance dup{std::string(kReplicationSettingDataClass)};
  dup.set_u16("ReplicationInterval", 300).set_u16("replicationinterval", 30);
  BOOST_TEST(check_instance(dup).number() == 32773u);
  BOOST_TEST(check_instance(dup).message().find("ReplicationInterval appears twice") != std::string::npos);

  Instance mistyped{std::string(kReplicationSettingDataClass)};
  mistyped.set_u32("ReplicationInterval", 300);
  BOOST_TEST(check_instance(mistyped).number() == 32776u);
  BOOST_TEST(check_instance(mistyped).message() ==
             "ReplicationInterval: the instance says uint32, the class says uint16");

  Instance scalar_array{std::string(kReplicationSettingDataClass)};
  scalar_array.set_string("IncludedDisks", "x");
  BOOST_TEST(check_instance(scalar_array).number() == 32776u);

  Instance too_long{std::string(kReplicationSettingDataClass)};
  too_long.set_string_array("IncludedDisks", std::vector<std::string>(kMaxArrayElements + 1, "d"));
  BOOST_TEST(check_instance(too_long).number() == 32773u);
  BOOST_TEST(check_instance(too_long).message() == "IncludedDisks: more than 4096 elements");

  Instance job("Msvm_ConcreteJob");
  BOOST_TEST(check_instance(job).number() == 32773u);
}

BOOST_AUTO_TEST_SUITE_END()
