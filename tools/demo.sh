#!/usr/bin/env bash
# The README's demo: installs what is missing, builds, and runs the demos on the embedded
# `local:` engine in a scratch folder: a VM digest, replication between two services, then the
# failover runbook (planned failover, reverse and failback; unplanned failover and reverse),
# then two vmrepld daemons replicating over mutual TLS, driven by vmreplctl through the planned runbook.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
dir=${VMREPL_DEMO_ROOT:-/tmp/vmrepl-demo}
mkdir -p "$dir"
echo "== 1. ComputeDigest of a VM (host root $dir/hv-a) =="
./build/examples/digest_demo "$dir/hv-a"
echo
echo "== 2. Replication hv-a -> hv-b on 127.0.0.1 =="
./build/examples/replication_demo "$dir"
echo
echo "== 3. Failover runbook: planned failover, reverse, failback; unplanned failover, reverse =="
./build/examples/failover_runbook "$dir"
echo
echo "== 4. The planned runbook over two vmrepld daemons (admin sockets, replication over mutual TLS), with vmreplctl only =="
bash examples/cli/daemons_demo.sh build "$dir/daemons"
