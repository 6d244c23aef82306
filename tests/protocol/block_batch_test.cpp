#include <boost/test/unit_test.hpp>

#include <zstd.h>

#include <numeric>

#include "core/protocol/block_batch.h"
#include "net/test_loop.h"
#include "protocol/samples.h"

using namespace vmrepl;
using namespace vmrepl::protocol;
using namespace vmrepl::test;

namespace {

constexpr uint32_t kBs = 4096;

BlockBatch header(std::vector<uint64_t> zero, std::vector<uint64_t> data) {
  BlockBatch b;
  b.seq = 1;
  b.vm_id = sample_guid(7);
  b.cycle_id = 3;
  b.disk = 0;
  b.zero_blocks = std::move(zero);
  b.data_blocks = std::move(data);
  return b;
}

// Compressible but not trivial: text-like repetition with a counter.
std::vector<uint8_t> compressible(std::size_t n) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>("replica block "[i % 14] + (i / 4096) % 3);
  return v;
}

std::vector<uint8_t> zstd_frame(const std::vector<uint8_t>& data, bool with_content_size = true) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, with_content_size ? 1 : 0);
  std::vector<uint8_t> out(ZSTD_compressBound(data.size()));
  std::size_t n;
  if (with_content_size) {
    n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
  } else {
    // Streaming without a pledged size leaves the content size out of the header.
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    ZSTD_inBuffer ib{data.data(), data.size(), 0};
    n = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
    BOOST_REQUIRE(n == 0);
    n = ob.pos;
  }
  ZSTD_freeCCtx(c);
  BOOST_REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A frame of `size` zero bytes, compressed piecewise so the test itself stays small in memory.
std::vector<uint8_t> zstd_zeros_frame(std::size_t size) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setPledgedSrcSize(c, size);
  std::vector<uint8_t> zeros(64u << 10, 0), out, chunk(ZSTD_CStreamOutSize());
  for (std::size_t fed = 0; fed < size;) {
    std::size_t n = std::min(zeros.size(), size - fed);
    fed += n;
    ZSTD_inBuffer ib{zeros.data(), n, 0};
    ZSTD_EndDirective mode = fed == size ? ZSTD_e_end : ZSTD_e_continue;
    std::size_t left;
    do {
      ZSTD_outBuffer ob{chunk.data(), chunk.size(), 0};
      left = ZSTD_compressStream2(c, &ob, &ib, mode);
      BOOST_REQUIRE(!ZSTD_isError(left));
      out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(ob.pos));
    } while (ib.pos < ib.size || (mode == ZSTD_e_end && left != 0));
  }
  ZSTD_freeCCtx(c);
  return out;
}

// Rewrites the Frame_Content_Size field of a zstd frame header (RFC 8878, 3.1.1.1).
void patch_content_size(std::vector<uint8_t>& frame, uint64_t size) {
  uint8_t fhd = frame[4];
  unsigned fcs_flag = fhd >> 6, single = (fhd >> 5) & 1, dict_flag = fhd & 3;
  std::size_t pos = 5 + (single ? 0 : 1) + (dict_flag == 0 ? 0 : dict_flag == 1 ? 1 : dict_flag == 2 ? 2 : 4);
  std::size_t width = fcs_flag == 0 ? (single ? 1 : 0) : (1u << fcs_flag);
  BOOST_REQUIRE(width > 0);
  uint64_t v = width == 2 ? size - 256 : size;
  for (std::size_t i = 0; i < width; ++i) frame[pos + i] = static_cast<uint8_t>(v >> (8 * i));
}

Status check_status(const BlockBatch& b, const BatchGeometry& g) { return check_batch(b, g); }

}  // namespace

BOOST_AUTO_TEST_SUITE(block_batch_tests)

