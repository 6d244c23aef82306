#include <boost/test/unit_test.hpp>

#include <random>

#include "core/net/frame.h"

using namespace vmrepl;

namespace {

std::vector<uint8_t> frame_of(const std::vector<uint8_t>& payload) { return *FrameEncoder::encode(payload); }

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(frame_tests)

BOOST_AUTO_TEST_CASE(header_is_big_endian_length) {
  auto h = FrameEncoder::header(0x01020304);
  BOOST_TEST((std::vector<uint8_t>(h.begin(), h.end()) == bytes({1, 2, 3, 4})));
  BOOST_TEST((frame_of(bytes({0xAA, 0xBB})) == bytes({0, 0, 0, 2, 0xAA, 0xBB})));
}

BOOST_AUTO_TEST_CASE(several_frames_in_one_buffer_round_trip) {
  std::vector<uint8_t> a = bytes({1}), b(70000, 7), c = bytes({9, 8, 7});
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> out;
  BOOST_TEST(d.feed(concat({frame_of(a), frame_of(b), frame_of(c)}), out).ok());
  BOOST_TEST(out.size() == 3u);
  BOOST_TEST((out[0] == a));
  BOOST_TEST((out[1] == b));
  BOOST_TEST((out[2] == c));
  BOOST_TEST(!d.mid_frame());
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time_gives_the_same_frames) {
  std::vector<uint8_t> a(300, 1), b = bytes({5, 6});
  std::vector<uint8_t> stream = concat({frame_of(a), frame_of(b)});
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> out;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    BOOST_TEST_REQUIRE(d.feed(std::span(stream).subspan(i, 1), out).ok());
    bool last_of_a_frame = (i == 4 + a.size() - 1) || (i == stream.size() - 1);
    BOOST_TEST(d.mid_frame() == !last_of_a_frame);
  }
  BOOST_TEST(out.size() == 2u);
  BOOST_TEST((out[0] == a));
  BOOST_TEST((out[1] == b));
}

BOOST_AUTO_TEST_CASE(consume_stops_after_each_frame) {
  std::vector<uint8_t> stream = concat({frame_of(bytes({1, 2})), frame_of(bytes({3}))});
  FrameDecoder d;
  auto used = d.consume(stream);
  BOOST_TEST(*used == 6u);
  BOOST_TEST(d.frame_ready());
  BOOST_TEST(*d.consume(std::span(stream).subspan(6)) == 0u);  // nothing while one is ready
  BOOST_TEST((d.take_frame() == bytes({1, 2})));
  BOOST_TEST(*d.consume(std::span(stream).subspan(6)) == 5u);
  BOOST_TEST((d.take_frame() == bytes({3})));
}

BOOST_AUTO_TEST_CASE(zero_length_prefix_is_refused) {
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> out;
  Status s = d.feed(bytes({0, 0, 0, 0, 1}), out);
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "empty frame (length prefix 0)");
}

BOOST_AUTO_TEST_CASE(oversized_prefix_is_refused_before_any_allocation) {
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> out;
  Status s = d.feed(bytes({0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3}), out);
  BOOST_TEST(s.number() == 32773u);
  BOOST_TEST(s.message() == "frame of 4294967295 bytes exceeds the 8388608-byte limit");
  BOOST_TEST(d.held_bytes() == 4u);
  BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(limit_is_inclusive_and_configurable) {
  FrameDecoder d(16);
  std::vector<std::vector<uint8_t>> out;
  BOOST_TEST(d.feed(frame_of(std::vector<uint8_t>(16, 1)), out).ok());
  BOOST_TEST(out.size() == 1u);
  Status s = d.feed(bytes({0, 0, 0, 17}), out);
  BOOST_TEST(s.message() == "frame of 17 bytes exceeds the 16-byte limit");
  BOOST_TEST(FrameEncoder::check(17, 16).message() == "frame of 17 bytes exceeds the 16-byte limit");
  BOOST_TEST(FrameEncoder::check(0, 16).message() == "empty frame");
  BOOST_TEST(!FrameEncoder::encode({}, 16).ok());
}

BOOST_AUTO_TEST_CASE(errors_are_sticky) {
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> out;
  BOOST_TEST(!d.feed(bytes({0, 0, 0, 0}), out).ok());
  BOOST_TEST(d.failed());
  Status again = d.feed(frame_of(bytes({1})), out);
  BOOST_TEST(again.message() == "empty frame (length prefix 0)");
  BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(memory_held_grows_with_bytes_received_never_past_the_limit) {
  const uint32_t max = 1u << 20;
  FrameDecoder d(max);
  std::vector<std::vector<uint8_t>> out;
  BOOST_TEST(d.feed(bytes({0, 0x10, 0, 0}), out).ok());  // announces exactly 1 MiB
  BOOST_TEST(d.held_bytes() <= 4u + (64u << 10));       // not 1 MiB on the announcement alone
  std::vector<uint8_t> chunk(1000, 3);
  std::size_t sent = 0;
  while (out.empty()) {
    std::size_t n = std::min(chunk.size(), std::size_t{max} - sent);
    BOOST_TEST_REQUIRE(d.feed(std::span(chunk).first(n), out).ok());
    sent += n;
    BOOST_TEST_REQUIRE(d.held_bytes() <= max + 4u);
    BOOST_TEST_REQUIRE(d.held_bytes() <= 4 + std::max<std::size_t>(4 * sent, 64u << 10));
  }
  BOOST_TEST(out[0].size() == max);
}

BOOST_AUTO_TEST_CASE(random_garbage_never_breaks_the_bounds) {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    FrameDecoder d(4096);
    std::vector<uint8_t> junk(rng() % 64);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (junk.size() >= 4 && (round % 2)) junk[0] = junk[1] = 0;  // plausible small lengths too
    std::vector<std::vector<uint8_t>> out;
    Status s = d.feed(junk, out);
    BOOST_TEST_REQUIRE(d.held_bytes() <= 4096u + 4u);
    if (!s.ok()) BOOST_TEST_REQUIRE((s.number() == 32773u || s.number() == 32776u));
    for (const auto& f : out) BOOST_TEST_REQUIRE((!f.empty() && f.size() <= 4096u));
  }
}

BOOST_AUTO_TEST_SUITE_END()
