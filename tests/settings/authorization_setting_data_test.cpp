// AuthorizationSettingData: every property, the validation rules, and the host pattern rule
// a recovery server applies to connecting primaries.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/settings/authorization_setting_data.h"
#include "core/settings/decode.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

using ASD = AuthorizationSettingData;

ASD valid() {
  ASD s;
  s.AllowedPrimaryHostSystem = "hv-a.contoso.com";
  s.TrustGroup = "DEFAULT";
  s.ReplicaStorageLocation = "/srv/replicas";
  return s;
}

struct Rule {
  std::string what;
  std::function<void(ASD&)> change;
  std::string message;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(authorization_setting_data_tests)

BOOST_AUTO_TEST_CASE(every_property_round_trips) {
  auto s = ASD::from_instance(test::full_authorization_setting_data());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(!s->InstanceID.has_value());
  BOOST_TEST(*s->ElementName == "contoso primaries");
  BOOST_TEST(*s->AllowedPrimaryHostSystem == "*.contoso.com");
  BOOST_TEST(*s->TrustGroup == "DEFAULT");
  BOOST_TEST(*s->ReplicaStorageLocation == "/srv/replicas/a b/\xC3\xA9");
  BOOST_TEST(s->validate().ok(), s->validate().ToString());

  const Instance full = test::full_authorization_setting_data();
  const Instance written = s->to_instance();
  for (const Property& p : written.properties())
    BOOST_TEST_CONTEXT(p.name) { BOOST_TEST((p == *full.find(p.name))); }
  for (Format f : {Format::CimXml, Format::Mof, Format::Json}) {
    BOOST_TEST_CONTEXT(format_name(f)) {
      auto back = ASD::parse(encode_instance(s->to_instance(), f));
      BOOST_REQUIRE_MESSAGE(back.ok(), back.status().ToString());
      BOOST_TEST((*back == *s));
    }
  }
}

BOOST_AUTO_TEST_CASE(powershell_any_server_entry_parses) {
  // What Set-VMReplicationServer -ReplicationAllowedFromAnyServer creates (spec §4).
  auto s = ASD::parse("instance of Msvm_ReplicationAuthorizationSettingData\n{\n"
                      "\tAllowedPrimaryHostSystem = \"*\";\n\tTrustGroup = \"DEFAULT\";\n"
                      "\tReplicaStorageLocation = \"/var/lib/vmrepl/replicas\";\n};\n");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(*s->AllowedPrimaryHostSystem == "*");
  BOOST_TEST((ASD{} == *ASD::from_instance(Instance{std::string(ASD::kClassName)})));
}

BOOST_AUTO_TEST_CASE(valid_entries_pass) {
  for (const char* host : {"*", "*.contoso.com", "*.com", "hv-a.contoso.com", "HV-A.CONTOSO.COM", "hv-a",
                           "hv-a.contoso.com.", "10.0.0.1", "a1.b-2.c3"}) {
    BOOST_TEST_CONTEXT(host) {
      ASD s = valid();
      s.AllowedPrimaryHostSystem = host;
      BOOST_TEST(s.validate().ok(), s.validate().ToString());
    }
  }
  for (const char* path : {"/", "/srv/replicas", "/srv/my..replicas/x", "/srv/.../x", "/srv/./x"}) {
    BOOST_TEST_CONTEXT(path) {
      ASD s = valid();
      s.ReplicaStorageLocation = path;
      BOOST_TEST(s.validate().ok(), s.validate().ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(each_rule_names_the_property_it_breaks) {
  const std::string host_rule = "AllowedPrimaryHostSystem must be a host name, '*' or '*.domain' (got '";
  const std::vector<Rule> rules = {
      {"no host", [](ASD& s) { s.AllowedPrimaryHostSystem.reset(); },
       "AllowedPrimaryHostSystem is required (a host name, '*' or '*.domain')"},
      {"empty host", [](ASD& s) { s.AllowedPrimaryHostSystem = ""; },
       "AllowedPrimaryHostSystem is required (a host name, '*' or '*.domain')"},
      {"wildcard inside a label", [](ASD& s) { s.AllowedPrimaryHostSystem = "hv*.contoso.com"; },
       host_rule + "hv*.contoso.com')"},
      {"two wildcards", [](ASD& s) { s.AllowedPrimaryHostSystem = "*.*.com"; }, host_rule + "*.*.com')"},
      {"wildcard without a domain", [](ASD& s) { s.AllowedPrimaryHostSystem = "*."; }, host_rule + "*.')"},
      {"empty label", [](ASD& s) { s.AllowedPrimaryHostSystem = "a..b"; }, host_rule + "a..b')"},
      {"leading hyphen", [](ASD& s) { s.AllowedPrimaryHostSystem = "-a.b"; }, host_rule + "-a.b')"},
      {"trailing hyphen", [](ASD& s) { s.AllowedPrimaryHostSystem = "a-.b"; }, host_rule + "a-.b')"},
      {"underscore", [](ASD& s) { s.AllowedPrimaryHostSystem = "hv_a"; }, host_rule + "hv_a')"},
      {"space", [](ASD& s) { s.AllowedPrimaryHostSystem = "hv a"; }, host_rule + "hv a')"},
      {"label of 64", [](ASD& s) { s.AllowedPrimaryHostSystem = std::string(64, 'a') + ".com"; },
       host_rule + std::string(40, 'a') + "...')"},
      {"no trust group", [](ASD& s) { s.TrustGroup.reset(); }, "TrustGroup must not be empty"},
      {"empty trust group", [](ASD& s) { s.TrustGroup = ""; }, "TrustGroup must not be empty"},
      {"no storage", [](ASD& s) { s.ReplicaStorageLocation.reset(); },
       "ReplicaStorageLocation is required (an absolute folder)"},
      {"relative storage", [](ASD& s) { s.ReplicaStorageLocation = "replicas"; },
       "ReplicaStorageLocation must be an absolute path (got 'replicas')"},
      {"windows storage", [](ASD& s) { s.ReplicaStorageLocation = "D:\\Replicas"; },
       "ReplicaStorageLocation must be an absolute path (got 'D:\\Replicas')"},
      {"dot-dot in the middle", [](ASD& s) { s.ReplicaStorageLocation = "/srv/../etc"; },
       "ReplicaStorageLocation must not contain a '..' component (got '/srv/../etc')"},
      {"dot-dot at the end", [](ASD& s) { s.ReplicaStorageLocation = "/srv/.."; },
       "ReplicaStorageLocation must not contain a '..' component (got '/srv/..')"},
      {"NUL in the path", [](ASD& s) { s.ReplicaStorageLocation = std::string("/srv/\0x", 7); },
       "ReplicaStorageLocation must not contain a NUL character"},
  };
  for (const Rule& rule : rules) {
    BOOST_TEST_CONTEXT(rule.what) {
      ASD s = valid();
      rule.change(s);
      const Status st = s.validate();
      BOOST_TEST(st.number() == 32773u);
      BOOST_TEST(st.message() == rule.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(host_patterns_match_as_the_spec_says) {
  struct Match {
    const char* pattern;
    const char* host;
    bool expected;
  };
  const Match table[] = {
      {"*.contoso.com", "a.contoso.com", true},
      {"*.contoso.com", "a.b.contoso.com", true},
      {"*.contoso.com", "contoso.com", false},
      {"*.contoso.com", ".contoso.com", false},
      {"*.contoso.com", "acontoso.com", false},
      {"*.contoso.com", "a.contoso.com.evil", false},
      {"*.contoso.com", "A.CONTOSO.COM", true},
      {"*.CONTOSO.com", "hv-a.contoso.COM", true},
      {"*.contoso.com", "a.contoso.com.", true},
      {"*", "anything.example", true},
      {"*", "hv-a", true},
      {"*", "", false},
      {"hv-a.contoso.com", "HV-A.contoso.com", true},
      {"hv-a.contoso.com", "hv-a.contoso.com.", true},
      {"hv-a.contoso.com", "hv-b.contoso.com", false},
      {"hv-a.contoso.com", "x.hv-a.contoso.com", false},
      {"hv-a", "hv-a.contoso.com", false},
      {"", "hv-a", false},
  };
  for (const Match& m : table) {
    BOOST_TEST_CONTEXT(m.pattern << " vs " << m.host) { BOOST_TEST(host_matches(m.pattern, m.host) == m.expected); }
  }
}

BOOST_AUTO_TEST_CASE(host_names_follow_dns_rules) {
  BOOST_TEST(is_valid_host_name("hv-a"));
  BOOST_TEST(is_valid_host_name(std::string(63, 'a') + ".com"));
  BOOST_TEST(!is_valid_host_name(std::string(64, 'a') + ".com"));
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  long_name += "com";  // 253 characters
  BOOST_TEST(long_name.size() == 253u);
  BOOST_TEST(is_valid_host_name(long_name));
  BOOST_TEST(!is_valid_host_name(long_name + "x"));
  BOOST_TEST(!is_valid_host_name(""));
  BOOST_TEST(!is_valid_host_name("."));
  BOOST_TEST(!is_valid_host_name("h\xC3\xA9"));
}

BOOST_AUTO_TEST_SUITE_END()
