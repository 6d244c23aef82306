#!/usr/bin/env bash
# The README's demo: installs what is missing, builds, and runs the demo on the embedded
# `local:` engine in a scratch host root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
root=${VMREPL_DEMO_ROOT:-/tmp/vmrepl-demo}
echo "== digest demo (host root $root) =="
./build/examples/digest_demo "$root/hv-a"
