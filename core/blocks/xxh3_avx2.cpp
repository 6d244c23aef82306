// XXH3-128, AVX2 build. layer.cmake compiles this unit with -mavx2; hash.cpp calls it only
// after __builtin_cpu_supports("avx2").
#if defined(__x86_64__)
#define XXH_VECTOR XXH_AVX2
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/blocks/xxh3_kernels.h"

namespace vmrepl::detail {

void xxh3_128_avx2(const void* data, std::size_t len, uint8_t* out) noexcept {
#if defined(__x86_64__)
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
  for (std::size_t i = 0; i < sizeof c.digest; ++i) out[i] = c.digest[i];
#else
  xxh3_128_generic(data, len, out);
#endif
}

}  // namespace vmrepl::detail
