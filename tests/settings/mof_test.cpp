// MOF instance text: the canonical layout, the grammar a person writes by hand (comments, any
// case, hex, concatenation, escapes), every property of every class.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/settings/cim_xml.h"
#include "core/settings/mof.h"
#include "core/settings/schema.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

Instance decode_ok(std::string_view text, std::string_view expected = {}) {
  auto r = decode_mof(text, expected);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

std::string str(const Instance& i, std::string_view name) {
  auto r = i.get_string(name);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mof_tests)

BOOST_AUTO_TEST_CASE(spec_example_has_this_canonical_mof) {
  auto xml = decode_cim_xml(test::kSpecExample);
  BOOST_REQUIRE(xml.ok());
  const std::string expected =
      "instance of Msvm_ReplicationSettingData\n"
      "{\n"
      "\tInstanceID = \"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\\\HVR\\\\0\";\n"
      "\tVirtualSystemIdentifier = \"3F2504E0-4F89-11D3-9A0C-0305E82C3301\";\n"
      "\tAuthenticationType = 1;\n"
      "\tCertificateThumbPrint = NULL;\n"
      "\tCompressionEnabled = TRUE;\n"
      "\tPrimaryConnectionPoint = \"hv-a.contoso.com\";\n"
      "\tRecoveryConnectionPoint = \"hv-b.contoso.com\";\n"
      "\tRecoveryServerPortNumber = 80;\n"
      "\tRecoveryHistory = 24;\n"
      "\tApplicationConsistentSnapshotInterval = 4;\n"
      "\tReplicationInterval = 300;\n"
      "\tIncludedDisks = {\"\\\\\\\\HV-A\\\\root\\\\virtualization\\\\v2:Msvm_StorageAllocationSettingData.InstanceID="
      "\\\"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\\\\\\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\\\\\\\0\\\\\\\\0"
      "\\\\\\\\D\\\"\"};\n"
      "\tAutoResynchronizeIntervalStart = \"00000000183000.000000:000\";\n"
      "};\n";
  BOOST_TEST(encode_mof(*xml) == expected);
  Instance back = decode_ok(expected);
  BOOST_TEST((back == *xml));
  BOOST_TEST(encode_mof(back) == expected);
  BOOST_TEST(back.get_string_array("IncludedDisks")->front() == test::kSpecExampleDisk);
}

BOOST_AUTO_TEST_CASE(every_property_of_every_class_round_trips) {
  for (const ClassSchema& c : class_schemas()) {
    for (const PropertySchema& p : c.properties) {
      BOOST_TEST_CONTEXT(c.name << "." << p.name) {
        Instance one(c.name);
        one.set(test::sample_property(p));
        const std::string text = encode_mof(one);
        Instance back = decode_ok(text);
        BOOST_TEST((back == one));
        BOOST_TEST(encode_mof(back) == text);
        Instance null_one(c.name);
        null_one.set(Property{p.name, p.type, p.is_array, std::nullopt});
        BOOST_TEST((decode_ok(encode_mof(null_one)) == null_one));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(full_instances_round_trip_exactly) {
  for (const ClassSchema& c : class_schemas()) {
    BOOST_TEST_CONTEXT(c.name) {
      Instance full = test::full_instance(c.name);
      const std::string text = encode_mof(full);
      Instance back = decode_ok(text);
      BOOST_TEST((back == full));
      BOOST_TEST(encode_mof(back) == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(strings_use_mof_escapes) {
  Instance i{std::string(kReplicationSettingDataClass)};
  i.set_string("Description", test::kAwkward);
  BOOST_TEST(encode_mof(i) ==
             "instance of Msvm_ReplicationSettingData\n{\n"
             "\tDescription = \" <a & b> \\\"q\\\" 'x' \\\\\\\\H\\\\v \\t\\n\\r\\n\\x0001 "
             "\xC3\xA9\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x8E\x89 ]]> \";\n"
             "};\n");
  BOOST_TEST(str(decode_ok(encode_mof(i)), "Description") == test::kAwkward);
}

BOOST_AUTO_TEST_CASE(hand_written_mof_is_accepted) {
  Instance i = decode_ok(
      "// exported by hand\n"
      "INSTANCE OF msvm_replicationsettingdata /* any case */\n"
      "{\n"
      "  replicationinterval = 0x384;      // 900 in hex\n"
      "  RecoveryHistory=+4;\n"
      "  CompressionEnabled = true; BypassProxyServer = False;\n"
      "  Description = \"part one, \" \"part two \\x41\\xe9\\x65e5\";\n"
      "  IncludedDisks = { \"a\" , \"b\" \"c\" };\n"
      "  Notes = {};\n"
      "  Caption = null;\n"
      "  __PATH = \"ignored\";\n"
      "  __DERIVATION = {\"CIM_SettingData\", \"CIM_ManagedElement\"};\n"
      "};\n\n// trailing comment\n");
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_TEST(*i.get_u64("ReplicationInterval") == 900u);
  BOOST_TEST(*i.get_u64("RecoveryHistory") == 4u);
  BOOST_TEST(*i.get_bool("CompressionEnabled") == true);
  BOOST_TEST(*i.get_bool("BypassProxyServer") == false);
  BOOST_TEST(str(i, "Description") == "part one, part two A\xC3\xA9\xE6\x97\xA5");
  BOOST_TEST(*i.get_string_array("IncludedDisks") == (std::vector<std::string>{"a", "bc"}),
             boost::test_tools::per_element());
  BOOST_TEST(i.get_string_array("Notes")->empty());
  BOOST_TEST(i.find("Caption")->is_null());
  BOOST_TEST(!i.has("__PATH"));
  BOOST_TEST(i.properties().size() == 8u);
}

BOOST_AUTO_TEST_CASE(encoding_is_schema_free) {
  Instance job("Msvm_ConcreteJob");
  job.set_u16("JobState", 10);
  job.set_sint("Delta", CimType::SInt64, -9223372036854775807 - 1);
  job.set_real("Ratio", 1e300);
  job.set_string_array("Messages", {"a\"b", "c\\d"});
  job.set_null("ErrorCode", CimType::UInt16);
  BOOST_TEST(encode_mof(job) ==
             "instance of Msvm_ConcreteJob\n{\n"
             "\tJobState = 10;\n"
             "\tDelta = -9223372036854775808;\n"
             "\tRatio = 1e+300;\n"
             "\tMessages = {\"a\\\"b\", \"c\\\\d\"};\n"
             "\tErrorCode = NULL;\n"
             "};\n");
}

BOOST_AUTO_TEST_CASE(expected_class_is_enforced) {
  auto r = decode_mof("instance of Msvm_ReplicationAuthorizationSettingData\n{\n};\n", kReplicationSettingDataClass);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message().find("'Msvm_ReplicationAuthorizationSettingData'") != std::string::npos);
  BOOST_TEST(r.status().message().find("'Msvm_ReplicationSettingData'") != std::string::npos);
  Instance empty = decode_ok("instance of Msvm_ReplicationAuthorizationSettingData\n{\n};\n");
  BOOST_TEST(empty.properties().empty());
  BOOST_TEST(encode_mof(empty) == "instance of Msvm_ReplicationAuthorizationSettingData\n{\n};\n");
}

BOOST_AUTO_TEST_CASE(errors_carry_line_and_column) {
  auto r = decode_mof("instance of Msvm_ReplicationSettingData\n{\n\tRecoveryHistory = 4\n};\n");
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message() ==
             "MOF line 4, column 1: expected ';' after the value of RecoveryHistory, found '}'");
}

BOOST_AUTO_TEST_SUITE_END()
