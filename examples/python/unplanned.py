#!/usr/bin/env python3
"""An unplanned disaster-recovery runbook between two services of this process over 127.0.0.1.

    VMREPL_LIBRARY=build/capi/libvmrepl.so PYTHONPATH=bindings/python \\
        python3 examples/python/unplanned.py [WORK_DIR] [--size-mib N] [--point older|latest]

hv-a replicates web01 to hv-b and runs a few cycles; then hv-a is lost without warning (its last
writes were never replicated). As an operator would on that day:

  1. fail over on hv-b to a recovery point (--point: the latest, or the one before it; the
     failed-over disk is that point, checked against the point's Merkle roots),
  2. commit the failover on hv-b (the other recovery points are dropped; state 6),
  3. start web01 on hv-b (it runs and writes),
  4. when hv-a comes back: make its web01 a replica (ReplicationState 2, its disk kept),
  5. reverse the replication on hv-b -> hv-a, verified in full (hv-a's disk is re-hashed:
     it holds writes hv-b never saw, which must be undone),
  6. start the replication hv-b -> hv-a (hv-a gets only the blocks that differ).

Each hv-a / hv-b recovery server admits the other: the reverse makes the lost primary a replica.
Every step prints its job's final state and both sides' ReplicationMode / ReplicationState.
WORK_DIR defaults to a fresh temporary directory (removed at the end). Exit status 0 when, at
the end, hv-a's replica equals hv-b's disk byte for byte.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from typing import Optional

import vmrepl

MiB = 1 << 20
BLOCK = 64 * 1024


def write(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as disk:
        disk.seek(offset)
        disk.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def scribble(path: str, size: int, seed: int, blocks: int = 4) -> None:
    """The workload: a few writes of 3000 bytes into different blocks."""
    for k in range(blocks):
        write(path, (seed * 7 + k * 131) % (size // BLOCK) * BLOCK + 100, os.urandom(3000))


class Runbook:
    def __init__(self, a: vmrepl.Service, b: vmrepl.Service, vm: vmrepl.Instance) -> None:
        self.hosts = {"hv-a": a, "hv-b": b}
        self.vm = vm
        self.n = 0

    def states(self) -> str:
        out = []
        for name, svc in self.hosts.items():
            s = svc.get_system(self.vm.Name)
            out.append(f"{name} mode {int(s.ReplicationMode)} state {int(s.ReplicationState)} "
                       f"({s.ReplicationState.name})")
        return ", ".join(out)

    def step(self, what: str, job: Optional[vmrepl.Job]) -> Optional[vmrepl.Instance]:
        """Waits for the step's job (raises its vmrepl.Error if it fails) and prints the outcome."""
        self.n += 1
        if job is None:  # done at once (a VM state change)
            result, outcome = None, "done at once"
        else:
            result = job.wait(timeout=600)
            outcome = f"JobState {int(result.JobState)} ({result.JobState.name})"
        print(f"{self.n}. {what}: {outcome}; {self.states()}")
        return result


