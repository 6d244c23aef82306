// XXH3-128, baseline build. On x86-64 the SSE2 kernel is pinned explicitly so that a global
// -march=native cannot silently turn this "generic" unit into an AVX-512 one.
#if defined(__x86_64__) && !defined(XXH_VECTOR)
#define XXH_VECTOR XXH_SSE2
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/blocks/xxh3_kernels.h"

namespace vmrepl::detail {

void xxh3_128_generic(const void* data, std::size_t len, uint8_t* out) noexcept {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
  for (std::size_t i = 0; i < sizeof c.digest; ++i) out[i] = c.digest[i];
}

}  // namespace vmrepl::detail
