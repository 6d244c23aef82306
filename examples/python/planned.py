#!/usr/bin/env python3
"""A planned disaster-recovery runbook between two services of this process over 127.0.0.1.

    VMREPL_LIBRARY=build/capi/libvmrepl.so PYTHONPATH=bindings/python \\
        python3 examples/python/planned.py [WORK_DIR] [--size-mib N]

hv-a replicates web01 to hv-b. Then, as an operator would on the day of a planned move:

  1. prepare the planned failover on hv-a (web01 off; a final cycle; ReplicationState 4),
  2. fail over on hv-b (the latest point becomes web01's disk there; state 5),
  3. reverse the replication on hv-b: hv-a becomes hv-b's replica and gets only the blocks
     either side changed since their common point,
  4. start web01 on hv-b (it runs and writes; a cycle carries the writes to hv-a),
  5.-8. fail back the same way (prepare on hv-b, fail over on hv-a, reverse on hv-a, start).

Each hv-a / hv-b recovery server admits the other: a reverse makes the old primary a replica.
Every step prints its job's final state and both sides' ReplicationMode / ReplicationState;
each reverse prints what it sent against the disk's size. WORK_DIR defaults to a fresh
temporary directory (removed at the end). Exit status 0 when, at the end, hv-b's replica equals
hv-a's disk byte for byte.
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


class Runbook:
    def __init__(self, a: vmrepl.Service, b: vmrepl.Service, vm: vmrepl.Instance, size: int) -> None:
        self.hosts = {"hv-a": a, "hv-b": b}
        self.vm = vm
        self.size = size
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

    def sent(self, r: vmrepl.Instance) -> None:
        share = 100.0 * r.DataBytesSent / self.size
        print(f"   reverse sent {r.BlocksSent} blocks, {r.DataBytesSent} data bytes ({r.WireBytesSent} bytes "
              f"on the wire) of a {self.size}-byte disk ({share:.2f}%); changes found by {r.ChangeSource}")

    def fail_over(self, old: str, new: str, port: int, workload_seed: int) -> None:
        """One planned move from host `old` to host `new` (`port`: old's listener)."""
        o, n, vm = self.hosts[old], self.hosts[new], self.vm.Name
        o.request_state_change(vm, vmrepl.EnabledState.Off)
        self.step(f"prepare planned failover on {old}",
                  o.request_replication_state_change(vm, vmrepl.RequestedState.SyncedReplicationComplete))
        self.step(f"fail over on {new}", n.initiate_failover(vm))
        # The new primary's disk is the old one's; its workload changes a few blocks before the
        # reverse (it may run already: only the old primary must be off).
        for k in range(4):
            write(n.disk_path(vm), (workload_seed * 7 + k * 131) % (self.size // BLOCK) * BLOCK + 100,
                  os.urandom(3000))
        settings = vmrepl.ReplicationSettingData(
            RecoveryConnectionPoint=old, RecoveryServerPortNumber=port, AuthenticationType=1,
            ReplicationInterval=300, RecoveryHistory=3, CompressionEnabled=True,
        )
        r = self.step(f"reverse replication on {new} -> {old}", n.reverse_replication_relationship(vm, settings))
        assert r is not None
        self.sent(r)
        self.step(f"start {self.vm.ElementName} on {new}", n.request_state_change(vm, vmrepl.EnabledState.Running))
        write(n.disk_path(vm), self.size // 2, os.urandom(BLOCK))
        c = n.replicate_now(vm).wait(timeout=600)
        print(f"   cycle {new} -> {old}: {c.BlocksSent} blocks")


def main(work: str, size_mib: int) -> int:
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

        vm = a.define_system(name="web01", disks=[size])
        disk = a.disk_path(vm)
        for offset in range(0, size, 4 * MiB):
            write(disk, offset, os.urandom(MiB))
        print(f"defined {vm.ElementName} ({vm.Name}) on hv-a, {size_mib} MiB disk")
        settings = vmrepl.ReplicationSettingData(
            RecoveryConnectionPoint="hv-b", RecoveryServerPortNumber=port_b, AuthenticationType=1,
            ReplicationInterval=300, RecoveryHistory=3, CompressionEnabled=True,
        )
        a.create_replication_relationship(vm, settings).wait(timeout=60)
        ir = a.start_replication(vm, vmrepl.InitialReplicationType.Network).wait(timeout=600)
        print(f"initial replication hv-a -> hv-b: {ir.BlocksSent} blocks")

        book = Runbook(a, b, vm, size)
        book.fail_over("hv-a", "hv-b", port_a, 1)
        book.fail_over("hv-b", "hv-a", port_b, 2)

        image = b.get_system(vm.Name).Folder + "/replica/disk0.img"
        if read(image) != read(a.disk_path(vm)):
            print("hv-b's replica DIFFERS from hv-a's disk", file=sys.stderr)
            return 1
        print("failed back: hv-a is the primary again and hv-b's replica equals its disk")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="?", help="folder for both host roots (default: a temporary directory)")
    ap.add_argument("--size-mib", type=int, default=64, help="disk size in MiB (default 64, at least 8)")
    args = ap.parse_args()
    if args.size_mib < 8:
        ap.error("--size-mib must be at least 8")
    tmp = None if args.work else tempfile.mkdtemp(prefix="vmrepl-planned-")
    work = os.path.abspath(args.work or tmp)  # type: ignore[arg-type]
    try:
        sys.exit(main(work, args.size_mib))
    except vmrepl.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