def main(work: str, size_mib: int, which: str) -> int:
    size = size_mib * MiB
    with vmrepl.open(
        f"local:{work}/hv-b", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"}
    ) as b, vmrepl.open(
        f"local:{work}/hv-a", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"}
    ) as a:
        # Both are recovery servers, each admitting the other.
        for svc, peer in ((b, "hv-a"), (a, "hv-b")):
            svc.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
            svc.add_authorization_entry(
                AllowedPrimaryHostSystem=peer, TrustGroup="DEFAULT", ReplicaStorageLocation=f"{work}/replicas-of-{peer}"
            ).wait()
        port_a, port_b = a.info().ListenPort, b.info().ListenPort
        print(f"hv-a listens on 127.0.0.1:{port_a}, hv-b on 127.0.0.1:{port_b}")

        def to(host: str, port: int) -> vmrepl.ReplicationSettingData:
            return vmrepl.ReplicationSettingData(
                RecoveryConnectionPoint=host, RecoveryServerPortNumber=port, AuthenticationType=1,
                ReplicationInterval=300, RecoveryHistory=3, CompressionEnabled=True,
            )

        vm = a.define_system(name="web01", disks=[size])
        disk_a = a.disk_path(vm)
        for offset in range(0, size, 4 * MiB):
            write(disk_a, offset, os.urandom(MiB))
        print(f"defined {vm.ElementName} ({vm.Name}) on hv-a, {size_mib} MiB disk")
        a.create_replication_relationship(vm, to("hv-b", port_b)).wait(timeout=60)
        ir = a.start_replication(vm, vmrepl.InitialReplicationType.Network).wait(timeout=600)
        print(f"initial replication hv-a -> hv-b: {ir.BlocksSent} blocks")
        for seed in (1, 2):
            scribble(disk_a, size, seed)
            c = a.replicate_now(vm).wait(timeout=600)
            print(f"cycle hv-a -> hv-b: {c.BlocksSent} blocks")
        scribble(disk_a, size, 3)  # never replicated: lost with hv-a
        print("hv-a is lost; its last writes never reached hv-b")

        points = b.list_recovery_points(vm.Name)
        print(f"recovery points on hv-b: {[p.RecoveryPointSequence for p in points]}")
        point = points[-1] if which == "latest" else points[-2]
        book = Runbook(a, b, vm)
        book.step(f"fail over on hv-b to point {point.RecoveryPointSequence} ({which})",
                  b.initiate_failover(vm.Name, point))
        roots = b.compute_digest(vm.Name).wait(timeout=600).DiskMerkleRoots
        if roots != point.DiskMerkleRoots:
            print("hv-b's failed-over disk is NOT the chosen recovery point", file=sys.stderr)
            return 1
        print(f"   hv-b's disk is point {point.RecoveryPointSequence} (Merkle roots match)")
        book.step("commit failover on hv-b", b.commit_failover(vm.Name))
        book.step(f"start {vm.ElementName} on hv-b", b.request_state_change(vm.Name, vmrepl.EnabledState.Running))
        scribble(b.disk_path(vm.Name), size, 4)  # the new primary's workload

        # hv-a comes back: its web01 (off) becomes a replica, then hv-b reverses onto it.
        a.request_state_change(vm, vmrepl.EnabledState.Off)
        book.step("make web01 on hv-a a replica",
                  a.request_replication_state_change(vm, vmrepl.RequestedState.WaitingToCompleteInitialReplication))
        r = book.step("reverse replication on hv-b -> hv-a (verify full)",
                      b.reverse_replication_relationship(vm.Name, to("hv-a", port_a), verify="full"))
        assert r is not None
        print(f"   reverse sent {r.BlocksSent} blocks, {r.DataBytesSent} data bytes of a {size}-byte disk; "
              f"changes found by {r.ChangeSource}")
        book.step("start replication hv-b -> hv-a",
                  b.start_replication(vm.Name, vmrepl.InitialReplicationType.Network))

        image = a.get_system(vm.Name).Folder + "/replica/disk0.img"
        if read(image) != read(b.disk_path(vm.Name)):
            print("hv-a's replica DIFFERS from hv-b's disk", file=sys.stderr)
            return 1
        print("recovered: hv-b is the primary and hv-a's replica equals its disk")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="?", help="folder for both host roots (default: a temporary directory)")
    ap.add_argument("--size-mib", type=int, default=64, help="disk size in MiB (default 64, at least 8)")
    ap.add_argument("--point", choices=("older", "latest"), default="older",
                    help="recovery point to fail over to (default: older, the one before the latest)")
    args = ap.parse_args()
    if args.size_mib < 8:
        ap.error("--size-mib must be at least 8")
    tmp = None if args.work else tempfile.mkdtemp(prefix="vmrepl-unplanned-")
    work = os.path.abspath(args.work or tmp)  # type: ignore[arg-type]
    try:
        sys.exit(main(work, args.size_mib, args.point))
    except vmrepl.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
