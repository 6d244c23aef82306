#!/usr/bin/env bash
# Unplanned failover runbook between two vmrepld hosts, with vmreplctl only.
#
# VM replicated from HOST_A to HOST_B, and HOST_A is lost without warning: the writes it made
# since its last cycle never reached HOST_B.
#
#   failover (PHASE=failover): HOST_A is down; only HOST_B is used
#   1. on B: list the recovery points (points)
#   2. on B: fail over to POINT, default the latest (InitiateFailover; state 5)
#   3. on B: start the VM (RequestStateChange 2)
#   4. on B: commit the failover (CommitFailover; state 6, the other points are dropped)
#
#   failback of the replication (PHASE=reverse): HOST_A is back
#   5. on A: VM off, and made a replica waiting for its initial replication
#      (make-replica: RequestReplicationStateChange 2; mode 2, state 2)
#   6. on B: reverse towards A, verified in full (ReverseReplicationRelationship: HOST_A's
#      disks are re-hashed, as they may hold writes HOST_B never saw; only what differs is sent)
#   7. on B: the initial replication back (StartReplication) when B waits for it (state 1), or
#      a resynchronization (Resynchronize) when B asks for one (state 9)
#   8. check: B primary, A replica, both Replicating (state 3)
#
# PHASE=all (the default) runs both parts one after the other (HOST_A must be back by step 5).
# Each step prints what it does and the command; the script stops with a non-zero status at
# the first failure (vmreplctl's exit status: 1 a job failed, 3 a call was refused) or when a
# side is not in the expected state.
#
# Environment:
#   VMREPLCTL        the vmreplctl binary (default: vmreplctl on PATH)
#   URI_A, URI_B     the two services, e.g. unix:/run/vmrepl/vmrepld.sock (URI_A is not
#                    needed for PHASE=failover)
#   HOST_A, HOST_B   their host names (default hv-a, hv-b)
#   PORT_A           HOST_A's replication listener port, the RecoveryServerPortNumber of the
#                    reverse (not needed for PHASE=failover)
#   PORT_B           HOST_B's port (accepted for symmetry with planned.sh; not used)
#   VM               the VM's name or GUID (required)
#   POINT            recovery point: InstanceID or RecoveryPointSequence (default the latest)
#   PHASE            all | failover | reverse (default all)
#   THUMB_B          HOST_B's certificate thumbprint, for certificate authentication
#                    (AuthenticationType 2; PORT_A is then HOST_A's certificate listener):
#                    the reverse names it, as B is the primary now. Unset (default): the
#                    relationship's authentication as it is.
set -euo pipefail

VMREPLCTL=${VMREPLCTL:-vmreplctl}
: "${URI_B:?URI_B is required}" "${VM:?VM is required}"
HOST_A=${HOST_A:-hv-a}
HOST_B=${HOST_B:-hv-b}
PHASE=${PHASE:-all}
POINT=${POINT:-}

case $PHASE in
  all | failover | reverse) ;;
  *) echo "error: PHASE must be all, failover or reverse (got '$PHASE')" >&2; exit 2 ;;
esac
if [[ $PHASE != failover ]]; then
  : "${URI_A:?URI_A is required}" "${PORT_A:?PORT_A is required}"
fi

n=0
step() { n=$((n + 1)); printf '\n==> step %d: %s\n' "$n" "$*"; }

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

if [[ $PHASE == all || $PHASE == failover ]]; then
  printf '### unplanned failover of %s to %s (%s is not used)\n' "$VM" "$HOST_B" "$HOST_A"
  step "on $HOST_B: $VM must still be a replica"
  expect "$URI_B" "$HOST_B" 2 3

  step "on $HOST_B: the recovery points of $VM"
  ctl "$URI_B" points "$VM"

  if [[ -n $POINT ]]; then
    step "on $HOST_B: fail over to recovery point $POINT (InitiateFailover)"
    ctl "$URI_B" failover "$VM" --point "$POINT"
  else
    step "on $HOST_B: fail over to the latest recovery point (InitiateFailover)"
    ctl "$URI_B" failover "$VM"
  fi
  expect "$URI_B" "$HOST_B" 2 5

  step "on $HOST_B: start $VM (RequestStateChange 2)"
  ctl "$URI_B" vm start "$VM"

  step "on $HOST_B: commit the failover (CommitFailover)"
  ctl "$URI_B" commit "$VM"
  expect "$URI_B" "$HOST_B" 2 6
fi

if [[ $PHASE == all || $PHASE == reverse ]]; then
  printf '\n### %s is back: reverse the replication of %s, %s -> %s\n' "$HOST_A" "$VM" "$HOST_B" "$HOST_A"
  step "on $HOST_B: $VM must be failed over and committed"
  expect "$URI_B" "$HOST_B" 2 6

  step "on $HOST_A: turn the stale $VM off (RequestStateChange 3)"
  if [[ $(prop "$URI_A" EnabledState) != 3 ]]; then
    ctl "$URI_A" vm stop "$VM"
  else
    echo "    already off"
  fi

  step "on $HOST_A: make $VM a replica waiting for its initial replication (RequestReplicationStateChange 2)"
  ctl "$URI_A" make-replica "$VM"
  expect "$URI_A" "$HOST_A" 2 2

  step "on $HOST_B: reverse towards $HOST_A:$PORT_A, verified in full (ReverseReplicationRelationship)"
  cert=()
  [[ -z ${THUMB_B:-} ]] || cert=(--auth-type 2 --thumbprint "$THUMB_B")
  ctl "$URI_B" reverse "$VM" --recovery-server "$HOST_A" --port "$PORT_A" --verify full "${cert[@]}"

  state=$(prop "$URI_B" ReplicationState)
  case $state in
    1)
      step "on $HOST_B: initial replication to $HOST_A (StartReplication; only what differs is sent)"
      ctl "$URI_B" start "$VM"
      ;;
    9)
      step "on $HOST_B: resynchronize with $HOST_A (Resynchronize)"
      ctl "$URI_B" resync "$VM"
      ;;
    3)
      step "on $HOST_B: already replicating: nothing to start"
      ;;
    *)
      echo "error: $VM on $HOST_B is in ReplicationState $state after the reverse" >&2
      exit 1
      ;;
  esac

  step "check: $HOST_B primary, $HOST_A replica, both replicating"
  expect "$URI_B" "$HOST_B" 1 3
  expect "$URI_A" "$HOST_A" 2 3
fi
printf '\n### done: %s\n' "$VM"
ctl "$URI_B" status "$VM"
if [[ $PHASE != failover ]]; then
  ctl "$URI_A" status "$VM"
fi
