// ReplicationSettingData: spec §3 defaults, every property through the instance and all three
// formats, and every validation rule at its edges.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/settings/decode.h"
#include "core/settings/replication_setting_data.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

using RSD = ReplicationSettingData;

// The smallest settings that pass validate().
RSD valid() {
  RSD s;
  s.AuthenticationType = 1;
  s.RecoveryConnectionPoint = "hv-b.contoso.com";
  s.RecoveryServerPortNumber = 80;
  return s;
}

const std::string kSha1 = "A909502DD82AE41433E6F83886B00D4277A32A7B";
const std::string kSha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

struct Rule {
  std::string what;
  std::function<void(RSD&)> change;
  std::string message;  // the whole expected message
};

}  // namespace

BOOST_AUTO_TEST_SUITE(replication_setting_data_tests)

BOOST_AUTO_TEST_CASE(defaults_follow_section_3) {
  const RSD s;
  BOOST_TEST(s.RecoveryServerPortNumber == 0);
  BOOST_TEST(s.ReplicateHostKvpItems == true);
  BOOST_TEST(s.RecoveryHistory == 0);
  BOOST_TEST(s.AutoResynchronizeEnabled == false);
  BOOST_TEST(s.AutoResynchronizeIntervalStart == "00000000183000.000000:000");
  BOOST_TEST(s.AutoResynchronizeIntervalEnd == "00000000060000.000000:000");
  BOOST_TEST(s.ReplicationInterval == 300);
  BOOST_TEST(s.VirtualSystemType == "Microsoft:Hyper-V:Replica");
  BOOST_TEST(!s.AuthenticationType.has_value());
  BOOST_TEST(!s.CertificateThumbPrint.has_value());
  BOOST_TEST(!s.CompressionEnabled.has_value());
  BOOST_TEST(!s.ApplicationConsistentSnapshotInterval.has_value());
  BOOST_TEST(!s.IncludedDisks.has_value());
  BOOST_TEST(!s.EnableWriteOrderPreservationAcrossDisks.has_value());
}

BOOST_AUTO_TEST_CASE(default_struct_writes_the_schema_defaults) {
  const Instance i = RSD{}.to_instance();
  auto schema = find_class_schema(RSD::kClassName);
  BOOST_REQUIRE(schema.ok());
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_TEST(i.properties().size() == 25u);
  std::size_t last = 0;
  for (const Property& p : i.properties()) {
    BOOST_TEST_CONTEXT(p.name) {
      const PropertySchema* ps = (*schema)->find(p.name);
      BOOST_REQUIRE(ps != nullptr);
      BOOST_TEST((p == ps->default_property()));
      const std::size_t index = static_cast<std::size_t>(ps - (*schema)->properties.data());
      BOOST_TEST(index >= last);  // the schema's order
      last = index;
      BOOST_TEST(!ps->unused);
    }
  }
  BOOST_TEST(check_instance(i).ok());
}

