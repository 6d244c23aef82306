#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "core/model/status.h"

using namespace vmrepl;
namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(status_tests)

static const uint32_t kNumbers[] = {0, 4096, 32768, 32769, 32770, 32771, 32772,
                                    32773, 32774, 32775, 32776, 32777, 32778, 32779};
static const char* kNames[] = {"Completed", "JobStarted", "Failed", "AccessDenied", "NotSupported",
                               "Unknown", "Timeout", "InvalidParameter", "SystemInUse", "InvalidState",
                               "IncorrectDataType", "SystemNotAvailable", "OutOfMemory", "FileNotFound"};

BOOST_DATA_TEST_CASE(codes_have_the_seed_numbers_and_names, bdata::make(kNumbers) ^ bdata::make(kNames),
                     number, name) {
  BOOST_TEST(is_known_code(number));
  BOOST_TEST(code_name(number) == std::string(name));
}

BOOST_AUTO_TEST_CASE(named_factories_carry_code_and_message) {
  Status s = Status::InvalidState("ReplicationState is 3 (Replicating)");
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.number() == 32775u);
  BOOST_TEST(s.IsInvalidState());
  BOOST_TEST(s.ToString() == "InvalidState: ReplicationState is 3 (Replicating)");
  BOOST_TEST(Status::AccessDenied().message() == "Access denied");
  BOOST_TEST(Status::OK().ok());
}

BOOST_AUTO_TEST_CASE(unknown_numbers_are_named_unknown) {
  BOOST_TEST(!is_known_code(1));
  BOOST_TEST(!is_known_code(32780));
  BOOST_TEST(code_name(uint32_t{32780}) == "Unknown");
}

BOOST_AUTO_TEST_CASE(annotate_keeps_code) {
  Status s = Status::FileNotFound("disk0.img").Annotate("VM web01");
  BOOST_TEST(s.number() == 32779u);
  BOOST_TEST(s.message() == "VM web01: disk0.img");
  BOOST_TEST(Status::OK().Annotate("x").ok());
}

BOOST_AUTO_TEST_CASE(result_holds_value_or_status) {
  Result<int> a = 5;
  BOOST_TEST(a.ok());
  BOOST_TEST(*a == 5);
  Result<int> b = Status::Timeout("waited 10 ms");
  BOOST_TEST(!b.ok());
  BOOST_TEST(b.status().number() == 32772u);
  BOOST_TEST(a.status().ok());
}

BOOST_AUTO_TEST_SUITE_END()
