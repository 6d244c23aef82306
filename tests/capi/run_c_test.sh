#!/usr/bin/env bash
# Builds tests/capi/capi_test.c as C11 against the *installed* header and library (the
# staging prefix tools/test.sh installs into) through pkg-config, then runs it.
set -euo pipefail
stage=$1; src=$2; out=$3
export PKG_CONFIG_PATH="$stage/lib/pkgconfig:$stage/lib/x86_64-linux-gnu/pkgconfig"
[ -f "$stage/include/vmrepl/vmrepl.h" ] || { echo "no installed header under $stage (run tools/test.sh)"; exit 1; }
mkdir -p "$out"
cc -std=c11 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags vmrepl) "$src/tests/capi/capi_test.c" \
   $(pkg-config --libs vmrepl) -o "$out/capi_c_test"
root=$(mktemp -d /tmp/vmrepl-c-test.XXXXXX)
trap 'rm -rf "$root"' EXIT
"$out/capi_c_test" "$root"
