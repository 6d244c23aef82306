// BlockIndex: geometry, zero entries, the sparse == written-zero property, save/load round
// trips, and load() refusing every kind of damaged or hostile file with a clean Status.
#include "core/blocks/block_index.h"

#include <xxhash.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "blocks/test_files_helper.h"
#include "core/blocks/zero.h"

namespace vmrepl {
namespace {

constexpr uint32_t kBs = 4096;

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

// An index over synthetic content: block i random, zero every third block, partial tail.
BlockIndex make_index(HashAlgorithm alg, uint64_t disk_size, uint64_t seed = 1) {
  auto r = BlockIndex::create(alg, kBs, disk_size);
  BOOST_REQUIRE(r.ok());
  BlockIndex x = std::move(*r);
  for (uint64_t i = 0; i < x.block_count(); ++i) {
    if (i % 3 == 1) continue;  // stays zero
    x.set_from_bytes(i, testing::random_bytes(x.block_length(i), seed * 1000 + i));
  }
  return x;
}

void put_le(std::vector<std::byte>& f, std::size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) f[at + i] = static_cast<std::byte>(v >> (8 * i));
}

// Re-seals a hand-edited index file so that only the edited field is wrong.
void fix_checksum(std::vector<std::byte>& f) {
  put_le(f, f.size() - 8, XXH3_64bits(f.data(), f.size() - 8), 8);
}

Status load_status(const std::string& path) { return BlockIndex::load(path).status(); }

bool contains(const Status& s, const std::string& what) {
  return s.message().find(what) != std::string::npos;
}

struct Files {
  testing::TempDir dir;
  std::string path = dir.file("disk.idx");
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(block_index_tests, Files)

BOOST_AUTO_TEST_CASE(geometry_counts_and_partial_last_block) {
  BOOST_TEST(BlockIndex::block_count_for(0, 65536) == 0u);
  BOOST_TEST(BlockIndex::block_count_for(1, 65536) == 1u);
  BOOST_TEST(BlockIndex::block_count_for(65536, 65536) == 1u);
  BOOST_TEST(BlockIndex::block_count_for(65537, 65536) == 2u);
  auto x = BlockIndex::create(HashAlgorithm::Xxh3_128, 65536, 3 * 65536 + 100);
  BOOST_REQUIRE(x.ok());
  BOOST_TEST(x->block_count() == 4u);
  BOOST_TEST(x->block_offset(3) == 3u * 65536);
  BOOST_TEST(x->block_length(2) == 65536u);
  BOOST_TEST(x->block_length(3) == 100u);
  BOOST_TEST(BlockIndex().block_size() == BlockIndex::kDefaultBlockSize);
  BOOST_TEST(BlockIndex::kDefaultBlockSize == 65536u);
}

BOOST_AUTO_TEST_CASE(create_rejects_bad_geometry) {
  for (uint32_t bs : {0u, 1000u, 2048u, 3u * 4096, (32u << 20), 65535u}) {
    auto x = BlockIndex::create(HashAlgorithm::Xxh3_128, bs, 1 << 20);
    BOOST_TEST(x.status().code() == Code::InvalidParameter, bs);
    BOOST_TEST(contains(x.status(), "power of two"));
  }
  for (uint32_t bs : {4096u, 8192u, 65536u, 16u << 20}) {
    BOOST_TEST(BlockIndex::create(HashAlgorithm::Sha256, bs, 1 << 20).ok(), bs);
  }
  BOOST_TEST(BlockIndex::check_geometry(3, 65536, 0).code() == Code::InvalidParameter);
  BOOST_TEST(BlockIndex::check_geometry(0, 65536, 0).code() == Code::InvalidParameter);
  BOOST_TEST(contains(BlockIndex::check_geometry(1, 65536, BlockIndex::kMaxDiskSize + 1), "exceeds"));
}

BOOST_AUTO_TEST_CASE(new_index_is_all_zero_blocks_with_the_hash_of_zeros) {
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    auto x = BlockIndex::create(alg, kBs, 5 * kBs + 10);
    BOOST_REQUIRE(x.ok());
    const BlockHash full = hash_bytes(alg, zeros(kBs));
    const BlockHash tail = hash_bytes(alg, zeros(10));
    for (uint64_t i = 0; i < 5; ++i) {
      BOOST_TEST(x->entry(i).is_zero());
      BOOST_TEST(x->entry(i).hash == full);
    }
    BOOST_TEST(x->entry(5).is_zero());
    BOOST_TEST(x->entry(5).hash == tail);
    BOOST_TEST(x->zero_hash(5) == tail);
  }
}

BOOST_AUTO_TEST_CASE(written_zeros_give_the_same_index_as_a_hole) {
  auto sparse = BlockIndex::create(HashAlgorithm::Xxh3_128, kBs, 3 * kBs + 7);
  auto written = BlockIndex::create(HashAlgorithm::Xxh3_128, kBs, 3 * kBs + 7);
  BOOST_REQUIRE(sparse.ok() && written.ok());
  for (uint64_t i = 0; i < written->block_count(); ++i) {
    written->set_data(i, BlockHash{});  // clobber, then derive from bytes
    written->set_from_bytes(i, zeros(written->block_length(i)));
  }
  BOOST_TEST((*sparse == *written));
  // And a data block stores the hash of exactly its bytes.
  const auto data = testing::random_bytes(7, 3);
  written->set_from_bytes(3, data);
  BOOST_TEST(!written->entry(3).is_zero());
  BOOST_TEST(written->entry(3).hash == hash_bytes(HashAlgorithm::Xxh3_128, data));
  BOOST_TEST(!(*sparse == *written));
}

BOOST_AUTO_TEST_CASE(save_load_round_trip_for_both_algorithms_and_shapes) {
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{kBs}, uint64_t{37 * kBs + 123}}) {
      const BlockIndex x = make_index(alg, size);
      BOOST_REQUIRE(x.save(path).ok());
      const uint64_t entry = 1 + digest_size(alg);
      BOOST_TEST(testing::file_size(path) == 40 + x.block_count() * entry + 8);
      auto y = BlockIndex::load(path);
      BOOST_REQUIRE_MESSAGE(y.ok(), y.status().ToString());
      BOOST_TEST((*y == x));
      BOOST_TEST(y->algorithm() == alg);
      BOOST_TEST(y->disk_size() == size);
      BOOST_TEST(y->block_size() == kBs);
      if (size > 0) BOOST_TEST(y->zero_hash(y->block_count() - 1) == x.zero_hash(x.block_count() - 1));
    }
  }
}

