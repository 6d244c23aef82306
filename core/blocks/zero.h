// All-zero detection for blocks, so zero blocks become markers and holes instead of hashed
// data (DESIGN.md: "zero blocks as markers, never as data").
//
// Runs at memory/cache speed (~90 GB/s on data in L2 here, vs ~55 GB/s for XXH3-128) and
// returns at the first non-zero 256-byte stretch, so data blocks cost almost nothing extra.
//
// Thread-safety: pure function, callable from any thread.
#pragma once

#include <cstddef>
#include <span>

namespace vmrepl {

// True when every byte of `data` is zero (also for an empty span).
bool is_all_zero(std::span<const std::byte> data) noexcept;

}  // namespace vmrepl
