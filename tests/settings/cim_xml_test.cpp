// CIM-XML embedded instances: the spec's §11 example byte for byte, fetched instances with
// system properties, every property of every class, escapes, nulls, references.
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/settings/cim_xml.h"
#include "core/settings/schema.h"
#include "settings/fixtures_helper.h"

using namespace vmrepl;

namespace {

const Property& prop(const Instance& i, std::string_view name) {
  const Property* p = i.find(name);
  BOOST_REQUIRE_MESSAGE(p != nullptr, "no property " << name);
  return *p;
}

std::string str(const Instance& i, std::string_view name) {
  auto r = i.get_string(name);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

uint64_t u64(const Instance& i, std::string_view name) {
  auto r = i.get_u64(name);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

bool boolean(const Instance& i, std::string_view name) {
  auto r = i.get_bool(name);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

Instance decode_ok(std::string_view text, std::string_view expected = {}) {
  auto r = decode_cim_xml(text, expected);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

std::string rsd(std::string_view properties) {
  return "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">" + std::string(properties) + "</INSTANCE>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cim_xml_tests)

BOOST_AUTO_TEST_CASE(spec_example_decodes_to_exact_values) {
  Instance i = decode_ok(test::kSpecExample);
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  const char* order[] = {"InstanceID", "VirtualSystemIdentifier", "AuthenticationType", "CertificateThumbPrint",
                         "CompressionEnabled", "PrimaryConnectionPoint", "RecoveryConnectionPoint",
                         "RecoveryServerPortNumber", "RecoveryHistory", "ApplicationConsistentSnapshotInterval",
                         "ReplicationInterval", "IncludedDisks", "AutoResynchronizeIntervalStart"};
  BOOST_REQUIRE_EQUAL(i.properties().size(), std::size(order));
  for (std::size_t k = 0; k < std::size(order); ++k) BOOST_TEST(i.properties()[k].name == order[k]);

  BOOST_TEST(str(i, "InstanceID") == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0");
  BOOST_TEST(str(i, "VirtualSystemIdentifier") == "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  BOOST_TEST(u64(i, "AuthenticationType") == 1u);
  BOOST_TEST(prop(i, "CertificateThumbPrint").is_null());
  BOOST_TEST(boolean(i, "CompressionEnabled") == true);
  BOOST_TEST(str(i, "PrimaryConnectionPoint") == "hv-a.contoso.com");
  BOOST_TEST(str(i, "RecoveryConnectionPoint") == "hv-b.contoso.com");
  BOOST_TEST(u64(i, "RecoveryServerPortNumber") == 80u);
  BOOST_TEST(u64(i, "RecoveryHistory") == 24u);
  BOOST_TEST(u64(i, "ApplicationConsistentSnapshotInterval") == 4u);
  BOOST_TEST(u64(i, "ReplicationInterval") == 300u);
  auto disks = i.get_string_array("IncludedDisks");
  BOOST_REQUIRE(disks.ok());
  BOOST_REQUIRE_EQUAL(disks->size(), 1u);
  BOOST_TEST(disks->front() == test::kSpecExampleDisk);
  BOOST_TEST(disks->front().find("\\\\83F8638B") != std::string::npos);  // doubled, as written
  BOOST_TEST(str(i, "AutoResynchronizeIntervalStart") == "00000000183000.000000:000");
  BOOST_TEST(static_cast<int>(prop(i, "AutoResynchronizeIntervalStart").type) ==
             static_cast<int>(CimType::DateTime));
}

BOOST_AUTO_TEST_CASE(spec_example_reencodes_byte_for_byte) {
  BOOST_TEST(encode_cim_xml(decode_ok(test::kSpecExample)) == test::kSpecExample);
}

BOOST_AUTO_TEST_CASE(fetched_instance_ignores_system_properties) {
  Instance i = decode_ok(test::kFetchedInstance, "Msvm_ReplicationSettingData");
  for (const Property& p : i.properties()) BOOST_TEST(p.name.rfind("__", 0) != 0);
  BOOST_TEST(i.properties().size() == 29u);
  BOOST_TEST(prop(i, "AdditionalSettings").is_null());
  BOOST_TEST(prop(i, "AutomaticRecoveryAction").is_null());
  BOOST_TEST(str(i, "CertificateThumbPrint").empty());  // <VALUE></VALUE>: empty, not null
  BOOST_TEST(boolean(i, "BypassProxyServer") == false);  // "false"
  BOOST_TEST(boolean(i, "CompressionEnabled") == true);  // "True"
  BOOST_TEST(u64(i, "RecoveryHistory") == 0u);           // " 0 "
  BOOST_TEST(str(i, "InstanceID") == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0");
  BOOST_TEST(str(i, "CreationTime") == "20260925101500.000000+000");
  BOOST_TEST(prop(i, "Notes").is_null());
  BOOST_TEST(prop(i, "Notes").is_array);
  auto disks = i.get_string_array("IncludedDisks");
  BOOST_REQUIRE(disks.ok());
  BOOST_REQUIRE_EQUAL(disks->size(), 2u);
  BOOST_TEST((*disks)[0] == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D");
  BOOST_TEST((*disks)[1] == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\1\\D");
  // A structured VALUE.REFERENCE becomes the WMI object path string.
  BOOST_TEST(str(i, "ReplicationProvider") ==
             "\\\\HV-B\\root\\virtualization\\v2:Msvm_ReplicationProvider.Name=\"22391CDC-272C-4DDF-BA88-9BEFB1A0975C\"");
  BOOST_TEST(static_cast<int>(prop(i, "ReplicationProvider").type) == static_cast<int>(CimType::String));
}

BOOST_AUTO_TEST_CASE(every_property_of_every_class_round_trips) {
  for (const ClassSchema& c : class_schemas()) {
    for (const PropertySchema& p : c.properties) {
      BOOST_TEST_CONTEXT(c.name << "." << p.name) {
        Instance one(c.name);
        one.set(test::sample_property(p));
        const std::string text = encode_cim_xml(one);
        Instance back = decode_ok(text);
        BOOST_TEST((back == one));
        BOOST_TEST(encode_cim_xml(back) == text);

        Instance null_one(c.name);
        null_one.set(Property{p.name, p.type, p.is_array, std::nullopt});
        BOOST_TEST((decode_ok(encode_cim_xml(null_one)) == null_one));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(full_instances_round_trip_exactly) {
  for (const ClassSchema& c : class_schemas()) {
    BOOST_TEST_CONTEXT(c.name) {
      Instance full = test::full_instance(c.name);
      const std::string text = encode_cim_xml(full);
      Instance back = decode_ok(text);
      BOOST_TEST((back == full));
      BOOST_TEST(encode_cim_xml(back) == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(escapes_are_written_and_read_both_ways) {
  Instance i{std::string(kReplicationSettingDataClass)};
  i.set_string("Description", test::kAwkward);
  const std::string text = encode_cim_xml(i);
  BOOST_TEST(text ==
             "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">\n"
             "<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE> &lt;a &amp; b&gt; \"q\" 'x' \\\\H\\v \t\n&#13;\n&#1; "
             "\xC3\xA9\xE6\x97\xA5\xE6\x9C\xAC\xF0\x9F\x8E\x89 ]]&gt; </VALUE></PROPERTY>\n"
             "</INSTANCE>");
  BOOST_TEST(str(decode_ok(text), "Description") == test::kAwkward);

  Instance entities = decode_ok(rsd(
      "<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;<![CDATA[<&>]]></VALUE></PROPERTY>"));
  BOOST_TEST(str(entities, "Description") == "<>&\"'AB<&>");
}

BOOST_AUTO_TEST_CASE(booleans_read_in_any_case_and_write_uppercase) {
  Instance i = decode_ok(rsd("<PROPERTY NAME=\"CompressionEnabled\" TYPE=\"boolean\"><VALUE>tRuE</VALUE></PROPERTY>"
                             "<PROPERTY NAME=\"BypassProxyServer\" TYPE=\"boolean\"><VALUE>false</VALUE></PROPERTY>"));
  BOOST_TEST(boolean(i, "CompressionEnabled") == true);
  BOOST_TEST(boolean(i, "BypassProxyServer") == false);
  const std::string text = encode_cim_xml(i);
  BOOST_TEST(text.find("<VALUE>TRUE</VALUE>") != std::string::npos);
  BOOST_TEST(text.find("<VALUE>FALSE</VALUE>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(null_empty_and_blank_values_stay_distinct) {
  Instance i = decode_ok(rsd("<PROPERTY NAME=\"Caption\" TYPE=\"string\"></PROPERTY>"
                             "<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE></VALUE></PROPERTY>"
                             "<PROPERTY NAME=\"ElementName\" TYPE=\"string\"><VALUE/></PROPERTY>"
                             "<PROPERTY NAME=\"AdditionalSettings\" TYPE=\"string\"><VALUE> </VALUE></PROPERTY>"
                             "<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"string\"><VALUE.ARRAY></VALUE.ARRAY></PROPERTY.ARRAY>"
                             "<PROPERTY.ARRAY NAME=\"Notes\" TYPE=\"string\"/>"));
  BOOST_TEST(prop(i, "Caption").is_null());
  BOOST_TEST(str(i, "Description") == "");
  BOOST_TEST(str(i, "ElementName") == "");
  BOOST_TEST(str(i, "AdditionalSettings") == " ");
  BOOST_REQUIRE(prop(i, "IncludedDisks").values.has_value());
  BOOST_TEST(prop(i, "IncludedDisks").values->empty());
  BOOST_TEST(prop(i, "Notes").is_null());
  BOOST_TEST(encode_cim_xml(i) ==
             "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">\n"
             "<PROPERTY NAME=\"Caption\" TYPE=\"string\"></PROPERTY>\n"
             "<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE></VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"ElementName\" TYPE=\"string\"><VALUE></VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"AdditionalSettings\" TYPE=\"string\"><VALUE> </VALUE></PROPERTY>\n"
             "<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"string\"><VALUE.ARRAY></VALUE.ARRAY></PROPERTY.ARRAY>\n"
             "<PROPERTY.ARRAY NAME=\"Notes\" TYPE=\"string\"></PROPERTY.ARRAY>\n"
             "</INSTANCE>");
}

BOOST_AUTO_TEST_CASE(references_are_accepted_as_strings) {
  Instance i = decode_ok(rsd(
      "<PROPERTY NAME=\"ReplicationProvider\" TYPE=\"reference\"><VALUE>Msvm_ReplicationProvider.Name=\"X\"</VALUE></PROPERTY>"
      "<PROPERTY.REFERENCE NAME=\"AdditionalSettings\"><VALUE.REFERENCE><LOCALINSTANCEPATH><LOCALNAMESPACEPATH>"
      "<NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"virtualization\"/><NAMESPACE NAME=\"v2\"/></LOCALNAMESPACEPATH>"
      "<INSTANCENAME CLASSNAME=\"Msvm_StorageAllocationSettingData\"><KEYBINDING NAME=\"InstanceID\">"
      "<KEYVALUE VALUETYPE=\"string\">Microsoft:A\\B\"C</KEYVALUE></KEYBINDING><KEYBINDING NAME=\"Index\">"
      "<KEYVALUE VALUETYPE=\"numeric\">3</KEYVALUE></KEYBINDING></INSTANCENAME></LOCALINSTANCEPATH>"
      "</VALUE.REFERENCE></PROPERTY.REFERENCE>"
      "<PROPERTY.REFERENCE NAME=\"Description\"><VALUE.REFERENCE>plain path text</VALUE.REFERENCE></PROPERTY.REFERENCE>"
      "<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"reference\"><VALUE.REFARRAY>"
      "<VALUE.REFERENCE><INSTANCENAME CLASSNAME=\"Msvm_Singleton\"/></VALUE.REFERENCE>"
      "<VALUE.REFERENCE><INSTANCENAME CLASSNAME=\"Msvm_Disk\"><KEYVALUE>d1</KEYVALUE></INSTANCENAME></VALUE.REFERENCE>"
      "</VALUE.REFARRAY></PROPERTY.ARRAY>"));
  BOOST_TEST(str(i, "ReplicationProvider") == "Msvm_ReplicationProvider.Name=\"X\"");
  BOOST_TEST(str(i, "AdditionalSettings") ==
             "root\\virtualization\\v2:Msvm_StorageAllocationSettingData.InstanceID=\"Microsoft:A\\\\B\\\"C\",Index=3");
  BOOST_TEST(str(i, "Description") == "plain path text");
  auto disks = i.get_string_array("IncludedDisks");
  BOOST_REQUIRE(disks.ok());
  BOOST_TEST(*disks == (std::vector<std::string>{"Msvm_Singleton=@", "Msvm_Disk=\"d1\""}),
             boost::test_tools::per_element());
  for (const Property& p : i.properties())
    BOOST_TEST(static_cast<int>(p.type) == static_cast<int>(CimType::String));
}

BOOST_AUTO_TEST_CASE(encoding_is_schema_free) {
  Instance job("Msvm_ConcreteJob");
  job.set_string("InstanceID", "8F6E4A28-5D2B-4C1E-9A7B-2E3F4A5B6C7D");
  job.set_u16("JobState", 7);
  job.set_sint("Priority", CimType::SInt32, -5);
  job.set_real("Ratio", 0.1);
  job.set_bool("Cancellable", false);
  job.set_datetime("ElapsedTime", "00000000000012.500000:000");
  job.set_string("Owner", "Msvm_ComputerSystem.Name=\"A\"", CimType::Reference);
  job.set_uint_array("Codes", CimType::UInt32, {1, 4294967295u});
  job.set_null("ErrorDescription", CimType::String);
  BOOST_TEST(encode_cim_xml(job) ==
             "<INSTANCE CLASSNAME=\"Msvm_ConcreteJob\">\n"
             "<PROPERTY NAME=\"InstanceID\" TYPE=\"string\"><VALUE>8F6E4A28-5D2B-4C1E-9A7B-2E3F4A5B6C7D</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"JobState\" TYPE=\"uint16\"><VALUE>7</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"Priority\" TYPE=\"sint32\"><VALUE>-5</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"Ratio\" TYPE=\"real64\"><VALUE>0.1</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"Cancellable\" TYPE=\"boolean\"><VALUE>FALSE</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"ElapsedTime\" TYPE=\"datetime\"><VALUE>00000000000012.500000:000</VALUE></PROPERTY>\n"
             "<PROPERTY NAME=\"Owner\" TYPE=\"reference\"><VALUE>Msvm_ComputerSystem.Name=\"A\"</VALUE></PROPERTY>\n"
             "<PROPERTY.ARRAY NAME=\"Codes\" TYPE=\"uint32\"><VALUE.ARRAY><VALUE>1</VALUE><VALUE>4294967295</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>\n"
             "<PROPERTY NAME=\"ErrorDescription\" TYPE=\"string\"></PROPERTY>\n"
             "</INSTANCE>");
  // Decoding needs a schema: a job is not setting data.
  auto r = decode_cim_xml(encode_cim_xml(job));
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message().find("unknown class 'Msvm_ConcreteJob'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(expected_class_is_enforced_and_matched_case_insensitively) {
  auto wrong = decode_cim_xml(test::kSpecExample, "Msvm_ReplicationServiceSettingData");
  BOOST_TEST(wrong.status().number() == 32773u);
  BOOST_TEST(wrong.status().message() ==
             "setting data is an instance of 'Msvm_ReplicationSettingData', expected "
             "'Msvm_ReplicationServiceSettingData'");
  Instance i = decode_ok(test::kSpecExample, "msvm_replicationsettingdata");
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
}

BOOST_AUTO_TEST_CASE(names_take_the_schema_spelling) {
  Instance i = decode_ok("<INSTANCE CLASSNAME=\"MSVM_REPLICATIONSETTINGDATA\">"
                         "<PROPERTY NAME=\"replicationinterval\" TYPE=\"UINT16\"><VALUE>900</VALUE></PROPERTY></INSTANCE>");
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_REQUIRE_EQUAL(i.properties().size(), 1u);
  BOOST_TEST(i.properties()[0].name == "ReplicationInterval");
  BOOST_TEST(u64(i, "ReplicationInterval") == 900u);
}

BOOST_AUTO_TEST_CASE(declaration_bom_comments_and_qualifiers_are_accepted) {
  Instance i = decode_ok("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- exported -->\n"
                         "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">"
                         "<QUALIFIER NAME=\"dynamic\" TYPE=\"boolean\"><VALUE>TRUE</VALUE></QUALIFIER>"
                         "<PROPERTY NAME=\"RecoveryHistory\" TYPE=\"uint16\"><!-- c --><VALUE>\n 4\n</VALUE></PROPERTY>"
                         "</INSTANCE>\n");
  BOOST_TEST(u64(i, "RecoveryHistory") == 4u);
}

BOOST_AUTO_TEST_SUITE_END()
