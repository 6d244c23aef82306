// BufferPool: large buffers come back warm (the same memory), small and oversized ones are
// not kept, and what is kept stays under its byte bound, oldest dropped first.
#include "core/blocks/buffer_pool.h"

#include <boost/test/unit_test.hpp>
#include <thread>
#include <vector>

namespace vmrepl {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

BOOST_AUTO_TEST_SUITE(buffer_pool_tests)

BOOST_AUTO_TEST_CASE(a_given_buffer_is_taken_back_empty_with_its_memory) {
  BufferPool pool(16 * kMiB, 8 * kMiB);
  std::vector<uint8_t> b(4 * kMiB, 7);
  const uint8_t* mem = b.data();
  pool.give(std::move(b));
  BOOST_TEST(pool.kept() == 1u);
  BOOST_TEST(pool.kept_bytes() >= 4 * kMiB);
  std::vector<uint8_t> again = pool.take(1 * kMiB);
  BOOST_TEST(again.empty());
  BOOST_TEST(again.capacity() >= 4 * kMiB);
  BOOST_TEST(again.data() == mem);  // the same pages, not a fresh allocation
  BOOST_TEST(pool.kept() == 0u);
  BOOST_TEST(pool.kept_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(take_allocates_when_nothing_fits_and_try_take_never_does) {
  BufferPool pool(16 * kMiB, 8 * kMiB);
  std::vector<uint8_t> small(1 * kMiB);
  pool.give(std::move(small));
  std::vector<uint8_t> none = pool.try_take(2 * kMiB);  // the kept one is too small
  BOOST_TEST(none.capacity() == 0u);
  BOOST_TEST(pool.kept() == 1u);
  std::vector<uint8_t> fresh = pool.take(2 * kMiB);
  BOOST_TEST(fresh.capacity() >= 2 * kMiB);
  BOOST_TEST(pool.kept() == 1u);  // the 1 MiB one is still there
  BOOST_TEST(pool.try_take(0).capacity() >= 1 * kMiB);
}

BOOST_AUTO_TEST_CASE(small_and_oversized_buffers_are_not_kept) {
  BufferPool pool(64 * kMiB, 8 * kMiB);
  pool.give(std::vector<uint8_t>(BufferPool::kMinPooledCapacity - 1));
  pool.give(std::vector<uint8_t>(9 * kMiB));
  pool.give(std::vector<uint8_t>());
  BOOST_TEST(pool.kept() == 0u);
  BOOST_TEST(pool.kept_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(kept_bytes_stay_under_the_bound_oldest_dropped_first) {
  BufferPool pool(10 * kMiB, 8 * kMiB);
  std::vector<const uint8_t*> mem;
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> b(4 * kMiB);
    mem.push_back(b.data());
    pool.give(std::move(b));
    BOOST_TEST_REQUIRE(pool.kept_bytes() <= 10 * kMiB);
  }
  BOOST_TEST(pool.kept() == 2u);
  // The two most recent remain, the most recent first.
  BOOST_TEST(pool.take(0).data() == mem[4]);
  BOOST_TEST(pool.take(0).data() == mem[3]);
  BOOST_TEST(pool.take(0).capacity() == 0u);
}

BOOST_AUTO_TEST_CASE(threads_share_a_pool) {
  BufferPool pool(32 * kMiB, 2 * kMiB);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&pool] {
      for (int i = 0; i < 2000; ++i) {
        std::vector<uint8_t> b = pool.take(kMiB);
        BOOST_REQUIRE(b.empty() && b.capacity() >= kMiB);
        b.resize(1000, 1);
        pool.give(std::move(b));
      }
    });
  for (auto& t : ts) t.join();
  BOOST_TEST(pool.kept() >= 1u);
  BOOST_TEST(pool.kept() <= 4u);
  BOOST_TEST(pool.kept_bytes() <= 32 * kMiB);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vmrepl
