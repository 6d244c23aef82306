#!/usr/bin/env bash
# Two vmrepld daemons on 127.0.0.1 (hv-a, hv-b), each with its host root and admin socket
# under DIR, replicating with certificate authentication (AuthenticationType 2: mutual TLS,
# certificates from tools/mkcerts.sh, each relationship naming its primary's thumbprint), and
# the planned runbook (examples/cli/planned.sh) between them with vmreplctl only: enable
# replication of a 64 MiB VM, failover to hv-b, reverse, failback; the disks are compared at
# the end. Usage: examples/cli/daemons_demo.sh BUILD_DIR DIR
set -euo pipefail
build=$(cd "$1" && pwd)
dir=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
export VMREPLCTL="$build/tools/vmreplctl/vmreplctl"
rm -rf "$dir" && mkdir -p "$dir"
sh "$repo/tools/mkcerts.sh" "$dir/certs" hv-a hv-b >/dev/null
thumb() { awk '$1 == "sha1" { print $2 }' "$dir/certs/$1.thumbprint"; }
export THUMB_A=$(thumb hv-a) THUMB_B=$(thumb hv-b)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_A=$(free_port)
PORT_B=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() {  # name peer port
  cat > "$dir/$1.toml" <<CONF
host_name = "$1"
host_root = "$dir/$1"
[replication]
tls_listen = "127.0.0.1:$3"
hosts = { "$2" = "127.0.0.1" }
[management]
socket = "$dir/$1.sock"
[tls]
certificate = "$dir/certs/$1.pem"
key = "$dir/certs/$1.key"
ca = "$dir/certs/ca.pem"
CONF
  "$build/tools/vmrepld/vmrepld" --config "$dir/$1.toml" 2> "$dir/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/$1.sock" ] && return 0; sleep 0.1; done
  echo "vmrepld $1 did not start:"; cat "$dir/$1.log"; exit 1
}
start hv-a hv-b "$PORT_A"
start hv-b hv-a "$PORT_B"
export URI_A="unix:$dir/hv-a.sock" URI_B="unix:$dir/hv-b.sock" PORT_A PORT_B VM=web01
ctl() { echo "\$ vmreplctl --uri $*"; "$VMREPLCTL" --uri "$@"; }
echo "-- both hosts are recovery servers admitting each other, by certificate only"
ctl "$URI_B" server enable --auth 2 --thumbprint "$THUMB_B"
ctl "$URI_B" auth add hv-a --location "$dir/hv-b/replicas"
ctl "$URI_A" server enable --auth 2 --thumbprint "$THUMB_A"
ctl "$URI_A" auth add hv-b --location "$dir/hv-a"
echo "-- a 64 MiB VM on hv-a, replicated to hv-b"
ctl "$URI_A" vm create web01 --disk 64M
disk=$("$VMREPLCTL" --uri "$URI_A" --json vm show web01 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["DiskPaths"][0])')
/usr/bin/python3 "$repo/bench/gen_image.py" mixed "$disk" 64 7 >/dev/null
ctl "$URI_A" enable web01 --recovery-server hv-b --port "$PORT_B" --interval 300 --auth-type 2 --thumbprint "$THUMB_A"
ctl "$URI_A" start web01
ctl "$URI_B" status web01
echo "-- the planned runbook: failover to hv-b, reverse (naming hv-b's certificate), failback"
bash "$repo/examples/cli/planned.sh"
ctl "$URI_A" status web01
replica=$("$VMREPLCTL" --uri "$URI_B" --json vm show web01 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["Folder"])')/replica/disk0.img
cmp "$disk" "$replica" && echo "hv-a's disk and hv-b's replica are byte-equal"
