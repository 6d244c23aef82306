// All-zero detection: every length and every position of a single non-zero byte around the
// 8-byte and 256-byte strides, unaligned starts, and its speed relative to hashing.
#include "core/blocks/zero.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <vector>

#include "core/blocks/hash.h"

namespace vmrepl {

BOOST_AUTO_TEST_SUITE(zero_tests)

BOOST_AUTO_TEST_CASE(empty_buffer_is_zero) { BOOST_TEST(is_all_zero({})); }

BOOST_AUTO_TEST_CASE(one_nonzero_byte_anywhere_is_detected) {
  // Every length up to 2 strides + a tail, every position, at several misalignments.
  std::vector<std::byte> buf(600 + 16);
  for (std::size_t align : {0, 1, 7, 8, 15}) {
    for (std::size_t n = 1; n <= 600; ++n) {
      auto span = std::span(buf).subspan(align, n);
      BOOST_REQUIRE(is_all_zero(span));
      for (std::size_t p = 0; p < n; ++p) {
        span[p] = std::byte{0x80};
        if (is_all_zero(span)) BOOST_FAIL("missed byte " << p << " of " << n << " at +" << align);
        span[p] = std::byte{0};
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(large_blocks_with_one_bit_at_the_edges) {
  for (std::size_t n : {4096u, 65536u, 65537u, 1u << 20}) {
    std::vector<std::byte> buf(n);
    BOOST_TEST(is_all_zero(buf));
    for (std::size_t p : {std::size_t{0}, std::size_t{255}, std::size_t{256}, n / 2, n - 257,
                          n - 9, n - 8, n - 1}) {
      buf[p] = std::byte{1};
      BOOST_TEST(!is_all_zero(buf), "length " << n << " position " << p);
      buf[p] = std::byte{0};
    }
    BOOST_TEST(is_all_zero(buf));
  }
}

BOOST_AUTO_TEST_CASE(zero_check_is_faster_than_hashing) {
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
  BOOST_TEST_MESSAGE("skipped: unoptimized or sanitized builds distort timings");
#else
  // 256 KiB stays in L2, so both run on cached data (the scanner's situation after pread).
  std::vector<std::byte> buf(256 << 10);
  auto best = [&](auto&& fn) {
    double b = 1e9;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 200; ++i) fn();
      b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return b;
  };
  volatile bool sink = false;
  const double zero = best([&] { sink = is_all_zero(buf); });
  const double hash = best([&] { sink = hash_bytes(HashAlgorithm::Xxh3_128, buf).bytes[0] == 0; });
  const double gbs = 200.0 * buf.size() / 1e9;
  BOOST_TEST_MESSAGE("zero check " << gbs / zero << " GB/s, XXH3-128 " << gbs / hash << " GB/s");
  BOOST_TEST(zero < hash);
#endif
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
