#include "core/blocks/zero.h"

#include <cstdint>
#include <cstring>

namespace vmrepl {
namespace {

// 16-byte lanes: SSE2 on x86-64 (baseline, no dispatch needed), plain words elsewhere.
using Lane = uint64_t __attribute__((vector_size(16)));
constexpr std::size_t kStride = 256;

}  // namespace

bool is_all_zero(std::span<const std::byte> data) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  std::size_t i = 0;
  // Four independent accumulators per 256 bytes keep the loads in flight; one test per stride
  // makes the early exit cheap without a branch per word. memcpy keeps unaligned input legal.
  for (; i + kStride <= n; i += kStride) {
    Lane a{}, b{}, c{}, d{};
    for (std::size_t k = 0; k < kStride; k += 64) {
      Lane w0, w1, w2, w3;
      std::memcpy(&w0, p + i + k, 16);
      std::memcpy(&w1, p + i + k + 16, 16);
      std::memcpy(&w2, p + i + k + 32, 16);
      std::memcpy(&w3, p + i + k + 48, 16);
      a |= w0;
      b |= w1;
      c |= w2;
      d |= w3;
    }
    const Lane r = a | b | c | d;
    if ((r[0] | r[1]) != 0) return false;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace vmrepl
