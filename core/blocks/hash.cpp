#include "core/blocks/hash.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/blocks/xxh3_kernels.h"

namespace vmrepl {
namespace {

using Xxh3Fn = void (*)(const void*, std::size_t, uint8_t*) noexcept;

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // may run before constructors (static init of a caller)
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

Xxh3Fn pick_xxh3() {
  return cpu_has_avx2() ? detail::xxh3_128_avx2 : detail::xxh3_128_generic;
}

// Chosen once; a function-local static so that callers running during static initialization
// still get a valid pointer.
Xxh3Fn xxh3_fn() {
  static const Xxh3Fn fn = pick_xxh3();
  return fn;
}

[[noreturn]] void openssl_fatal(const char* what) {
  // SHA-256 from the default provider only fails when memory is exhausted or the library is
  // broken; neither can be handled per block, and a wrong digest must never be returned.
  std::fprintf(stderr, "vmrepl: OpenSSL %s failed\n", what);
  std::abort();
}

const EVP_MD* sha256_md() {
  // Fetched once: an implicit fetch per EVP_DigestInit_ex costs a provider lookup per block.
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) openssl_fatal("EVP_MD_fetch(SHA256)");
    return m;
  }();
  return md;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

BlockHash sha256(std::span<const std::byte> a, std::span<const std::byte> b = {}) {
  // One context per thread, reused: EVP_MD_CTX_new per block would allocate every time.
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) openssl_fatal("EVP_MD_CTX_new");
  BlockHash h;
  unsigned int len = 0;
  if (EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      (!b.empty() && EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1) ||
      EVP_DigestFinal_ex(ctx.get(), h.bytes.data(), &len) != 1 || len != 32) {
    openssl_fatal("SHA-256 digest");
  }
  return h;
}

std::string hex(const uint8_t* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 0xF];
  }
  return s;
}

}  // namespace

bool is_known_hash_algorithm(uint32_t value) {
  return value == static_cast<uint32_t>(HashAlgorithm::Xxh3_128) ||
         value == static_cast<uint32_t>(HashAlgorithm::Sha256);
}

std::string_view hash_algorithm_name(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::Xxh3_128: return "xxh3-128";
    case HashAlgorithm::Sha256: return "sha256";
  }
  return "unknown";
}

std::size_t digest_size(HashAlgorithm a) { return a == HashAlgorithm::Sha256 ? 32 : 16; }

std::string BlockHash::to_hex() const { return hex(bytes.data(), bytes.size()); }

std::string BlockHash::to_hex(HashAlgorithm a) const { return hex(bytes.data(), digest_size(a)); }

BlockHash hash_bytes(HashAlgorithm a, std::span<const std::byte> data) {
  if (a == HashAlgorithm::Sha256) return sha256(data);
  BlockHash h;
  xxh3_fn()(data.data(), data.size(), h.bytes.data());
  return h;
}

BlockHash combine(HashAlgorithm a, const BlockHash& left, const BlockHash& right) {
  const std::size_t n = digest_size(a);
  if (a == HashAlgorithm::Sha256) {
    return sha256(std::as_bytes(std::span(left.bytes.data(), n)),
                  std::as_bytes(std::span(right.bytes.data(), n)));
  }
  uint8_t buf[32];
  std::memcpy(buf, left.bytes.data(), n);
  std::memcpy(buf + n, right.bytes.data(), n);
  BlockHash h;
  xxh3_fn()(buf, 2 * n, h.bytes.data());
  return h;
}

Xxh3Path active_xxh3_path() {
  return xxh3_fn() == detail::xxh3_128_avx2 ? Xxh3Path::Avx2 : Xxh3Path::Generic;
}

std::string_view xxh3_path_name(Xxh3Path p) {
  if (p == Xxh3Path::Avx2) return "avx2";
#if defined(__x86_64__)
  return "generic-sse2";
#else
  return "generic";
#endif
}

bool xxh3_path_available(Xxh3Path p) { return p == Xxh3Path::Generic || cpu_has_avx2(); }

BlockHash hash_xxh3_128_with(Xxh3Path p, std::span<const std::byte> data) {
  BlockHash h;
  (p == Xxh3Path::Avx2 ? detail::xxh3_128_avx2 : detail::xxh3_128_generic)(
      data.data(), data.size(), h.bytes.data());
  return h;
}

}  // namespace vmrepl
