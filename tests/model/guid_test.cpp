#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <set>

#include "core/model/guid.h"

using namespace vmrepl;
namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(guid_tests)

BOOST_AUTO_TEST_CASE(parse_is_case_insensitive_and_prints_uppercase) {
  auto g = Guid::parse("3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  BOOST_REQUIRE(g.ok());
  BOOST_TEST(g->to_string() == "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  auto b = Guid::parse("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST((*g == *b));
}

static const char* kBad[] = {"", "3F2504E0", "3F2504E0-4F89-11D3-9A0C-0305E82C330",
                             "3F2504E0-4F89-11D3-9A0C-0305E82C33011", "3F2504E04F8911D39A0C0305E82C3301",
                             "3F2504E0-4F89-11D3-9A0C_0305E82C3301", "GF2504E0-4F89-11D3-9A0C-0305E82C3301",
                             "{3F2504E0-4F89-11D3-9A0C-0305E82C3301", "../../etc/passwd"};

BOOST_DATA_TEST_CASE(malformed_guids_are_invalid_parameter, bdata::make(kBad), text) {
  auto g = Guid::parse(text);
  BOOST_TEST(!g.ok());
  BOOST_TEST(g.status().number() == 32773u);
}

BOOST_AUTO_TEST_CASE(generate_gives_distinct_v4_guids) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    Guid g = Guid::generate();
    std::string s = g.to_string();
    BOOST_TEST(s[14] == '4');
    BOOST_TEST((s[19] == '8' || s[19] == '9' || s[19] == 'A' || s[19] == 'B'));
    auto back = Guid::parse(s);
    BOOST_REQUIRE(back.ok());
    BOOST_TEST((*back == g));
    seen.insert(s);
  }
  BOOST_TEST(seen.size() == 1000u);
  BOOST_TEST(Guid().is_nil());
}

BOOST_AUTO_TEST_SUITE_END()
