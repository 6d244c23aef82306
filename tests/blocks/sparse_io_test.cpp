// Sparse-aware I/O on the real filesystem of /tmp (ext4 here): extents from SEEK_DATA/
// SEEK_HOLE, block reads that skip holes, zero writes that punch holes instead of allocating,
// and errors that carry the errno text.
#include "core/blocks/sparse_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <vector>

#include "blocks/test_files_helper.h"
#include "core/blocks/posix_error.h"
#include "core/blocks/unique_fd.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

constexpr uint32_t kBs = 64 << 10;

struct Dir {
  testing::TempDir dir;
  std::string path = dir.file("disk.img");

  UniqueFd open_rw() {
    auto fd = open_file(path, O_RDWR);
    BOOST_REQUIRE(fd.ok());
    return std::move(*fd);
  }
  void write_at(uint64_t offset, std::span<const std::byte> data) {
    UniqueFd fd = open_rw();
    BOOST_REQUIRE(pwrite_full(fd.get(), data, offset).ok());
  }
};

bool holes_supported(const std::string& path) {
  // A fresh 1 MiB sparse file must have no data extent if SEEK_HOLE works here.
  auto e = data_extents(path);
  return e.ok() && e->empty();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sparse_io_tests, Dir)

BOOST_AUTO_TEST_CASE(created_sparse_file_has_its_size_and_no_data) {
  BOOST_REQUIRE(create_sparse_file(path, 1 << 30).ok());
  BOOST_TEST(testing::file_size(path) == uint64_t{1} << 30);
  BOOST_TEST(testing::allocated_bytes(path) == 0u);
  auto e = data_extents(path);
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->empty());
  // Re-creating truncates.
  write_at(0, testing::random_bytes(100, 1));
  BOOST_REQUIRE(create_sparse_file(path, 4096).ok());
  BOOST_TEST(testing::file_size(path) == 4096u);
  BOOST_TEST(testing::allocated_bytes(path) == 0u);
}

BOOST_AUTO_TEST_CASE(data_extents_are_exact_and_clipped) {
  BOOST_REQUIRE(create_sparse_file(path, 4 << 20).ok());
  BOOST_REQUIRE(holes_supported(path));
  write_at(64 << 10, testing::random_bytes(64 << 10, 2));
  write_at(1 << 20, testing::random_bytes(4096, 3));
  write_at((4 << 20) - 4096, testing::random_bytes(4096, 4));
  auto e = data_extents(path);
  BOOST_REQUIRE(e.ok());
  const std::vector<Extent> expected = {
      {64 << 10, 64 << 10}, {1 << 20, 4096}, {(4 << 20) - 4096, 4096}};
  BOOST_TEST(*e == expected, boost::test_tools::per_element());

  UniqueFd fd = open_rw();
  auto first = next_data_extent(fd.get(), 0, 100 << 10);  // clipped at the end
  BOOST_REQUIRE(first.ok() && first->has_value());
  BOOST_TEST((**first == Extent{64 << 10, 36 << 10}));
  auto inside = next_data_extent(fd.get(), 80 << 10, 4 << 20);  // starts inside an extent
  BOOST_REQUIRE(inside.ok() && inside->has_value());
  BOOST_TEST((**inside == Extent{80 << 10, 48 << 10}));
  auto none = next_data_extent(fd.get(), 200 << 10, 1 << 20);  // only a hole there
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());
  auto past = next_data_extent(fd.get(), 8 << 20, 9 << 20);  // past end of file
  BOOST_REQUIRE(past.ok());
  BOOST_TEST(!past->has_value());
  auto empty = next_data_extent(fd.get(), 5, 5);
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(!empty->has_value());
}