BOOST_AUTO_TEST_CASE(file_layout_is_the_documented_one) {
  const BlockIndex x = make_index(HashAlgorithm::Xxh3_128, 2 * kBs + 1);
  BOOST_REQUIRE(x.save(path).ok());
  const auto f = testing::read_file(path);
  BOOST_REQUIRE(f.size() == 40u + 3 * 17 + 8);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(f.data()), 7) == "VMRBIDX");
  BOOST_TEST(static_cast<int>(f[8]) == 1);    // version
  BOOST_TEST(static_cast<int>(f[12]) == 1);   // algorithm
  BOOST_TEST(static_cast<int>(f[17]) == 16);  // 4096 = 0x1000, little-endian
  BOOST_TEST(static_cast<int>(f[24]) == 1);   // disk size 8193 = 0x2001
  BOOST_TEST(static_cast<int>(f[25]) == 0x20);
  BOOST_TEST(static_cast<int>(f[32]) == 3);   // count
  BOOST_TEST(static_cast<int>(f[40]) == 0);   // block 0: data
  BOOST_TEST(static_cast<int>(f[40 + 17]) == BlockEntry::kZero);  // block 1: zero
  BOOST_TEST(std::memcmp(f.data() + 41, x.entry(0).hash.bytes.data(), 16) == 0);
  uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) stored |= static_cast<uint64_t>(f[f.size() - 8 + i]) << (8 * i);
  BOOST_TEST(stored == XXH3_64bits(f.data(), f.size() - 8));
}