BOOST_AUTO_TEST_CASE(zero_blocks_travel_as_markers_without_data) {
  BatchGeometry g{100ull * 65536, 65536};
  std::vector<uint64_t> zeros(90);
  std::iota(zeros.begin(), zeros.end(), 0);
  auto data = pattern(2 * 65536, 1);
  auto b = build_batch(header(zeros, {90, 91}), data, g, {false, 3});
  BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
  BOOST_TEST((b->codec == Codec::Raw));
  BOOST_TEST(b->raw_size == 2u * 65536);
  BOOST_TEST(b->payload.size() == 2u * 65536);  // nothing for the 90 zero blocks
  std::vector<uint8_t> wire = encode(*b);
  // 90 markers cost one byte each (+ a few for the array header); everything else is fields.
  BOOST_TEST(wire.size() < 2u * 65536 + 90 + 200);
  auto back = decode(wire);
  BOOST_TEST_REQUIRE(back.ok());
  const auto& got = std::get<BlockBatch>(*back);
  BOOST_TEST((got.zero_blocks == zeros));
  auto opened = open_batch(got, g);
  BOOST_TEST_REQUIRE(opened.ok());
  BOOST_TEST((*opened == data));

  auto only_zeros = build_batch(header(zeros, {}), {}, g, {true, 3});
  BOOST_TEST_REQUIRE(only_zeros.ok());
  BOOST_TEST(only_zeros->payload.empty());
  BOOST_TEST(only_zeros->raw_size == 0u);
}

BOOST_AUTO_TEST_CASE(ranges_carry_only_their_bytes_after_the_data_blocks) {
  // 64 KiB blocks, the last one 10 000 bytes.
  BatchGeometry g{4ull * 65536 + 10000, 65536};
  auto b = header({0}, {1});
  b.ranges = {{2, 4096, 8192}, {3, 0, 61440}, {4, 9000, 1000}};
  auto data = pattern(65536 + 8192 + 61440 + 1000, 5);
  for (bool compress : {false, true}) {
    auto built = build_batch(b, data, g, {compress, 3});
    BOOST_TEST_REQUIRE(built.ok(), built.status().ToString());
    BOOST_TEST(built->raw_size == data.size());
    std::vector<uint8_t> wire = encode(*built);
    auto back = decode(wire);
    BOOST_TEST_REQUIRE(back.ok(), back.status().ToString());
    const auto& got = std::get<BlockBatch>(*back);
    BOOST_TEST((got.ranges == b.ranges));
    BOOST_TEST((*open_batch(got, g) == data));
  }
  // Without ranges the field is not encoded at all: what a version-1 peer reads.
  auto plain = build_batch(header({}, {1}), pattern(65536, 1), g, {false, 3});
  BOOST_TEST_REQUIRE(plain.ok());
  const std::vector<uint8_t> enc = encode(*plain);
  BOOST_TEST(std::string(enc.begin(), enc.end()).find("ranges") == std::string::npos);

  struct Bad {
    std::vector<BlockRange> ranges;
    std::string why;
  };
  const std::vector<Bad> bad = {
      {{{2, 0, 0}}, "block_batch: range 0 (block 2): 0 bytes at offset 0 do not fit a block of 65536 bytes"},
      {{{2, 65000, 1000}}, "block_batch: range 0 (block 2): 1000 bytes at offset 65000 do not fit a block of 65536 bytes"},
      {{{4, 0, 10001}}, "block_batch: range 0 (block 4): 10001 bytes at offset 0 do not fit a block of 10000 bytes"},
      {{{2, 0, 65536}}, "block_batch: range 0 (block 2) is the whole block: a data block, not a range"},
      {{{3, 0, 10}, {2, 0, 10}}, "block_batch: range 1 (block 2) is not in strictly ascending block order"},
      {{{1, 0, 10}}, "block_batch: range 0 (block 1) is also a zero or data block of the batch"},
      {{{0, 0, 10}}, "block_batch: range 0 (block 0) is also a zero or data block of the batch"},
      {{{5, 0, 10}}, "block_batch: range 0 (block 5) is past the disk's 5 blocks"},
  };
  for (const auto& c : bad) {
    auto x = header({0}, {1});
    x.ranges = c.ranges;
    uint64_t bytes = 65536;
    for (const auto& r : c.ranges) bytes += r.length;
    auto built = build_batch(x, pattern(bytes, 2), g, {false, 3});
    BOOST_TEST(built.status().number() == 32776u);
    BOOST_TEST(built.status().message() == c.why);
    // The same batch arriving from a peer is refused the same way.
    x.raw_size = bytes;
    x.payload = pattern(bytes, 2);
    BOOST_TEST(check_batch(x, g).message() == c.why);
  }
  // raw_size must count the ranges' bytes.
  auto short_raw = header({}, {1});
  short_raw.ranges = {{2, 0, 100}};
  short_raw.raw_size = 65536;
  short_raw.payload = pattern(65536, 3);
  BOOST_TEST(check_batch(short_raw, g).message() ==
             "block_batch: raw_size is 65536 but its 1 data blocks and 1 ranges hold 65636 bytes");
  // Too many ranges is refused before anything else.
  auto many = header({}, {});
  for (uint64_t i = 0; i <= kMaxBatchRanges; ++i) many.ranges.push_back({i, 0, 1});
  BOOST_TEST(check_batch(many, BatchGeometry{(kMaxBatchRanges + 1) * 65536ull, 65536}).number() == 32773u);
}