BOOST_AUTO_TEST_CASE(pread_and_pwrite_round_trip_and_report_errors) {
  const auto data = testing::random_bytes(300000, 5);
  BOOST_REQUIRE(create_sparse_file(path, 0).ok());
  write_at(12345, data);
  UniqueFd fd = open_rw();
  std::vector<std::byte> back(data.size());
  BOOST_REQUIRE(pread_full(fd.get(), back, 12345).ok());
  BOOST_TEST((back == data));

  const Status eof = pread_full(fd.get(), back, 12346);
  BOOST_TEST(eof.code() == Code::Failed);
  BOOST_TEST(eof.message().find("unexpected end of file at offset 312345") != std::string::npos,
             eof.ToString());

  const Status badf = pread_full(-1, back, 0);
  BOOST_TEST(badf.code() == Code::Failed);
  BOOST_TEST(badf.message().find("Bad file descriptor (errno 9)") != std::string::npos,
             badf.ToString());
  BOOST_TEST(pwrite_full(-1, data, 0).message().find("Bad file descriptor") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(read_blocks_never_reads_holes) {
  // Blocks: 0 data, 1 hole, 2 data in its second half only, 3 hole, 4 partial data block.
  const uint64_t size = 4 * kBs + 1000;
  BOOST_REQUIRE(create_sparse_file(path, size).ok());
  BOOST_REQUIRE(holes_supported(path));
  const auto b0 = testing::random_bytes(kBs, 10);
  const auto b2 = testing::random_bytes(kBs / 2, 11);
  const auto b4 = testing::random_bytes(1000, 12);
  write_at(0, b0);
  write_at(2 * kBs + kBs / 2, b2);
  write_at(4 * kBs, b4);

  UniqueFd fd = open_rw();
  for (HoleFill fill : {HoleFill::Zero, HoleFill::Skip}) {
    std::vector<std::byte> buf(size, std::byte{0xAA});
    std::vector<uint8_t> holes(5, 7);
    auto r = read_blocks(fd.get(), 0, buf, kBs, holes, fill);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST(holes == (std::vector<uint8_t>{0, 1, 0, 1, 0}), boost::test_tools::per_element());
    BOOST_TEST(r->bytes_read == 2u * kBs + 1000);  // blocks 0, 2 (whole), 4 (1000 bytes)
    BOOST_TEST(r->hole_blocks == 2u);
    const auto span = std::span(buf);
    BOOST_TEST((std::vector(span.begin(), span.begin() + kBs) == b0));
    BOOST_TEST(is_all_zero(span.subspan(2 * kBs, kBs / 2)));  // hole half of a data block
    BOOST_TEST((std::vector(span.begin() + 2 * kBs + kBs / 2, span.begin() + 3 * kBs) == b2));
    BOOST_TEST((std::vector(span.begin() + 4 * kBs, span.end()) == b4));
    const bool hole_is_zero = is_all_zero(span.subspan(kBs, kBs)) && is_all_zero(span.subspan(3 * kBs, kBs));
    BOOST_TEST(hole_is_zero == (fill == HoleFill::Zero));
    if (fill == HoleFill::Skip) BOOST_TEST(static_cast<int>(buf[kBs]) == 0xAA);
  }
  // A range in the middle: blocks 1..3.
  std::vector<std::byte> mid(3 * kBs);
  std::vector<uint8_t> holes(3);
  auto r = read_blocks(fd.get(), kBs, mid, kBs, holes);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(holes == (std::vector<uint8_t>{1, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST(r->bytes_read == uint64_t{kBs});
  // Misuse is a clean error.
  BOOST_TEST(read_blocks(fd.get(), 0, mid, 0, holes).status().code() == Code::InvalidParameter);
  std::vector<uint8_t> few(2);
  BOOST_TEST(read_blocks(fd.get(), 0, mid, kBs, few).status().code() == Code::InvalidParameter);
}

BOOST_AUTO_TEST_CASE(writing_zero_blocks_allocates_nothing) {
  BOOST_REQUIRE(create_sparse_file(path, 16 * kBs).ok());
  BOOST_REQUIRE(holes_supported(path));
  UniqueFd fd = open_rw();
  const std::vector<std::byte> zero(kBs);
  for (uint64_t i = 0; i < 16; ++i) {
    auto w = write_block(fd.get(), i * kBs, zero);
    BOOST_REQUIRE(w.ok());
    BOOST_TEST((*w == BlockWrite::Hole));
  }
  BOOST_TEST(testing::allocated_bytes(path) == 0u);
  auto e = data_extents(fd.get(), 0, 16 * kBs);
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->empty());

  // Past the end: the file grows, still without allocation.
  auto w = write_block(fd.get(), 20 * kBs, zero);
  BOOST_REQUIRE(w.ok());
  BOOST_TEST((*w == BlockWrite::Hole));
  BOOST_TEST(testing::file_size(path) == 21u * kBs);
  BOOST_TEST(testing::allocated_bytes(path) == 0u);
}

BOOST_AUTO_TEST_CASE(zero_block_over_data_punches_a_hole) {
  BOOST_REQUIRE(create_sparse_file(path, 0).ok());
  UniqueFd fd = open_rw();
  for (uint64_t i = 0; i < 4; ++i) {
    auto w = write_block(fd.get(), i * kBs, testing::random_bytes(kBs, 20 + i));
    BOOST_REQUIRE(w.ok());
    BOOST_TEST((*w == BlockWrite::Data));
  }
  BOOST_REQUIRE(::fsync(fd.get()) == 0);
  const uint64_t before = testing::allocated_bytes(path);
  BOOST_TEST(before >= 4u * kBs);
  auto w = write_block(fd.get(), kBs, std::vector<std::byte>(kBs));
  BOOST_REQUIRE(w.ok());
  BOOST_TEST((*w == BlockWrite::Hole));
  BOOST_TEST(testing::allocated_bytes(path) == before - kBs);
  BOOST_TEST(testing::file_size(path) == 4u * kBs);
  auto e = data_extents(fd.get(), 0, 4 * kBs);
  BOOST_REQUIRE(e.ok());
  const std::vector<Extent> expected = {{0, kBs}, {2 * kBs, 2 * kBs}};
  BOOST_TEST(*e == expected, boost::test_tools::per_element());
  std::vector<std::byte> back(kBs, std::byte{1});
  BOOST_REQUIRE(pread_full(fd.get(), back, kBs).ok());
  BOOST_TEST(is_all_zero(back));
}

BOOST_AUTO_TEST_CASE(errno_maps_to_model_codes_with_text) {
  BOOST_TEST(errno_status(ENOENT, "open x").code() == Code::FileNotFound);
  BOOST_TEST(errno_status(EACCES, "open x").code() == Code::AccessDenied);
  BOOST_TEST(errno_status(EPERM, "open x").code() == Code::AccessDenied);
  BOOST_TEST(errno_status(ENOMEM, "x").code() == Code::OutOfMemory);
  BOOST_TEST(errno_status(EIO, "x").code() == Code::Failed);
  BOOST_TEST(errno_status(ENOSPC, "pwrite").message() == "pwrite: No space left on device (errno 28)");
  auto missing = open_file(dir.file("absent"), O_RDONLY);
  BOOST_TEST(missing.status().code() == Code::FileNotFound);
  BOOST_TEST(missing.status().message().find("absent: No such file or directory") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pwritev_full_writes_scattered_pieces_back_to_back) {
  // More pieces than one pwritev takes (512), some empty, of varied sizes: the file holds
  // their concatenation at the offset, and nothing else changed.
  Dir d;
  BOOST_REQUIRE(create_sparse_file(d.path, 4 << 20).ok());
  {
    std::vector<std::byte> base(4 << 20, std::byte{0x5a});
    d.write_at(0, base);
  }
  std::vector<std::vector<std::byte>> store;
  std::vector<std::span<const std::byte>> pieces;
  std::vector<std::byte> want;
  for (int i = 0; i < 1500; ++i) {
    const std::size_t n = i % 7 == 0 ? 0 : static_cast<std::size_t>((i * 37) % 3000 + 1);
    store.emplace_back(n, static_cast<std::byte>(i & 0xff));
  }
  for (const auto& b : store) {
    pieces.emplace_back(b);
    want.insert(want.end(), b.begin(), b.end());
  }
  UniqueFd fd = d.open_rw();
  const uint64_t at = 12345;
  BOOST_REQUIRE(pwritev_full(fd.get(), pieces, at).ok());
  std::vector<std::byte> got(want.size() + 2);
  BOOST_REQUIRE(pread_full(fd.get(), got, at - 1).ok());
  BOOST_TEST(static_cast<int>(got.front()) == 0x5a);
  BOOST_TEST(static_cast<int>(got.back()) == 0x5a);
  BOOST_TEST(std::equal(want.begin(), want.end(), got.begin() + 1));
  BOOST_TEST(pwritev_full(fd.get(), {}, 0).ok());  // nothing to write
  UniqueFd ro = open_file(d.path, O_RDONLY).value();
  Status st = pwritev_full(ro.get(), pieces, 0);
  BOOST_TEST(!st.ok());
  BOOST_TEST(st.message().find("pwritev") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
