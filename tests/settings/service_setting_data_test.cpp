// ReplicationServiceSettingData: spec §4 defaults, every property, every rule at its edges.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/settings/decode.h"
#include "core/settings/service_setting_data.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

using SSD = ReplicationServiceSettingData;

const std::string kSha1 = "a909502dd82ae41433e6f83886b00d4277a32a7b";

struct Rule {
  std::string what;
  std::function<void(SSD&)> change;
  std::string message;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(service_setting_data_tests)

BOOST_AUTO_TEST_CASE(defaults_follow_section_4_and_are_valid) {
  const SSD s;
  BOOST_TEST(s.RecoveryServerEnabled == false);
  BOOST_TEST(s.AllowedAuthenticationType == 0);
  BOOST_TEST(!s.CertificateThumbPrint.has_value());
  BOOST_TEST(s.HttpPort == 80);
  BOOST_TEST(s.HttpsPort == 443);
  BOOST_TEST(s.MonitoringInterval == 43200u);
  BOOST_TEST(s.MonitoringStartTime == "00000000090000.000000+000");
  BOOST_TEST(s.validate().ok(), s.validate().ToString());

  auto schema = find_class_schema(SSD::kClassName);
  BOOST_REQUIRE(schema.ok());
  const Instance written = s.to_instance();
  for (const Property& p : written.properties())
    BOOST_TEST_CONTEXT(p.name) { BOOST_TEST((p == (*schema)->find(p.name)->default_property())); }
}

BOOST_AUTO_TEST_CASE(every_property_round_trips) {
  auto s = SSD::from_instance(test::full_service_setting_data());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(*s->InstanceID == "Microsoft:ReplicationServiceSettingData");
  BOOST_TEST(*s->ElementName == "Hyper-V Replica");
  BOOST_TEST(s->RecoveryServerEnabled == true);
  BOOST_TEST(s->AllowedAuthenticationType == 3);
  BOOST_TEST(*s->CertificateThumbPrint == kSha1);
  BOOST_TEST(s->HttpPort == 8080);
  BOOST_TEST(s->HttpsPort == 8443);
  BOOST_TEST(s->MonitoringInterval == 604800u);
  BOOST_TEST(s->MonitoringStartTime == "00000000063000.000000-480");
  BOOST_TEST(s->validate().ok(), s->validate().ToString());

  const Instance full = test::full_service_setting_data();
  const Instance written = s->to_instance();
  for (const Property& p : written.properties())
    BOOST_TEST_CONTEXT(p.name) { BOOST_TEST((p == *full.find(p.name))); }
  for (Format f : {Format::CimXml, Format::Mof, Format::Json}) {
    BOOST_TEST_CONTEXT(format_name(f)) {
      auto back = SSD::parse(encode_instance(s->to_instance(), f));
      BOOST_REQUIRE_MESSAGE(back.ok(), back.status().ToString());
      BOOST_TEST((*back == *s));
    }
  }
}

BOOST_AUTO_TEST_CASE(valid_edge_values_pass) {
  const std::vector<std::pair<std::string, std::function<void(SSD&)>>> edges = {
      {"type 0", [](SSD& s) { s.AllowedAuthenticationType = 0; }},
      {"type 1 enabled", [](SSD& s) { s.AllowedAuthenticationType = 1; s.RecoveryServerEnabled = true; }},
      {"type 2 enabled", [](SSD& s) { s.AllowedAuthenticationType = 2; s.RecoveryServerEnabled = true; s.CertificateThumbPrint = kSha1; }},
      {"type 3 disabled without thumbprint", [](SSD& s) { s.AllowedAuthenticationType = 3; }},
      {"ports 1", [](SSD& s) { s.HttpPort = 1; s.HttpsPort = 1; }},
      {"ports 65535", [](SSD& s) { s.HttpPort = 65535; s.HttpsPort = 65535; }},
      {"monitoring 3600", [](SSD& s) { s.MonitoringInterval = 3600; }},
      {"monitoring 604800", [](SSD& s) { s.MonitoringInterval = 604800; }},
      {"start 23:59:59 at -720", [](SSD& s) { s.MonitoringStartTime = "00000000235959.999999-720"; }},
  };
  for (const auto& [what, change] : edges) {
    BOOST_TEST_CONTEXT(what) {
      SSD s;
      change(s);
      BOOST_TEST(s.validate().ok(), s.validate().ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(each_rule_names_the_property_it_breaks) {
  const std::vector<Rule> rules = {
      {"type 4", [](SSD& s) { s.AllowedAuthenticationType = 4; },
       "AllowedAuthenticationType must be 0 to 3 (0 undefined, 1 Kerberos, 2 certificate, 3 both) (got 4)"},
      {"type 2 enabled without thumbprint", [](SSD& s) { s.AllowedAuthenticationType = 2; s.RecoveryServerEnabled = true; },
       "CertificateThumbPrint is required when RecoveryServerEnabled is TRUE and AllowedAuthenticationType is 2"},
      {"type 3 enabled with empty thumbprint",
       [](SSD& s) { s.AllowedAuthenticationType = 3; s.RecoveryServerEnabled = true; s.CertificateThumbPrint = ""; },
       "CertificateThumbPrint is required when RecoveryServerEnabled is TRUE and AllowedAuthenticationType is 3"},
      {"thumbprint not hex", [](SSD& s) { s.CertificateThumbPrint = "not-a-thumbprint"; },
       "CertificateThumbPrint must be 40 or 64 hexadecimal digits (got 'not-a-thumbprint')"},
      {"http port 0", [](SSD& s) { s.HttpPort = 0; }, "HttpPort must not be 0 (the Kerberos listener port)"},
      {"https port 0", [](SSD& s) { s.HttpsPort = 0; }, "HttpsPort must not be 0 (the certificate listener port)"},
      {"monitoring 3599", [](SSD& s) { s.MonitoringInterval = 3599; },
       "MonitoringInterval must be 3600 to 604800 seconds (got 3599)"},
      {"monitoring 604801", [](SSD& s) { s.MonitoringInterval = 604801; },
       "MonitoringInterval must be 3600 to 604800 seconds (got 604801)"},
      {"start with a date", [](SSD& s) { s.MonitoringStartTime = "20260925090000.000000+000"; },
       "MonitoringStartTime must be a time of day 00000000HHMMSS.mmmmmmsUUU with zero date fields "
       "(got '20260925090000.000000+000')"},
      {"start as an interval", [](SSD& s) { s.MonitoringStartTime = "00000000090000.000000:000"; },
       "MonitoringStartTime must be a time of day 00000000HHMMSS.mmmmmmsUUU with zero date fields "
       "(got '00000000090000.000000:000')"},
      {"start hour 24", [](SSD& s) { s.MonitoringStartTime = "00000000240000.000000+000"; },
       "MonitoringStartTime must be a time of day 00000000HHMMSS.mmmmmmsUUU with zero date fields "
       "(got '00000000240000.000000+000')"},
      {"NUL in a name", [](SSD& s) { s.ElementName = std::string("a\0", 2); },
       "ElementName: the value contains a NUL character"},
  };
  for (const Rule& rule : rules) {
    BOOST_TEST_CONTEXT(rule.what) {
      SSD s;
      rule.change(s);
      const Status st = s.validate();
      BOOST_TEST(st.number() == 32773u);
      BOOST_TEST(st.message() == rule.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_reads_json_with_the_expected_class) {
  auto s = SSD::parse(R"({"RecoveryServerEnabled": true, "AllowedAuthenticationType": 1, "HttpPort": 8080})");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->RecoveryServerEnabled == true);
  BOOST_TEST(s->HttpPort == 8080);
  BOOST_TEST(s->HttpsPort == 443);
  auto bad = SSD::parse(R"({"MonitoringInterval": 60})");
  BOOST_TEST(bad.status().number() == 32773u);
  BOOST_TEST(bad.status().message() == "MonitoringInterval must be 3600 to 604800 seconds (got 60)");
  auto wrong_type = SSD::parse(R"({"MonitoringStartTime": "tomorrow"})");
  BOOST_TEST(wrong_type.status().number() == 32776u);
  BOOST_TEST(wrong_type.status().message().find("MonitoringStartTime") == 0);
}

BOOST_AUTO_TEST_SUITE_END()