BOOST_AUTO_TEST_CASE(a_ranges_field_that_is_not_triples_is_refused) {
  auto b = header({}, {});
  b.ranges = {{2, 0, 100}};
  b.raw_size = 100;
  b.payload = pattern(100, 1);
  std::vector<uint8_t> wire = encode(b);
  // The flat list [2, 0, 100] is a fixarray of 3 (0x93): make it 2 elements long by cutting
  // the last integer and its count, keeping the rest of the message intact.
  const std::string k = "ranges";
  auto at = std::search(wire.begin(), wire.end(), k.begin(), k.end());
  BOOST_TEST_REQUIRE((at != wire.end()));
  auto arr = at + static_cast<std::ptrdiff_t>(k.size());
  BOOST_TEST_REQUIRE(*arr == 0x93);
  *arr = 0x92;
  wire.erase(arr + 3);  // 2, 0 stay; 100 (one byte, a positive fixint) goes
  auto back = decode(wire);
  BOOST_TEST(back.status().number() == 32773u);
  BOOST_TEST(back.status().message() == "block_batch: field 'ranges' has 2 integers, not (block, offset, length) triples");
}

BOOST_AUTO_TEST_CASE(compression_on_and_off_both_round_trip_through_the_wire) {
  BatchGeometry g{1000ull * kBs, kBs};
  std::vector<uint64_t> blocks(64);
  std::iota(blocks.begin(), blocks.end(), 100);
  std::vector<uint8_t> data = compressible(64 * kBs);
  for (bool on : {false, true}) {
    BOOST_TEST_CONTEXT("compression " << on) {
      auto b = build_batch(header({1, 2}, blocks), data, g, {on, 3});
      BOOST_TEST_REQUIRE(b.ok());
      BOOST_TEST((b->codec == (on ? Codec::Zstd : Codec::Raw)));
      if (on) BOOST_TEST(b->payload.size() < data.size() / 10);
      auto back = decode(encode(*b));
      BOOST_TEST_REQUIRE(back.ok());
      BOOST_TEST((std::get<BlockBatch>(*back) == *b));
      auto opened = open_batch(std::get<BlockBatch>(*back), g);
      BOOST_TEST_REQUIRE(opened.ok(), opened.status().ToString());
      BOOST_TEST((*opened == data));
    }
  }
  // Negative (fast) levels and the maximum work too.
  for (int level : {-5, 1, 19}) {
    auto b = build_batch(header({}, blocks), data, g, {true, level});
    BOOST_TEST_REQUIRE(b.ok());
    BOOST_TEST((*open_batch(*b, g) == data));
  }
}

BOOST_AUTO_TEST_CASE(incompressible_data_is_sent_raw) {
  BatchGeometry g{16ull * kBs, kBs};
  auto data = pattern(4 * kBs, 2);
  auto b = build_batch(header({}, {0, 1, 2, 3}), data, g, {true, 19});
  BOOST_TEST_REQUIRE(b.ok());
  BOOST_TEST((b->codec == Codec::Raw));
  BOOST_TEST((b->payload == data));
}

BOOST_AUTO_TEST_CASE(the_partial_last_block_carries_only_its_bytes) {
  BatchGeometry g{3ull * kBs + 100, kBs};
  BOOST_TEST(batch_raw_size(std::vector<uint64_t>{3}, g) == 100u);
  BOOST_TEST(batch_raw_size(std::vector<uint64_t>{0, 3}, g) == kBs + 100u);
  auto data = compressible(kBs + 100);
  auto b = build_batch(header({1}, {0, 3}), data, g, {true, 3});
  BOOST_TEST_REQUIRE(b.ok());
  BOOST_TEST((*open_batch(*b, g) == data));
  auto wrong = build_batch(header({}, {0, 3}), compressible(2 * kBs), g, {false, 3});
  BOOST_TEST(wrong.status().number() == 32773u);
  BOOST_TEST(wrong.status().message() == "block_batch: data is 8192 bytes; its 2 data blocks need 4196");
}

