// The one Boost.Test main shared by every C++ suite executable.
#define BOOST_TEST_MODULE vmrepl
#include <boost/test/unit_test.hpp>
