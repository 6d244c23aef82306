#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what is missing (tools/setup.sh),
# builds the release tree (build/), an AddressSanitizer + UBSan tree (build-asan/) and a libFuzzer
# tree (build-fuzz/), then one
# ctest run drives every suite — C++, C, the sanitizer run of the C++ suites, and the layer
# check — so one summary line closes the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/bin:$PATH   # Debian's python3 (no PyPI)
JOBS=${JOBS:-$(nproc)}

bash tools/setup.sh --packages-only
CI_FLAGS=(-DVMREPL_WERROR=ON)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CI_FLAGS[@]}" >/dev/null
cmake --build build -j "$JOBS"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMREPL_SANITIZE=ON "${CI_FLAGS[@]}" \
  >/dev/null
cmake --build build-asan -j "$JOBS"

# The libFuzzer target (clang) in its own tree; ctest runs it for a short time.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMREPL_FUZZ=ON \
  -DVMREPL_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$JOBS" --target frame_decoder_fuzz

# Install into a staging prefix so the C test compiles against the installed header and
# library through pkg-config, as a user would.
rm -rf build/stage && cmake --install build --prefix "$PWD/build/stage" >/dev/null

ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
