#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "core/model/cim_datetime.h"

using namespace vmrepl;
namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(cim_datetime_tests)

BOOST_AUTO_TEST_CASE(point_in_time_round_trip) {
  auto t = parse_cim_datetime("20260925101500.000000+000");
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t->year == 2026);
  BOOST_TEST(t->month == 9);
  BOOST_TEST(t->day == 25);
  BOOST_TEST(t->hour == 10);
  BOOST_TEST(t->minute == 15);
  BOOST_TEST(t->format() == "20260925101500.000000+000");
  auto neg = parse_cim_datetime("20260925101500.123456-480");
  BOOST_REQUIRE(neg.ok());
  BOOST_TEST(neg->utc_offset_minutes == -480);
  BOOST_TEST(neg->microsecond == 123456);
  BOOST_TEST(neg->format() == "20260925101500.123456-480");
}

BOOST_AUTO_TEST_CASE(unix_conversion) {
  auto t = parse_cim_datetime("19700101000001.000002+000");
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t->to_unix_us() == 1000002);
  auto east = parse_cim_datetime("19700101010000.000000+060");
  BOOST_TEST(east->to_unix_us() == 0);
  CimDateTime back = CimDateTime::from_unix_us(1790000000123456);
  BOOST_TEST(back.to_unix_us() == 1790000000123456);
  BOOST_TEST(parse_cim_datetime(back.format()).ok());
  auto leap = parse_cim_datetime("20240229000000.000000+000");
  BOOST_TEST(leap.ok());
}

BOOST_AUTO_TEST_CASE(intervals) {
  auto iv = parse_cim_interval("00000000183000.000000:000");
  BOOST_REQUIRE(iv.ok());
  BOOST_TEST(iv->hours == 18);
  BOOST_TEST(iv->minutes == 30);
  BOOST_TEST(iv->format() == "00000000183000.000000:000");
  BOOST_TEST(iv->total_us() == int64_t(18 * 3600 + 30 * 60) * 1000000);
  BOOST_TEST(CimInterval::from_us(300LL * 1000000).format() == "00000000000500.000000:000");
  BOOST_TEST(CimInterval::from_us(90061000001LL).format() == "00000001010101.000001:000");
}

static const char* kBadPoints[] = {"", "2026", "20260925101500.000000+00", "20260925101500.000000+0000",
                                   "20261325101500.000000+000", "20260230101500.000000+000",
                                   "20230229101500.000000+000", "20260925251500.000000+000",
                                   "20260925101500,000000+000", "2026092510150a.000000+000",
                                   "00000000183000.000000:000", "20260925101500.000000*000"};
BOOST_DATA_TEST_CASE(bad_points_are_incorrect_data_type, bdata::make(kBadPoints), s) {
  auto r = parse_cim_datetime(s);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().number() == 32776u);
}

static const char* kBadIntervals[] = {"", "00000000183000.000000+000", "00000000243000.000000:000",
                                      "00000000186000.000000:000", "0000000018300.000000:000",
                                      "00000000183000.000000:001", "x0000000183000.000000:000"};
BOOST_DATA_TEST_CASE(bad_intervals_are_incorrect_data_type, bdata::make(kBadIntervals), s) {
  auto r = parse_cim_interval(s);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().number() == 32776u);
}

BOOST_AUTO_TEST_SUITE_END()
