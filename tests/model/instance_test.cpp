#include <boost/test/unit_test.hpp>

#include "core/model/instance.h"

using namespace vmrepl;

BOOST_AUTO_TEST_SUITE(instance_tests)

BOOST_AUTO_TEST_CASE(typed_set_and_get) {
  Instance i("Msvm_ReplicationSettingData");
  i.set_u16("ReplicationInterval", 300)
      .set_bool("CompressionEnabled", true)
      .set_string("RecoveryConnectionPoint", "hv-b")
      .set_string_array("IncludedDisks", {"a", "b"})
      .set_null("CertificateThumbPrint", CimType::String)
      .set_sint("Offset", CimType::SInt32, -5);
  BOOST_TEST(i.class_name() == "Msvm_ReplicationSettingData");
  BOOST_TEST(*i.get_u64("ReplicationInterval") == 300u);
  BOOST_TEST(*i.get_bool("CompressionEnabled"));
  BOOST_TEST(*i.get_string("RecoveryConnectionPoint") == "hv-b");
  BOOST_TEST((*i.get_string_array("IncludedDisks") == std::vector<std::string>{"a", "b"}));
  BOOST_TEST(*i.get_i64("Offset") == -5);
  BOOST_TEST(*i.get_i64("ReplicationInterval") == 300);
  BOOST_TEST(i.find("CertificateThumbPrint")->is_null());
  BOOST_TEST(i.properties().size() == 6u);
}

BOOST_AUTO_TEST_CASE(unknown_is_invalid_parameter_and_wrong_type_is_incorrect_data_type) {
  Instance i("X");
  i.set_string("S", "v").set_null("N", CimType::UInt16).set_sint("Neg", CimType::SInt16, -1);
  auto a = i.get_u64("Missing");
  BOOST_TEST(a.status().number() == 32773u);
  BOOST_TEST(a.status().message().find("Missing") != std::string::npos);
  auto b = i.get_u64("S");
  BOOST_TEST(b.status().number() == 32776u);
  BOOST_TEST(b.status().message().find("S is string") != std::string::npos);
  BOOST_TEST(i.get_u64("N").status().number() == 32776u);
  BOOST_TEST(i.get_u64("Neg").status().number() == 32776u);
  BOOST_TEST(i.get_bool("S").status().number() == 32776u);
  BOOST_TEST(i.get_string_array("S").status().number() == 32776u);
  BOOST_TEST(!i.u64_or_null("N").has_value());
}

BOOST_AUTO_TEST_CASE(setting_again_replaces_in_place) {
  Instance i("X");
  i.set_u16("A", 1).set_u16("B", 2).set_u16("A", 3);
  BOOST_REQUIRE(i.properties().size() == 2u);
  BOOST_TEST(i.properties()[0].name == "A");
  BOOST_TEST(*i.get_u64("A") == 3u);
  BOOST_TEST(i.remove("A"));
  BOOST_TEST(!i.remove("A"));
  BOOST_TEST(!i.has("A"));
}

BOOST_AUTO_TEST_CASE(type_names) {
  BOOST_TEST(cim_type_name(CimType::UInt16) == "uint16");
  BOOST_TEST((*cim_type_from_name("datetime") == CimType::DateTime));
  BOOST_TEST(!cim_type_from_name("uint128").has_value());
  BOOST_TEST(cim_type_max_unsigned(CimType::UInt16) == 65535u);
  BOOST_TEST(cim_type_min_signed(CimType::SInt8) == -128);
}

BOOST_AUTO_TEST_SUITE_END()