BOOST_AUTO_TEST_CASE(save_replaces_atomically_and_leaves_no_temporary_file) {
  BOOST_REQUIRE(make_index(HashAlgorithm::Xxh3_128, 10 * kBs, 1).save(path).ok());
  const BlockIndex second = make_index(HashAlgorithm::Sha256, 20 * kBs, 2);
  BOOST_REQUIRE(second.save(path).ok());
  auto y = BlockIndex::load(path);
  BOOST_REQUIRE(y.ok());
  BOOST_TEST((*y == second));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    BOOST_TEST(e.path().filename() == "disk.idx");
  }
  BOOST_TEST(files == 1);
  const auto perms = std::filesystem::status(path).permissions() & std::filesystem::perms::all;
  BOOST_TEST(static_cast<unsigned>(perms) == 0600u);
}

BOOST_AUTO_TEST_CASE(a_prepared_save_replaces_the_file_only_when_committed) {
  const BlockIndex first = make_index(HashAlgorithm::Xxh3_128, 10 * kBs, 1);
  BOOST_REQUIRE(first.save(path).ok());
  const BlockIndex second = make_index(HashAlgorithm::Xxh3_128, 10 * kBs, 2);
  auto count_files = [&] {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
    return n;
  };
  {
    auto dropped = second.prepare_save(path);
    BOOST_REQUIRE(dropped.ok());
    BOOST_TEST(count_files() == 2);  // the written temporary file beside the index
    BOOST_TEST((*BlockIndex::load(path) == first));
  }
  BOOST_TEST(count_files() == 1);  // dropped uncommitted: removed, the index untouched
  BOOST_TEST((*BlockIndex::load(path) == first));
  auto kept = second.prepare_save(path);
  BOOST_REQUIRE(kept.ok());
  BlockIndex::PendingSave moved = std::move(kept).value();
  BOOST_REQUIRE(moved.commit().ok());
  BOOST_TEST((*BlockIndex::load(path) == second));
  BOOST_TEST(count_files() == 1);
  BOOST_TEST(moved.commit().code() == Code::InvalidState);  // nothing left to commit
}

