#!/usr/bin/env bash
# Idempotent set-up for a Debian 12 machine: installs the Debian packages vmrepl needs (only
# those missing), then configures and builds. No PyPI: Python tooling is Debian's python3.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev llvm
  libuv1-dev libmsgpack-cxx-dev liblua5.4-dev lua5.4 libboost-test-dev libssl-dev
  libxxhash-dev libzstd-dev libsqlite3-dev libpugixml-dev libtomlplusplus-dev libcli11-dev
  nlohmann-json3-dev
  lua-busted lua-luv python3 python3-pytest python3-pip python3-setuptools ansible-core abigail-tools
  rsync hyperfine xxhash openssl iproute2 time xfsprogs valgrind
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" != "--packages-only" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${VMREPL_CMAKE_ARGS:-} >/dev/null
  cmake --build build
fi
