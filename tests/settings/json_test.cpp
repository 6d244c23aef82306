// JSON setting data: canonical layout, __CLASS and the expected class, ignored `__*` keys,
// integer ranges, every property of every class.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/settings/cim_xml.h"
#include "core/settings/json.h"
#include "core/settings/schema.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

Instance decode_ok(std::string_view text, std::string_view expected = {}) {
  auto r = decode_json(text, expected);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_tests)

BOOST_AUTO_TEST_CASE(spec_example_has_this_canonical_json) {
  auto xml = decode_cim_xml(test::kSpecExample);
  BOOST_REQUIRE(xml.ok());
  const std::string expected =
      R"({"__CLASS":"Msvm_ReplicationSettingData",)"
      R"("InstanceID":"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0",)"
      R"("VirtualSystemIdentifier":"3F2504E0-4F89-11D3-9A0C-0305E82C3301",)"
      R"("AuthenticationType":1,"CertificateThumbPrint":null,"CompressionEnabled":true,)"
      R"("PrimaryConnectionPoint":"hv-a.contoso.com","RecoveryConnectionPoint":"hv-b.contoso.com",)"
      R"("RecoveryServerPortNumber":80,"RecoveryHistory":24,"ApplicationConsistentSnapshotInterval":4,)"
      R"("ReplicationInterval":300,"IncludedDisks":["\\\\HV-A\\root\\virtualization\\v2:)"
      R"(Msvm_StorageAllocationSettingData.InstanceID=\"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301)"
      R"(\\\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\\\0\\\\0\\\\D\""],)"
      R"("AutoResynchronizeIntervalStart":"00000000183000.000000:000"})";
  BOOST_TEST(encode_json(*xml) == expected);
  Instance back = decode_ok(expected);
  BOOST_TEST((back == *xml));
  BOOST_TEST(encode_json(back) == expected);
}

BOOST_AUTO_TEST_CASE(every_property_of_every_class_round_trips) {
  for (const ClassSchema& c : class_schemas()) {
    for (const PropertySchema& p : c.properties) {
      BOOST_TEST_CONTEXT(c.name << "." << p.name) {
        Instance one(c.name);
        one.set(test::sample_property(p));
        const std::string text = encode_json(one);
        Instance back = decode_ok(text);
        BOOST_TEST((back == one));
        BOOST_TEST(encode_json(back) == text);
        Instance null_one(c.name);
        null_one.set(Property{p.name, p.type, p.is_array, std::nullopt});
        BOOST_TEST((decode_ok(encode_json(null_one)) == null_one));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(full_instances_round_trip_exactly) {
  for (const ClassSchema& c : class_schemas()) {
    BOOST_TEST_CONTEXT(c.name) {
      Instance full = test::full_instance(c.name);
      const std::string text = encode_json(full);
      Instance back = decode_ok(text);
      BOOST_TEST((back == full));
      BOOST_TEST(encode_json(back) == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(missing_class_takes_the_expected_class) {
  Instance i = decode_ok(R"({"ReplicationInterval": 900, "CompressionEnabled": false})",
                         kReplicationSettingDataClass);
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_TEST(*i.get_u64("ReplicationInterval") == 900u);
  BOOST_TEST(*i.get_bool("CompressionEnabled") == false);
  auto none = decode_json(R"({"ReplicationInterval": 900})");
  BOOST_TEST(none.status().number() == 32773u);
  BOOST_TEST(none.status().message() == "JSON setting data names no class and none is expected");
}

BOOST_AUTO_TEST_CASE(system_keys_are_ignored_whatever_their_value) {
  Instance i = decode_ok(R"({
      "__PATH": "\\\\HV-B\\root\\virtualization\\v2:Msvm_ReplicationSettingData.InstanceID=\"x\"",
      "__DERIVATION": ["CIM_VirtualSystemSettingData", "CIM_SettingData"],
      "__GENUS": 2, "__PROPERTY_COUNT": 43,
      "__extra": {"nested": [1, {"deeper": [[]]}], "n": null},
      "__class": "msvm_replicationsettingdata",
      "RecoveryHistory": 3
  })");
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_REQUIRE_EQUAL(i.properties().size(), 1u);
  BOOST_TEST(*i.get_u64("RecoveryHistory") == 3u);
}

BOOST_AUTO_TEST_CASE(integers_use_the_full_type_range) {
  Instance i = decode_ok(R"({"__CLASS":"Msvm_ReplicationServiceSettingData",)"
                         R"("MonitoringInterval":4294967295,"HttpPort":65535,"HttpsPort":0})");
  BOOST_TEST(*i.get_u64("MonitoringInterval") == 4294967295u);
  BOOST_TEST(*i.get_u64("HttpPort") == 65535u);
  BOOST_TEST(*i.get_u64("HttpsPort") == 0u);
  auto over = decode_json(R"({"__CLASS":"Msvm_ReplicationServiceSettingData","MonitoringInterval":4294967296})");
  BOOST_TEST(over.status().number() == 32776u);
  BOOST_TEST(over.status().message() == "MonitoringInterval: 4294967296 is out of range for uint32 (0..4294967295)");
}

BOOST_AUTO_TEST_CASE(strings_keep_unicode_and_escapes) {
  Instance i{std::string(kReplicationSettingDataClass)};
  i.set_string("Description", test::kAwkward);
  const std::string text = encode_json(i);
  BOOST_TEST(text ==
             "{\"__CLASS\":\"Msvm_ReplicationSettingData\",\"Description\":\" <a & b> \\\"q\\\" 'x' \\\\\\\\H\\\\v "
             "\\t\\n\\r\\n\\u0001 \xC3\xA9\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x8E\x89 ]]> \"}");
  BOOST_TEST(*decode_ok(text).get_string("Description") == test::kAwkward);
  Instance escaped = decode_ok(R"({"__CLASS":"Msvm_ReplicationSettingData","Description":"\u00e9\ud83c\udf89\/"})");
  BOOST_TEST(*escaped.get_string("Description") == "\xC3\xA9\xF0\x9F\x8E\x89/");
}

BOOST_AUTO_TEST_CASE(encoding_is_schema_free_and_never_throws) {
  Instance job("Msvm_ConcreteJob");
  job.set_u16("JobState", 4);
  job.set_sint("Priority", CimType::SInt32, -1);
  job.set_real("Ratio", 0.5);
  job.set_string("Name", "bad \xFF byte");
  job.set_uint_array("Codes", CimType::UInt16, {});
  job.set_null("ErrorCode", CimType::UInt16);
  BOOST_TEST(encode_json(job) ==
             "{\"__CLASS\":\"Msvm_ConcreteJob\",\"JobState\":4,\"Priority\":-1,\"Ratio\":0.5,"
             "\"Name\":\"bad \xEF\xBF\xBD byte\",\"Codes\":[],\"ErrorCode\":null}");
  Instance anonymous;
  anonymous.set_bool("Flag", true);
  BOOST_TEST(encode_json(anonymous) == "{\"Flag\":true}");
}

BOOST_AUTO_TEST_CASE(expected_class_is_enforced) {
  auto r = decode_json(R"({"__CLASS":"Msvm_ReplicationSettingData"})", kReplicationAuthorizationSettingDataClass);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message() ==
             "setting data is an instance of 'Msvm_ReplicationSettingData', expected "
             "'Msvm_ReplicationAuthorizationSettingData'");
}

BOOST_AUTO_TEST_SUITE_END()
