#!/usr/bin/env bash
# Planned failover runbook (no data loss) between two vmrepld hosts, with vmreplctl only.
#
# VM replicates from HOST_A to HOST_B. The runbook moves it to HOST_B and back:
#
#   failover (PHASE=over)                    failback (PHASE=back)
#   1. on A: VM off (vm stop)                 6. on B: VM off (vm stop)
#   2. on A: failover --prepare  (state 4)    7. on B: failover --prepare  (state 4)
#   3. on B: failover            (state 5)    8. on A: failover            (state 5)
#   4. on B: vm start                         9. on A: vm start
#   5. on B: reverse to A (B primary, A       10. on A: reverse to B (A primary, B
#      replica, both state 3)                     replica, both state 3)
#
# PHASE=all (the default) runs both halves one after the other; PHASE=over and PHASE=back run
# one half, so that the VM can work on HOST_B in between. Each step prints what it does and
# the command; the script stops with a non-zero status at the first failure (vmreplctl's exit
# status: 1 a job failed, 3 a call was refused) or when a side is not in the expected state.
#
# Environment:
#   VMREPLCTL        the vmreplctl binary (default: vmreplctl on PATH)
#   URI_A, URI_B     the two services, e.g. unix:/run/vmrepl/vmrepld.sock (required)
#   HOST_A, HOST_B   their host names, as each other's hosts tables know them (default hv-a, hv-b)
#   PORT_A, PORT_B   their replication listener ports (required; each is the
#                    RecoveryServerPortNumber of a reverse towards that host)
#   VM               the VM's name or GUID (required)
#   PHASE            all | over | back (default all)
#   THUMB_A, THUMB_B each host's certificate thumbprint, for certificate authentication
#                    (AuthenticationType 2; then PORT_A, PORT_B are the hosts' certificate
#                    listeners): a reverse names the new primary's own certificate. Unset
#                    (default): the relationship's authentication as it is.
#
# Example:
#   URI_A=unix:/srv/a.sock URI_B=unix:/srv/b.sock PORT_A=6600 PORT_B=6600 VM=web01 \
#     examples/cli/planned.sh
set -euo pipefail

VMREPLCTL=${VMREPLCTL:-vmreplctl}
: "${URI_A:?URI_A is required}" "${URI_B:?URI_B is required}"
: "${PORT_A:?PORT_A is required}" "${PORT_B:?PORT_B is required}" "${VM:?VM is required}"
HOST_A=${HOST_A:-hv-a}
HOST_B=${HOST_B:-hv-b}
PHASE=${PHASE:-all}

n=0
step() { n=$((n + 1)); printf '\n==> step %d: %s\n' "$n" "$*"; }

# ctl URI ARGS...: run vmreplctl against URI, echoing the command.
ctl() {
  local uri=$1
  shift
  printf '+ vmreplctl --uri %s %s\n' "$uri" "$*"
  "$VMREPLCTL" --uri "$uri" -q "$@"
}

# prop URI NAME: the number of property NAME of VM on URI (from `vmreplctl status`).
prop() {
  local out
  out=$("$VMREPLCTL" --uri "$1" status "$VM") || return
  awk -v k="$2" '$1 == k { print $2; found = 1 } END { exit !found }' <<<"$out"
}

# expect URI HOST MODE STATE: stop unless VM on URI has this ReplicationMode and ReplicationState.
expect() {
  local mode state
  mode=$(prop "$1" ReplicationMode)
  state=$(prop "$1" ReplicationState)
  if [[ $mode != "$3" || $state != "$4" ]]; then
    printf 'error: %s on %s is ReplicationMode %s, ReplicationState %s; expected %s, %s\n' \
      "$VM" "$2" "$mode" "$state" "$3" "$4" >&2
    exit 1
  fi
  printf '    %s on %s: ReplicationMode %s, ReplicationState %s\n' "$VM" "$2" "$mode" "$state"
}

# move OLD_URI OLD_HOST OLD_PORT NEW_URI NEW_HOST [NEW_THUMB]: planned failover of VM from OLD
# to NEW, then the reverse so that NEW replicates to OLD.
move() {
  local old=$1 old_host=$2 old_port=$3 new=$4 new_host=$5 new_thumb=${6:-}
  local cert=()
  [[ -z $new_thumb ]] || cert=(--auth-type 2 --thumbprint "$new_thumb")
  step "check: $VM replicates from $old_host (primary) to $new_host (replica)"
  expect "$old" "$old_host" 1 3
  expect "$new" "$new_host" 2 3

  step "on $old_host: turn $VM off (RequestStateChange 3)"
  if [[ $(prop "$old" EnabledState) != 3 ]]; then
    ctl "$old" vm stop "$VM"
  else
    echo "    already off"
  fi

  step "on $old_host: prepare the planned failover: final cycle, $VM locked off (RequestReplicationStateChange 4)"
  ctl "$old" failover "$VM" --prepare
  expect "$old" "$old_host" 1 4

  step "on $new_host: fail over to the planned point (InitiateFailover)"
  ctl "$new" failover "$VM"
  expect "$new" "$new_host" 2 5

  step "on $new_host: start $VM (RequestStateChange 2)"
  ctl "$new" vm start "$VM"

  step "on $new_host: reverse the replication towards $old_host:$old_port (ReverseReplicationRelationship)"
  ctl "$new" reverse "$VM" --recovery-server "$old_host" --port "$old_port" "${cert[@]}"
  expect "$new" "$new_host" 1 3
  expect "$old" "$old_host" 2 3
}

case $PHASE in
  all | over | back) ;;
  *) echo "error: PHASE must be all, over or back (got '$PHASE')" >&2; exit 2 ;;
esac

if [[ $PHASE == all || $PHASE == over ]]; then
  printf '### planned failover of %s: %s -> %s\n' "$VM" "$HOST_A" "$HOST_B"
  move "$URI_A" "$HOST_A" "$PORT_A" "$URI_B" "$HOST_B" "${THUMB_B:-}"
fi
if [[ $PHASE == all || $PHASE == back ]]; then
  printf '\n### failback of %s: %s -> %s\n' "$VM" "$HOST_B" "$HOST_A"
  move "$URI_B" "$HOST_B" "$PORT_B" "$URI_A" "$HOST_A" "${THUMB_A:-}"
fi
printf '\n### done: %s\n' "$VM"
ctl "$URI_A" status "$VM"
ctl "$URI_B" status "$VM"
