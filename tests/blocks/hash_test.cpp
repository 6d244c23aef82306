// Block hashes: known vectors, agreement with libxxhash's own XXH3_128bits(), the AVX2 and
// generic builds agreeing byte for byte, and the Merkle combine definition.
#include "core/blocks/hash.h"

#include <xxhash.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "blocks/test_files_helper.h"

namespace vmrepl {
namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The reference: the shared libxxhash (its own build, SSE2 on Debian), canonical form.
BlockHash reference_xxh3(std::span<const std::byte> data) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(data.data(), data.size()));
  BlockHash h;
  std::memcpy(h.bytes.data(), c.digest, 16);
  return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hash_tests)

BOOST_AUTO_TEST_CASE(xxh3_of_empty_input_matches_library_and_xxhsum) {
  const BlockHash h = hash_bytes(HashAlgorithm::Xxh3_128, {});
  BOOST_TEST(h == reference_xxh3({}));
  // `xxhsum -H2 /dev/null`
  BOOST_TEST(h.to_hex(HashAlgorithm::Xxh3_128) == "99aa06d3014798d86001c324468d497f");
  BOOST_TEST(h.to_hex() == "99aa06d3014798d86001c324468d497f" + std::string(32, '0'));
}

BOOST_AUTO_TEST_CASE(xxh3_of_short_strings_matches_library) {
  for (std::string_view s : {"a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz",
                             "The quick brown fox jumps over the lazy dog"}) {
    const BlockHash h = hash_bytes(HashAlgorithm::Xxh3_128, bytes_of(s));
    BOOST_TEST(h == reference_xxh3(bytes_of(s)), s);
    for (std::size_t i = 16; i < 32; ++i) BOOST_TEST(h.bytes[i] == 0);
  }
}

BOOST_AUTO_TEST_CASE(xxh3_of_every_length_class_matches_library) {
  // XXH3 has separate code for 0-16, 17-128, 129-240 and long inputs (stripes, blocks of
  // 1 KiB); cover each boundary and an unaligned start.
  const auto buf = testing::random_bytes((1 << 20) + 64, 7);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n : {511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537,
                        1 << 20}) {
    lengths.push_back(n);
  }
  for (std::size_t n : lengths) {
    for (std::size_t off : {0, 1, 13}) {
      const auto span = std::span(buf).subspan(off, n);
      BOOST_TEST(hash_bytes(HashAlgorithm::Xxh3_128, span) == reference_xxh3(span),
                 "length " << n << " offset " << off);
    }
  }
}

BOOST_AUTO_TEST_CASE(avx2_and_generic_builds_agree_on_random_buffers) {
  BOOST_TEST(xxh3_path_available(Xxh3Path::Generic));
  const bool avx2 = xxh3_path_available(Xxh3Path::Avx2);
  BOOST_TEST(active_xxh3_path() == (avx2 ? Xxh3Path::Avx2 : Xxh3Path::Generic));
  BOOST_TEST_MESSAGE("active XXH3 path: " << xxh3_path_name(active_xxh3_path()));
  if (!avx2) {
    BOOST_TEST_MESSAGE("CPU without AVX2: only the generic build is checked");
  }
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const std::size_t n = (seed * seed * 977) % 200000 + seed;  // 978 .. ~200 KB, varied
    const auto buf = testing::random_bytes(n, seed);
    for (std::size_t len : {n, n / 3, std::size_t{seed % 17}, std::size_t{seed * 7 % 241}}) {
      const auto span = std::span(buf).first(len);
      const BlockHash g = hash_xxh3_128_with(Xxh3Path::Generic, span);
      BOOST_TEST(g == reference_xxh3(span), "generic, length " << len);
      if (avx2) BOOST_TEST(hash_xxh3_128_with(Xxh3Path::Avx2, span) == g, "avx2, length " << len);
    }
  }
}

BOOST_AUTO_TEST_CASE(sha256_known_vectors) {
  BOOST_TEST(hash_bytes(HashAlgorithm::Sha256, bytes_of("abc")).to_hex() ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(hash_bytes(HashAlgorithm::Sha256, {}).to_hex(HashAlgorithm::Sha256) ==
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(hash_bytes(HashAlgorithm::Sha256,
                        bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                 .to_hex() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  BOOST_TEST(hash_bytes(HashAlgorithm::Sha256, bytes_of(million)).to_hex() ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(sha256_is_consistent_across_threads) {
  // One EVP context per thread is reused between calls; interleave threads to check that.
  const auto buf = testing::random_bytes(300000, 3);
  const BlockHash expected = hash_bytes(HashAlgorithm::Sha256, buf);
  std::vector<BlockHash> got(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        hash_bytes(HashAlgorithm::Sha256, std::span(buf).first(t * 1000 + static_cast<std::size_t>(i)));
      }
      got[t] = hash_bytes(HashAlgorithm::Sha256, buf);
    });
  }
  for (auto& th : threads) th.join();
  for (const BlockHash& h : got) BOOST_TEST(h == expected);
}

BOOST_AUTO_TEST_CASE(combine_hashes_the_concatenated_significant_bytes) {
  const BlockHash l = hash_bytes(HashAlgorithm::Xxh3_128, bytes_of("left"));
  const BlockHash r = hash_bytes(HashAlgorithm::Xxh3_128, bytes_of("right"));
  std::vector<std::byte> cat(32);
  std::memcpy(cat.data(), l.bytes.data(), 16);
  std::memcpy(cat.data() + 16, r.bytes.data(), 16);
  BOOST_TEST(combine(HashAlgorithm::Xxh3_128, l, r) == reference_xxh3(cat));
  BOOST_TEST(combine(HashAlgorithm::Xxh3_128, l, r) != combine(HashAlgorithm::Xxh3_128, r, l));

  const BlockHash sl = hash_bytes(HashAlgorithm::Sha256, bytes_of("left"));
  const BlockHash sr = hash_bytes(HashAlgorithm::Sha256, bytes_of("right"));
  std::vector<std::byte> scat(64);
  std::memcpy(scat.data(), sl.bytes.data(), 32);
  std::memcpy(scat.data() + 32, sr.bytes.data(), 32);
  BOOST_TEST(combine(HashAlgorithm::Sha256, sl, sr) == hash_bytes(HashAlgorithm::Sha256, scat));
}

BOOST_AUTO_TEST_CASE(algorithm_numbers_names_and_sizes) {
  BOOST_TEST(static_cast<int>(HashAlgorithm::Xxh3_128) == 1);
  BOOST_TEST(static_cast<int>(HashAlgorithm::Sha256) == 2);
  BOOST_TEST(!is_known_hash_algorithm(0));
  BOOST_TEST(is_known_hash_algorithm(1));
  BOOST_TEST(is_known_hash_algorithm(2));
  BOOST_TEST(!is_known_hash_algorithm(3));
  BOOST_TEST(digest_size(HashAlgorithm::Xxh3_128) == 16u);
  BOOST_TEST(digest_size(HashAlgorithm::Sha256) == 32u);
  BOOST_TEST(hash_algorithm_name(HashAlgorithm::Xxh3_128) == "xxh3-128");
  BOOST_TEST(hash_algorithm_name(HashAlgorithm::Sha256) == "sha256");
  BlockHash a, b;
  BOOST_TEST(a == b);
  b.bytes[31] = 1;
  BOOST_TEST(a != b);
  BOOST_TEST(b.to_hex().size() == 64u);
  BOOST_TEST(b.to_hex().substr(62) == "01");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace vmrepl
