#!/usr/bin/env bash
# Compares libvmrepl.so against the committed ABI baseline (capi/abi/libvmrepl.abi) with
# abidiff. Fails on an incompatible change (abidiff bit 8) or a tool error; additions are
# compatible and only reported.
#   abi_check.sh LIB [BASELINE]            check
#   abi_check.sh --update LIB [BASELINE]   rewrite the baseline (after a deliberate addition)
#   abi_check.sh --self-test WORKDIR       proves the check flags an incompatible change
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "--update" ]; then
  lib=$2; base=${3:-$here/capi/abi/libvmrepl.abi}
  abidw --no-corpus-path --no-comp-dir-path --exported-interfaces-only --out-file "$base" "$lib" && echo "baseline written: $base"
  exit $?
fi

if [ "${1:-}" = "--self-test" ]; then
  # Two builds of a tiny library: the second changes a public signature incompatibly.
  w=$2; mkdir -p "$w"
  printf 'int vmr_probe(int a) { return a; }\n' > "$w/v1.c"
  printf 'long vmr_probe(long a, long b) { return a + b; }\n' > "$w/v2.c"
  cc -g -shared -fPIC -o "$w/libprobe1.so" "$w/v1.c" && cc -g -shared -fPIC -o "$w/libprobe2.so" "$w/v2.c" || exit 2
  abidw --no-corpus-path --exported-interfaces-only --out-file "$w/probe1.abi" "$w/libprobe1.so" || exit 2
  # The real check must refuse this pair.
  if "$0" "$w/libprobe2.so" "$w/probe1.abi" >"$w/probe.out" 2>&1; then
    echo "self-test: the check did NOT refuse an incompatible change"; cat "$w/probe.out"; exit 1
  fi
  echo "self-test: the check refuses an incompatible change:"; grep -E "INCOMPATIBLE|changed" "$w/probe.out" | head -3
  exit 0
fi

lib=$1; base=${2:-$here/capi/abi/libvmrepl.abi}
[ -f "$base" ] || { echo "no ABI baseline at $base"; exit 1; }
out=$(abidiff --exported-interfaces-only "$base" "$lib"); rc=$?
echo "$out"
if (( rc & 1 )) || (( rc & 2 )); then echo "abidiff error (rc=$rc)"; exit 1; fi
# Bit 8: a symbol was removed. Bit 4 with changed (not only added) functions or variables:
# a signature or a reachable type changed. Both break callers built against the baseline.
changed=$(printf '%s\n' "$out" | sed -n 's/.*changes summary: \([0-9]*\) Removed[^,]*, \([0-9]*\) Changed.*/\1 \2/p' | awk '{s+=$1+$2} END {print s+0}')
if (( rc & 8 )) || { (( rc & 4 )) && [ "$changed" -gt 0 ]; }; then
  echo "INCOMPATIBLE ABI change against the baseline (rc=$rc)"; exit 1
fi
if (( rc & 4 )); then echo "compatible ABI change (additions only); refresh the baseline with tools/abi_check.sh --update"; fi
echo "ABI check passed"
exit 0
