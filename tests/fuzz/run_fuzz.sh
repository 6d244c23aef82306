#!/bin/sh
# Runs a libFuzzer binary for a fixed time. The committed seeds are copied into a working
# corpus in the build tree (libFuzzer adds its finds to the first corpus directory, and the
# seeds must stay as committed); finds are kept between runs. Crash inputs go to
# WORK_DIR/artifacts/.
# usage: run_fuzz.sh BINARY SEED_DIR WORK_DIR SECONDS
set -eu
bin=$1 seeds=$2 work=$3 secs=$4
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin is missing: build it with tools/test.sh (the build-fuzz tree)" >&2
  exit 1
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
exec "$bin" -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus"