BOOST_AUTO_TEST_CASE(round_trip_across_write_buffer_boundaries) {
  // The writer buffers 64 KiB: content ending exactly at, just before and just after a buffer
  // boundary (the 8-byte trailer then needs a flush of its own) must read back the same.
  for (HashAlgorithm alg : {HashAlgorithm::Xxh3_128, HashAlgorithm::Sha256}) {
    const uint64_t entry = 1 + digest_size(alg);
    for (uint64_t end : {uint64_t{0}, uint64_t{65530}, uint64_t{65528}, uint64_t{65527}, uint64_t{5}}) {
      uint64_t n = 1;
      while ((40 + entry * n) % 65536 != end && n < 200000) ++n;
      if (n == 200000) continue;  // this entry size never ends there
      auto r = BlockIndex::create(alg, kBs, n * kBs);
      BOOST_REQUIRE(r.ok());
      BlockIndex x = std::move(*r);
      for (uint64_t i = 0; i < n; i += 2) {
        const std::string s = "block-" + std::to_string(i);
        x.set_data(i, hash_bytes(alg, std::as_bytes(std::span(s.data(), s.size()))));
      }
      BOOST_REQUIRE(x.save(path).ok());
      BOOST_TEST(testing::file_size(path) == 40 + n * entry + 8);
      auto y = BlockIndex::load(path);
      BOOST_REQUIRE_MESSAGE(y.ok(), y.status().ToString());
      BOOST_TEST((*y == x), "entries " << n);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_destroyed_index_lends_its_memory_to_the_next_one) {
  // 65,536 entries (a 4 GiB disk in 64 KiB blocks): MiBs, kept for the next create, clone or load.
  const uint64_t disk = uint64_t{4} << 30;
  const BlockEntry* mem = nullptr;
  {
    auto a = BlockIndex::create(HashAlgorithm::Xxh3_128, 65536, disk);
    BOOST_REQUIRE(a.ok());
    a->set_from_bytes(7, testing::random_bytes(65536, 3));
    mem = a->entries().data();
  }
  auto b = BlockIndex::create(HashAlgorithm::Xxh3_128, 65536, disk);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->entries().data() == mem);  // the same memory, and nothing of the old content
  for (uint64_t i = 0; i < b->block_count(); ++i) BOOST_REQUIRE(b->entry(i).is_zero());
  b->set_from_bytes(9, testing::random_bytes(65536, 4));
  BOOST_REQUIRE(b->save(path).ok());
  const BlockIndex expected = b->clone();
  BOOST_TEST((expected == *b));
  mem = b->entries().data();
  *b = BlockIndex();  // move-assigned over: its memory goes back too
  auto c = BlockIndex::load(path);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(c->entries().data() == mem);
  BOOST_TEST((*c == expected));
}

BOOST_AUTO_TEST_CASE(save_into_a_missing_directory_fails_cleanly) {
  const Status s = make_index(HashAlgorithm::Xxh3_128, kBs).save(dir.file("no/such/dir/x.idx"));
  BOOST_TEST(s.code() == Code::FileNotFound);
  BOOST_TEST(contains(s, "No such file or directory"));
}

BOOST_AUTO_TEST_CASE(missing_file_is_file_not_found) {
  const Status s = load_status(dir.file("absent.idx"));
  BOOST_TEST(s.code() == Code::FileNotFound);
  BOOST_TEST(s.number() == 32779u);
  BOOST_TEST(contains(s, "absent.idx"));
}

BOOST_AUTO_TEST_CASE(flipping_any_byte_is_a_checksum_error) {
  BOOST_REQUIRE(make_index(HashAlgorithm::Xxh3_128, 9 * kBs + 5).save(path).ok());
  const auto good = testing::read_file(path);
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      auto bad = good;
      bad[i] ^= std::byte{mask};
      testing::write_file(path, bad);
      const Status s = load_status(path);
      if (s.code() != Code::Failed || !contains(s, "checksum mismatch")) {
        BOOST_FAIL("byte " << i << " mask " << int(mask) << ": " << s.ToString());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_and_an_extension_fail_cleanly) {
  BOOST_REQUIRE(make_index(HashAlgorithm::Sha256, 6 * kBs).save(path).ok());
  const auto good = testing::read_file(path);
  for (std::size_t n = 0; n < good.size(); ++n) {
    testing::write_file(path, std::span(good).first(n));
    const Status s = load_status(path);
    if (s.code() != Code::Failed || !(contains(s, "truncated") || contains(s, "checksum"))) {
      BOOST_FAIL("length " << n << ": " << s.ToString());
    }
    if (n < 48) BOOST_TEST(contains(s, "truncated"));
  }
  auto longer = good;
  longer.push_back(std::byte{0});
  testing::write_file(path, longer);
  BOOST_TEST(load_status(path).code() == Code::Failed);
  // Extended and re-sealed: only the size disagrees with the header.
  longer.insert(longer.end() - 8, std::byte{0});
  fix_checksum(longer);
  testing::write_file(path, longer);
  BOOST_TEST(contains(load_status(path), "truncated or extended"));
}

BOOST_AUTO_TEST_CASE(huge_counts_are_refused_before_any_allocation) {
  BOOST_REQUIRE(make_index(HashAlgorithm::Xxh3_128, 4 * kBs).save(path).ok());
  const auto good = testing::read_file(path);
  {
    // A consistent header for a 64 PiB disk (2^44 entries, ~290 TB of index): a loader that
    // trusted it would try to allocate that; this one compares it with the real file size.
    auto f = good;
    put_le(f, 24, BlockIndex::kMaxDiskSize, 8);
    put_le(f, 32, BlockIndex::kMaxDiskSize / kBs, 8);
    fix_checksum(f);
    testing::write_file(path, f);
    const Status s = load_status(path);
    BOOST_TEST(s.code() == Code::Failed);
    BOOST_TEST(contains(s, "implies"), s.ToString());
  }
  {
    auto f = good;
    put_le(f, 32, ~uint64_t{0}, 8);  // count disagrees with disk size
    fix_checksum(f);
    testing::write_file(path, f);
    const Status s = load_status(path);
    BOOST_TEST(contains(s, "block count 18446744073709551615 does not match"), s.ToString());
  }
  {
    auto f = good;
    put_le(f, 24, ~uint64_t{0}, 8);  // disk size beyond the maximum
    fix_checksum(f);
    testing::write_file(path, f);
    BOOST_TEST(contains(load_status(path), "exceeds the maximum"));
  }
}

BOOST_AUTO_TEST_CASE(bad_header_fields_are_named) {
  BOOST_REQUIRE(make_index(HashAlgorithm::Xxh3_128, 4 * kBs).save(path).ok());
  const auto good = testing::read_file(path);
  struct Case {
    std::size_t at;
    uint64_t value;
    int bytes;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {0, 'X', 1, "bad magic"},
      {8, 2, 4, "unsupported version 2 (expected 1)"},
      {8, 0, 4, "unsupported version 0"},
      {12, 7, 4, "unknown hash algorithm 7"},
      {16, 1000, 4, "block size 1000 is not a power of two"},
      {20, 5, 4, "reserved header field is 5"},
      {40, 0x42, 1, "entry 0 has unknown flags 66"},
      {41 + 17, 0xAA, 1, "entry 1 is flagged zero but does not hold the zero-block hash"},
  };
  for (const Case& c : cases) {
    auto f = good;
    put_le(f, c.at, c.value, c.bytes);
    fix_checksum(f);
    testing::write_file(path, f);
    const Status s = load_status(path);
    BOOST_TEST(s.code() == Code::Failed);
    BOOST_TEST(contains(s, c.expect), s.ToString());
    BOOST_TEST(contains(s, path));
  }
}

BOOST_AUTO_TEST_CASE(diff_lists_changed_and_extra_blocks) {
  const BlockIndex a = make_index(HashAlgorithm::Xxh3_128, 30 * kBs + 9);
  BlockIndex b = a.clone();
  auto same = diff(a, b);
  BOOST_REQUIRE(same.ok());
  BOOST_TEST(same->empty());
  b.set_from_bytes(3, testing::random_bytes(kBs, 99));
  b.set_zero(8);  // was data
  b.set_from_bytes(30, testing::random_bytes(9, 98));
  b.set_from_bytes(4, zeros(kBs));  // block 4 (4 % 3 == 1) was already zero: no change
  auto d = diff(a, b);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(*d == (std::vector<uint64_t>{3, 8, 30}), boost::test_tools::per_element());

  const BlockIndex shorter = make_index(HashAlgorithm::Xxh3_128, 28 * kBs);
  auto d2 = diff(shorter, a);
  BOOST_REQUIRE(d2.ok());
  BOOST_TEST(*d2 == (std::vector<uint64_t>{28, 29, 30}), boost::test_tools::per_element());

  BOOST_TEST(diff(a, make_index(HashAlgorithm::Sha256, 30 * kBs + 9)).status().code() ==
             Code::InvalidParameter);
  auto other_bs = BlockIndex::create(HashAlgorithm::Xxh3_128, 2 * kBs, 30 * kBs + 9);
  BOOST_TEST(diff(a, *other_bs).status().code() == Code::InvalidParameter);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