BOOST_AUTO_TEST_CASE(from_instance_reads_every_property) {
  auto s = RSD::from_instance(test::full_replication_setting_data());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(*s->InstanceID == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0");
  BOOST_TEST(*s->ElementName == " web01 ");
  BOOST_TEST(*s->VirtualSystemIdentifier == "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  BOOST_TEST(s->VirtualSystemType == "Microsoft:Hyper-V:Replica");
  BOOST_TEST(*s->AuthenticationType == 2);
  BOOST_TEST(*s->CertificateThumbPrint == kSha1);
  BOOST_TEST(*s->RootCertificateThumbPrint == kSha256);
  BOOST_TEST(*s->CompressionEnabled == true);
  BOOST_TEST(*s->BypassProxyServer == false);
  BOOST_TEST(*s->RecoveryConnectionPoint == "hv-b.contoso.com");
  BOOST_TEST(*s->RecoveryHostSystem == "HV-B.contoso.com");
  BOOST_TEST(*s->PrimaryConnectionPoint == "hv-a.contoso.com");
  BOOST_TEST(*s->PrimaryHostSystem == "HV-A.contoso.com");
  BOOST_TEST(s->RecoveryServerPortNumber == 65535);
  BOOST_TEST(s->ReplicateHostKvpItems == false);
  BOOST_TEST(*s->ApplicationConsistentSnapshotInterval == 12);
  BOOST_TEST(s->RecoveryHistory == 24);
  BOOST_REQUIRE_EQUAL(s->IncludedDisks->size(), 3u);
  BOOST_TEST((*s->IncludedDisks)[0] == test::kSpecExampleDisk);
  BOOST_TEST(s->AutoResynchronizeEnabled == true);
  BOOST_TEST(s->AutoResynchronizeIntervalStart == "00000000200000.000000:000");
  BOOST_TEST(s->AutoResynchronizeIntervalEnd == "00000000050000.000000:000");
  BOOST_TEST(*s->EnableWriteOrderPreservationAcrossDisks == true);
  BOOST_TEST(s->ReplicationInterval == 30);
  BOOST_TEST(s->ReplicationProvider->find("Msvm_ReplicationProvider.Name=") != std::string::npos);
  BOOST_TEST(*s->AdditionalSettings == "");
  BOOST_TEST(s->validate().ok(), s->validate().ToString());

  // Writing back gives the same values for every typed property.
  const Instance full = test::full_replication_setting_data();
  const Instance written = s->to_instance();
  for (const Property& p : written.properties()) {
    BOOST_TEST_CONTEXT(p.name) {
      BOOST_REQUIRE(full.find(p.name) != nullptr);
      BOOST_TEST((p == *full.find(p.name)));
    }
  }
}

BOOST_AUTO_TEST_CASE(absent_and_null_properties_take_the_defaults) {
  Instance i{std::string(RSD::kClassName)};
  BOOST_TEST((*RSD::from_instance(i) == RSD{}));
  i.set_null("ReplicationInterval", CimType::UInt16).set_null("ReplicateHostKvpItems", CimType::Boolean);
  auto s = RSD::from_instance(i);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->ReplicationInterval == 300);
  BOOST_TEST(s->ReplicateHostKvpItems == true);
}

BOOST_AUTO_TEST_CASE(struct_round_trips_through_every_format) {
  RSD s = *RSD::from_instance(test::full_replication_setting_data());
  for (Format f : {Format::CimXml, Format::Mof, Format::Json}) {
    BOOST_TEST_CONTEXT(format_name(f)) {
      const std::string text = encode_instance(s.to_instance(), f);
      auto back = RSD::parse(text);
      BOOST_REQUIRE_MESSAGE(back.ok(), back.status().ToString());
      BOOST_TEST((*back == s));
    }
  }
  const RSD minimal = valid();
  BOOST_TEST((*RSD::parse(encode_instance(minimal.to_instance(), Format::Mof)) == minimal));
}

BOOST_AUTO_TEST_CASE(from_instance_rejects_other_classes_and_bad_types) {
  auto other = RSD::from_instance(test::full_service_setting_data());
  BOOST_TEST(other.status().number() == 32773u);
  BOOST_TEST(other.status().message() ==
             "expected an instance of Msvm_ReplicationSettingData, got 'Msvm_ReplicationServiceSettingData'");
  Instance mistyped{std::string(RSD::kClassName)};
  mistyped.set_u32("ReplicationInterval", 300);
  BOOST_TEST(RSD::from_instance(mistyped).status().number() == 32776u);
  Instance too_big{std::string(RSD::kClassName)};
  too_big.set_uint("RecoveryHistory", CimType::UInt16, 70000);  // the bag holds uint64_t whatever the type
  auto r = RSD::from_instance(too_big);
  BOOST_TEST(r.status().number() == 32776u);
  BOOST_TEST(r.status().message().find("RecoveryHistory") == 0);
}

BOOST_AUTO_TEST_CASE(valid_edge_values_pass) {
  const std::vector<std::pair<std::string, std::function<void(RSD&)>>> edges = {
      {"interval 30", [](RSD& s) { s.ReplicationInterval = 30; }},
      {"interval 300", [](RSD& s) { s.ReplicationInterval = 300; }},
      {"interval 900", [](RSD& s) { s.ReplicationInterval = 900; }},
      {"history 0", [](RSD& s) { s.RecoveryHistory = 0; }},
      {"history 24", [](RSD& s) { s.RecoveryHistory = 24; }},
      {"vss 0 without history", [](RSD& s) { s.ApplicationConsistentSnapshotInterval = 0; }},
      {"vss 1 with history 1", [](RSD& s) { s.RecoveryHistory = 1; s.ApplicationConsistentSnapshotInterval = 1; }},
      {"vss 12 with history 24", [](RSD& s) { s.RecoveryHistory = 24; s.ApplicationConsistentSnapshotInterval = 12; }},
      {"port 1", [](RSD& s) { s.RecoveryServerPortNumber = 1; }},
      {"port 65535", [](RSD& s) { s.RecoveryServerPortNumber = 65535; }},
      {"auth 2 with SHA-1", [](RSD& s) { s.AuthenticationType = 2; s.CertificateThumbPrint = kSha1; }},
      {"auth 2 with SHA-256", [](RSD& s) { s.AuthenticationType = 2; s.CertificateThumbPrint = kSha256; }},
      {"auth 1 with empty thumbprint", [](RSD& s) { s.CertificateThumbPrint = ""; }},
      {"root thumbprint", [](RSD& s) { s.RootCertificateThumbPrint = kSha1; }},
      {"connection point of 256", [](RSD& s) { s.RecoveryConnectionPoint = std::string(256, 'h'); }},
      {"single-label connection point", [](RSD& s) { s.RecoveryConnectionPoint = "hv-b"; }},
      {"IPv6 connection point", [](RSD& s) { s.RecoveryConnectionPoint = "[fd00::2]"; }},
      {"empty primary connection point", [](RSD& s) { s.PrimaryConnectionPoint = ""; }},
      {"window crossing midnight", [](RSD& s) {
         s.AutoResynchronizeIntervalStart = "00000000235959.999999:000";
         s.AutoResynchronizeIntervalEnd = "00000000000000.000000:000";
       }},
      {"disks", [](RSD& s) { s.IncludedDisks = std::vector<std::string>{std::string(test::kSpecExampleDisk)}; }},
      {"no disks", [](RSD& s) { s.IncludedDisks = std::vector<std::string>{}; }},
  };
  for (const auto& [what, change] : edges) {
    BOOST_TEST_CONTEXT(what) {
      RSD s = valid();
      change(s);
      BOOST_TEST(s.validate().ok(), s.validate().ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(each_rule_names_the_property_it_breaks) {
  const std::string thumb_rule = " must be 40 or 64 hexadecimal digits (got '";
  const std::vector<Rule> rules = {
      {"no authentication type", [](RSD& s) { s.AuthenticationType.reset(); },
       "AuthenticationType is required: 1 (Kerberos) or 2 (certificate)"},
      {"authentication type 0", [](RSD& s) { s.AuthenticationType = 0; },
       "AuthenticationType must be 1 (Kerberos) or 2 (certificate) (got 0)"},
      {"authentication type 3", [](RSD& s) { s.AuthenticationType = 3; },
       "AuthenticationType must be 1 (Kerberos) or 2 (certificate) (got 3)"},
      {"certificate without thumbprint", [](RSD& s) { s.AuthenticationType = 2; },
       "CertificateThumbPrint is required when AuthenticationType is 2 (certificate)"},
      {"certificate with empty thumbprint", [](RSD& s) { s.AuthenticationType = 2; s.CertificateThumbPrint = ""; },
       "CertificateThumbPrint is required when AuthenticationType is 2 (certificate)"},
      {"thumbprint not hex", [](RSD& s) { s.CertificateThumbPrint = "xyz"; },
       "CertificateThumbPrint" + thumb_rule + "xyz')"},
      {"thumbprint of 39", [](RSD& s) { s.CertificateThumbPrint = kSha1.substr(1); },
       "CertificateThumbPrint" + thumb_rule + kSha1.substr(1) + "')"},
      {"thumbprint of 41", [](RSD& s) { s.CertificateThumbPrint = kSha1 + "0"; },
       "CertificateThumbPrint" + thumb_rule + kSha1 + "...')"},  // shown cut to 40
      {"thumbprint with spaces", [](RSD& s) { s.AuthenticationType = 2; s.CertificateThumbPrint = "a9 09 50 2d dd 82 ae 41 43 3e 6f 83 88"; },
       "CertificateThumbPrint" + thumb_rule + "a9 09 50 2d dd 82 ae 41 43 3e 6f 83 88')"},
      {"root thumbprint not hex", [](RSD& s) { s.RootCertificateThumbPrint = "zz"; },
       "RootCertificateThumbPrint" + thumb_rule + "zz')"},
      {"no connection point", [](RSD& s) { s.RecoveryConnectionPoint.reset(); },
       "RecoveryConnectionPoint is required (a host name)"},
      {"empty connection point", [](RSD& s) { s.RecoveryConnectionPoint = ""; },
       "RecoveryConnectionPoint is required (a host name)"},
      {"connection point with a space", [](RSD& s) { s.RecoveryConnectionPoint = "hv b"; },
       "RecoveryConnectionPoint must be a host name without spaces or control characters (got 'hv b')"},
      {"connection point with a tab", [](RSD& s) { s.RecoveryConnectionPoint = "hv\tb"; },
       "RecoveryConnectionPoint must be a host name without spaces or control characters (got 'hv\\x09b')"},
      {"connection point with DEL", [](RSD& s) { s.RecoveryConnectionPoint = "hv\x7f"; },
       "RecoveryConnectionPoint must be a host name without spaces or control characters (got 'hv\\x7F')"},
      {"connection point of 257", [](RSD& s) { s.RecoveryConnectionPoint = std::string(257, 'h'); },
       "RecoveryConnectionPoint must be at most 256 characters (got 257)"},
      {"primary connection point with a space", [](RSD& s) { s.PrimaryConnectionPoint = "hv a"; },
       "PrimaryConnectionPoint must be a host name without spaces or control characters (got 'hv a')"},
      {"recovery host with a newline", [](RSD& s) { s.RecoveryHostSystem = "hv\nb"; },
       "RecoveryHostSystem must be a host name without spaces or control characters (got 'hv\\x0Ab')"},
      {"primary host of 300", [](RSD& s) { s.PrimaryHostSystem = std::string(300, 'p'); },
       "PrimaryHostSystem must be at most 256 characters (got 300)"},
      {"port 0", [](RSD& s) { s.RecoveryServerPortNumber = 0; },
       "RecoveryServerPortNumber must not be 0 (the recovery server's listener port)"},
      {"interval 0", [](RSD& s) { s.ReplicationInterval = 0; }, "ReplicationInterval must be 30, 300 or 900 seconds (got 0)"},
      {"interval 29", [](RSD& s) { s.ReplicationInterval = 29; }, "ReplicationInterval must be 30, 300 or 900 seconds (got 29)"},
      {"interval 60", [](RSD& s) { s.ReplicationInterval = 60; }, "ReplicationInterval must be 30, 300 or 900 seconds (got 60)"},
      {"interval 901", [](RSD& s) { s.ReplicationInterval = 901; }, "ReplicationInterval must be 30, 300 or 900 seconds (got 901)"},
      {"history 25", [](RSD& s) { s.RecoveryHistory = 25; }, "RecoveryHistory must be 0 to 24 (got 25)"},
      {"history 65535", [](RSD& s) { s.RecoveryHistory = 65535; }, "RecoveryHistory must be 0 to 24 (got 65535)"},
      {"vss 13", [](RSD& s) { s.RecoveryHistory = 24; s.ApplicationConsistentSnapshotInterval = 13; },
       "ApplicationConsistentSnapshotInterval must be 0 to 12 hours (got 13)"},
      {"vss without history", [](RSD& s) { s.ApplicationConsistentSnapshotInterval = 4; },
       "ApplicationConsistentSnapshotInterval must be 0 when RecoveryHistory is 0 (got 4)"},
      {"window start as a point in time", [](RSD& s) { s.AutoResynchronizeIntervalStart = "20260101183000.000000+000"; },
       "AutoResynchronizeIntervalStart must be a CIM interval ddddddddHHMMSS.mmmmmm:000 (got '20260101183000.000000+000')"},
      {"window end garbage", [](RSD& s) { s.AutoResynchronizeIntervalEnd = "06:00"; },
       "AutoResynchronizeIntervalEnd must be a CIM interval ddddddddHHMMSS.mmmmmm:000 (got '06:00')"},
      {"window end hour 24", [](RSD& s) { s.AutoResynchronizeIntervalEnd = "00000000240000.000000:000"; },
       "AutoResynchronizeIntervalEnd must be a CIM interval ddddddddHHMMSS.mmmmmm:000 (got '00000000240000.000000:000')"},
      {"empty disk", [](RSD& s) { s.IncludedDisks = std::vector<std::string>{"d0", ""}; },
       "IncludedDisks[1] must not be empty"},
      {"too many disks", [](RSD& s) { s.IncludedDisks = std::vector<std::string>(4097, "d"); },
       "IncludedDisks must have at most 4096 disks"},
      {"NUL in a name", [](RSD& s) { s.ElementName = std::string("web\0", 4); },
       "ElementName: the value contains a NUL character"},
      {"bad UTF-8 in a provider", [](RSD& s) { s.ReplicationProvider = "\xC3("; },
       "ReplicationProvider: the value is not valid UTF-8"},
  };
  for (const Rule& rule : rules) {
    BOOST_TEST_CONTEXT(rule.what) {
      RSD s = valid();
      rule.change(s);
      const Status st = s.validate();
      BOOST_TEST(st.number() == 32773u);
      BOOST_TEST(st.message() == rule.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_accepts_the_spec_example_and_fetched_instances) {
  auto s = RSD::parse(test::kSpecExample);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(*s->AuthenticationType == 1);
  BOOST_TEST(*s->RecoveryConnectionPoint == "hv-b.contoso.com");
  BOOST_TEST(s->RecoveryServerPortNumber == 80);
  BOOST_TEST(s->RecoveryHistory == 24);
  BOOST_TEST(*s->ApplicationConsistentSnapshotInterval == 4);
  BOOST_TEST(s->ReplicationInterval == 300);
  BOOST_TEST(!s->CertificateThumbPrint.has_value());
  BOOST_TEST(s->ReplicateHostKvpItems == true);  // absent: the default
  BOOST_REQUIRE_EQUAL(s->IncludedDisks->size(), 1u);
  BOOST_TEST(s->IncludedDisks->front() == test::kSpecExampleDisk);

  auto fetched = RSD::parse(test::kFetchedInstance);
  BOOST_REQUIRE_MESSAGE(fetched.ok(), fetched.status().ToString());
  BOOST_TEST(*fetched->ElementName == "web01");
  BOOST_TEST(*fetched->CertificateThumbPrint == "");
}

BOOST_AUTO_TEST_CASE(parse_reports_decode_class_and_rule_errors) {
  auto bad_rule = RSD::parse(R"({"AuthenticationType":1,"RecoveryConnectionPoint":"hv-b",)"
                             R"("RecoveryServerPortNumber":80,"ReplicationInterval":60})");
  BOOST_TEST(bad_rule.status().number() == 32773u);
  BOOST_TEST(bad_rule.status().message() == "ReplicationInterval must be 30, 300 or 900 seconds (got 60)");

  auto bad_type = RSD::parse("instance of Msvm_ReplicationSettingData\n{\n\tReplicationInterval = \"x\";\n};\n");
  BOOST_TEST(bad_type.status().number() == 32776u);
  BOOST_TEST(bad_type.status().message().find("ReplicationInterval") == 0);

  auto other = RSD::parse("<INSTANCE CLASSNAME=\"Msvm_ReplicationAuthorizationSettingData\"></INSTANCE>");
  BOOST_TEST(other.status().number() == 32773u);
  BOOST_TEST(other.status().message().find("expected 'Msvm_ReplicationSettingData'") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
