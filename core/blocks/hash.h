// Block hashing: the per-block digest of the block model (DESIGN.md, core/blocks).
//
// Two algorithms: XXH3-128 (default; non-cryptographic, ~55 GB/s on cached data with AVX2) and
// SHA-256 (OpenSSL EVP, SHA-NI, ~1.8 GB/s) for users who want a cryptographic digest. The
// numeric values of HashAlgorithm are persisted in index files and on the wire: never renumber.
//
// XXH3-128 is compiled twice (a baseline SSE2 build and an AVX2 build of the same library
// code) and the AVX2 one is picked at run time when the CPU has it: on Zen 4 AVX2 beats the
// AVX-512 path (research/limits.md §2), and the Debian shared library only has SSE2.
//
// Thread-safety: every function here may be called from any thread concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace vmrepl {

enum class HashAlgorithm : uint8_t {
  Xxh3_128 = 1,
  Sha256 = 2,
};

// True for the enumerators above (used to validate numbers read from files or the wire).
bool is_known_hash_algorithm(uint32_t value);
// "xxh3-128" / "sha256".
std::string_view hash_algorithm_name(HashAlgorithm a);
// Significant bytes of a digest: 16 for XXH3-128, 32 for SHA-256.
std::size_t digest_size(HashAlgorithm a);

// A digest of either algorithm. XXH3-128 fills bytes[0..16) with the canonical (big-endian)
// form, the same bytes `xxhsum -H2` prints, and leaves bytes[16..32) zero.
struct BlockHash {
  std::array<uint8_t, 32> bytes{};

  bool operator==(const BlockHash&) const = default;
  // Lowercase hex of all 32 bytes.
  std::string to_hex() const;
  // Lowercase hex of the digest_size(a) significant bytes.
  std::string to_hex(HashAlgorithm a) const;
};

// Digest of `data`.
BlockHash hash_bytes(HashAlgorithm a, std::span<const std::byte> data);

// Merkle interior node: H(left || right) over the digest_size(a) significant bytes of each
// child (32 input bytes for XXH3-128, 64 for SHA-256), with the same algorithm.
BlockHash combine(HashAlgorithm a, const BlockHash& left, const BlockHash& right);

// The XXH3 code paths, exposed so tests and benchmarks can compare and report them.
enum class Xxh3Path { Generic, Avx2 };
// The path hash_bytes() uses: Avx2 when the CPU supports it, else Generic. Chosen once.
Xxh3Path active_xxh3_path();
std::string_view xxh3_path_name(Xxh3Path p);  // "generic-sse2" / "avx2"
bool xxh3_path_available(Xxh3Path p);
// XXH3-128 through a given path. REQUIRES: xxh3_path_available(p).
BlockHash hash_xxh3_128_with(Xxh3Path p, std::span<const std::byte> data);

}  // namespace vmrepl