BOOST_AUTO_TEST_CASE(zstd_bombs_are_refused_without_large_allocations) {
  long before = rss_kib();
  BatchGeometry g{1024ull * kBs, kBs};

  // A tiny frame that expands to 16 MiB, sent as one 4 KiB block.
  BlockBatch bomb = header({}, {0});
  bomb.codec = Codec::Zstd;
  bomb.raw_size = kBs;
  bomb.payload = zstd_zeros_frame(16u << 20);
  BOOST_TEST(bomb.payload.size() < 1024u);
  Status s = check_status(bomb, g);
  BOOST_TEST(s.number() == 32776u);
  BOOST_TEST(s.message() == "block_batch: zstd frame declares 16777216 bytes; raw_size is 4096");
  BOOST_TEST(!open_batch(bomb, g).ok());

  // The same frame with its header lying (claims 4096, holds 8192): decompression stops at
  // the 4096-byte buffer.
  BlockBatch liar = header({}, {0});
  liar.codec = Codec::Zstd;
  liar.raw_size = kBs;
  liar.payload = zstd_frame(compressible(2 * kBs));
  patch_content_size(liar.payload, kBs);
  BOOST_TEST(check_status(liar, g).ok());
  auto opened = open_batch(liar, g);
  BOOST_TEST(opened.status().number() == 32776u);
  BOOST_TEST(opened.status().message().rfind("block_batch: zstd payload does not decompress to its 4096 bytes", 0) == 0u);

  // A frame that does not say how big it is.
  BlockBatch unsized = header({}, {0});
  unsized.codec = Codec::Zstd;
  unsized.raw_size = kBs;
  unsized.payload = zstd_frame(compressible(kBs), false);
  BOOST_TEST(check_status(unsized, g).message() == "block_batch: zstd frame does not declare its content size");

  BOOST_TEST(rss_kib() - before < 8 * 1024);
}

BOOST_AUTO_TEST_CASE(malformed_zstd_payloads_are_refused) {
  BatchGeometry g{8ull * kBs, kBs};
  auto data = compressible(kBs);
  BlockBatch b = header({}, {0});
  b.codec = Codec::Zstd;
  b.raw_size = kBs;

  b.payload = {1, 2, 3, 4, 5, 6, 7, 8};
  BOOST_TEST(check_status(b, g).message() == "block_batch: payload is not a zstd frame");

  std::vector<uint8_t> frame = zstd_frame(data);
  b.payload = frame;
  b.payload.insert(b.payload.end(), frame.begin(), frame.end());
  BOOST_TEST(check_status(b, g).message() == "block_batch: " + std::to_string(frame.size()) + " bytes follow the zstd frame");

  b.payload.assign(frame.begin(), frame.end() - 3);
  BOOST_TEST(check_status(b, g).message().rfind("block_batch: zstd frame is damaged or truncated", 0) == 0u);

  // A flipped bit in the compressed data fails decoding or the frame's checksum.
  auto built = build_batch(header({}, {0}), data, g, {true, 3});
  BOOST_TEST_REQUIRE((built->codec == Codec::Zstd));
  built->payload[built->payload.size() / 2] ^= 0x10;
  auto opened = open_batch(*built, g);
  BOOST_TEST(opened.status().number() == 32776u);

  b.payload = {};
  BOOST_TEST(check_status(b, g).message() == "block_batch: payload is not a zstd frame");
}

