// Internal to core/blocks: the two compiled builds of XXH3-128 behind hash_bytes().
//
// Each lives in its own translation unit with XXH_INLINE_ALL, so the library code is compiled
// with that unit's flags (xxh3_avx2.cpp gets -mavx2 from layer.cmake). This header and those
// units include nothing with C++ inline functions: an inline function compiled with -mavx2
// could be picked by the linker for the whole program and fault on a CPU without AVX2.
//
// Thread-safety: pure functions, callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmrepl::detail {

// Write the 16-byte canonical (big-endian) XXH3-128 digest of [data, data + len) to out.
void xxh3_128_generic(const void* data, std::size_t len, uint8_t* out) noexcept;
// REQUIRES: the CPU supports AVX2 (x86-64 only; elsewhere this forwards to the generic build).
void xxh3_128_avx2(const void* data, std::size_t len, uint8_t* out) noexcept;

}  // namespace vmrepl::detail
