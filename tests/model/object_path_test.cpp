#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "core/model/object_path.h"

using namespace vmrepl;
namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(object_path_tests)

BOOST_AUTO_TEST_CASE(full_computer_system_path) {
  std::string text =
      "\\\\HV-A\\root\\virtualization\\v2:Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\","
      "Name=\"EAE43A5D-86F9-4DE2-AED2-0B2374374A0F\"";
  auto p = ObjectPath::parse(text);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->host == "HV-A");
  BOOST_TEST(p->name_space == "root\\virtualization\\v2");
  BOOST_TEST(p->class_name == "Msvm_ComputerSystem");
  BOOST_REQUIRE(p->keys.size() == 2u);
  BOOST_TEST(*p->key("Name") == "EAE43A5D-86F9-4DE2-AED2-0B2374374A0F");
  BOOST_TEST(*p->key("CreationClassName") == "Msvm_ComputerSystem");
  BOOST_TEST(p->format() == text);
  BOOST_TEST((*p == ObjectPath::computer_system("HV-A", "EAE43A5D-86F9-4DE2-AED2-0B2374374A0F")));
}

BOOST_AUTO_TEST_CASE(relative_path_round_trips) {
  std::string text = "Msvm_ComputerSystem.CreationClassName=\"Msvm_ComputerSystem\",Name=\"X\"";
  auto p = ObjectPath::parse(text);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->host.empty());
  BOOST_TEST(p->format() == text);
}

BOOST_AUTO_TEST_CASE(doubled_backslashes_in_keys_are_unescaped_and_restored) {
  std::string text =
      "\\\\HV-A\\root\\virtualization\\v2:Msvm_StorageAllocationSettingData.InstanceID="
      "\"Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\\\0\\\\0\\\\D\"";
  auto p = ObjectPath::parse(text);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(*p->key("InstanceID") ==
             "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D");
  BOOST_TEST(p->format() == text);
}

BOOST_AUTO_TEST_CASE(numeric_keys_and_escaped_quotes) {
  auto p = ObjectPath::parse("Cls.A=12,B=\"say \\\"hi\\\"\"");
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(*p->key("A") == "12");
  BOOST_TEST(*p->key("B") == "say \"hi\"");
  BOOST_TEST(p->key("C") == nullptr);
}

static const char* kBad[] = {
    "", "Msvm_ComputerSystem", "Msvm_ComputerSystem.", ".Name=\"x\"", "Msvm_ComputerSystem.Name",
    "Msvm_ComputerSystem.Name=", "Msvm_ComputerSystem.Name=\"x", "Msvm_ComputerSystem.Name=\"x\\",
    "Msvm_ComputerSystem.Name=\"x\"Name2=\"y\"", "Msvm_ComputerSystem.Name=\"x\",", "\\\\HOST",
    "\\\\HOST\\root\\virtualization\\v2", "\\\\\\ns:Cls.K=\"v\"", "Msvm_ComputerSystem.Name=\"a\",Name=\"b\"",
    "Msvm ComputerSystem.Name=\"x\"", "Cls.K=abc", "Cls.K=-",
};

BOOST_DATA_TEST_CASE(malformed_paths_are_invalid_parameter, bdata::make(kBad), text) {
  auto p = ObjectPath::parse(text);
  BOOST_TEST(!p.ok());
  BOOST_TEST(p.status().number() == 32773u);
  BOOST_TEST(p.status().message().find("object path") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bounded_length_and_keys) {
  std::string huge = "Cls.K=\"" + std::string(5000, 'a') + "\"";
  BOOST_TEST(ObjectPath::parse(huge).status().number() == 32773u);
  std::string many = "Cls.";
  for (int i = 0; i < 40; ++i) many += (i ? ",K" : "K") + std::to_string(i) + "=1";
  auto r = ObjectPath::parse(many);
  BOOST_TEST(r.status().number() == 32773u);
  BOOST_TEST(r.status().message().find("32 keys") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