BOOST_AUTO_TEST_CASE(lists_and_sizes_are_checked_against_the_disk) {
  BatchGeometry g{10ull * kBs, kBs};
  auto make = [&](std::vector<uint64_t> zero, std::vector<uint64_t> data) {
    BlockBatch b = header(std::move(zero), std::move(data));
    b.raw_size = b.data_blocks.size() * kBs;
    b.payload.assign(b.raw_size, 1);
    return b;
  };
  BOOST_TEST(check_status(make({0, 1}, {2, 9}), g).ok());

  struct Case {
    BlockBatch b;
    uint32_t code;
    std::string message;
  };
  BlockBatch short_payload = make({}, {2});
  short_payload.payload.pop_back();
  BlockBatch wrong_raw = make({}, {2});
  wrong_raw.raw_size = 10;
  std::vector<Case> cases = {
      {make({}, {10}), 32776, "block_batch: data_blocks names block 10 of a disk with 10 blocks"},
      {make({99}, {}), 32776, "block_batch: zero_blocks names block 99 of a disk with 10 blocks"},
      {make({3, 2}, {}), 32776, "block_batch: zero_blocks is not strictly ascending at entry 1 (3 then 2)"},
      {make({}, {4, 4}), 32776, "block_batch: data_blocks is not strictly ascending at entry 1 (4 then 4)"},
      {make({1, 5}, {5, 6}), 32776, "block_batch: block 5 is both a zero block and a data block"},
      {wrong_raw, 32776, "block_batch: raw_size is 10 but its 1 data blocks hold 4096 bytes"},
      {short_payload, 32776, "block_batch: raw payload is 4095 bytes; raw_size is 4096"},
  };
  for (const auto& c : cases) {
    Status s = check_status(c.b, g);
    BOOST_TEST(s.number() == c.code);
    BOOST_TEST(s.message() == c.message);
  }

  BlockBatch many = header({}, {});
  many.zero_blocks.resize(kMaxBatchBlocks + 1);
  std::iota(many.zero_blocks.begin(), many.zero_blocks.end(), 0);
  BOOST_TEST(check_status(many, {1ull << 40, kBs}).message() ==
             "block_batch: zero_blocks has 65537 entries, above the 65536-entry limit");

  BatchGeometry big{4ull << 24, 16u << 20};
  BlockBatch two_big = header({}, {0, 1});
  two_big.raw_size = 32u << 20;
  BOOST_TEST(check_status(two_big, big).message() ==
             "block_batch: 2 data blocks hold 33554432 bytes, above the 16777216-byte batch limit");

  BOOST_TEST(check_status(make({}, {}), {kBs, 1000}).message() == "block size 1000 is not a power of two from 4096 to 16777216");
  BOOST_TEST(check_status(make({}, {}), {kBs, 3 * kBs}).number() == 32773u);
}

BOOST_AUTO_TEST_CASE(build_refuses_bad_levels_and_geometry) {
  BatchGeometry g{4ull * kBs, kBs};
  auto b = build_batch(header({}, {0}), compressible(kBs), g, {true, 100});
  BOOST_TEST(b.status().number() == 32773u);
  BOOST_TEST(b.status().message() == "zstd level 100 is outside " + std::to_string(ZSTD_minCLevel()) + ".." +
                                         std::to_string(ZSTD_maxCLevel()));
  BOOST_TEST(check_zstd_level(0).ok());
  BOOST_TEST(check_zstd_level(22).ok());
  auto past = build_batch(header({}, {4}), compressible(kBs), g, {false, 3});
  BOOST_TEST(past.status().message() == "block_batch: data_blocks names block 4 of a disk with 4 blocks");
  auto overlap = build_batch(header({0}, {0}), compressible(kBs), g, {false, 3});
  BOOST_TEST(overlap.status().message() == "block_batch: block 0 is both a zero block and a data block");
}

BOOST_AUTO_TEST_CASE(a_full_batch_of_the_largest_blocks_fits_a_protocol_frame) {
  BatchGeometry g{1ull << 50, 16u << 20};
  std::vector<uint64_t> zeros(kMaxBatchBlocks);
  std::iota(zeros.begin(), zeros.end(), uint64_t{1} << 20);  // large indexes: 5 bytes each
  auto b = build_batch(header(zeros, {7}), pattern(16u << 20, 3), g, {false, 3});
  BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
  std::vector<uint8_t> wire = encode(*b);
  BOOST_TEST(wire.size() <= kMaxFrameBytes);
  auto back = decode(wire);
  BOOST_TEST_REQUIRE(back.ok(), back.status().ToString());
  BOOST_TEST((std::get<BlockBatch>(*back) == *b));
}

BOOST_AUTO_TEST_SUITE_END()
