#!/usr/bin/env python3
"""Replicate a VM between two services of this process over 127.0.0.1 (hv-a -> hv-b).

    VMREPL_LIBRARY=build/capi/libvmrepl.so PYTHONPATH=bindings/python \\
        python3 examples/python/replicate.py [WORK_DIR] [--size-mib N] [--cycles N]

hv-b is made a recovery server that admits hv-a; hv-a enables replication of web01, runs the
initial replication over the network, then the workload writes and hv-a replicates the changes
at once (replicate_now) a few times. At the end it prints hv-b's recovery points and both
sides' digests: hv-a's ComputeDigest of its disk and the roots hv-b computed for its latest
point, plus a SHA-256 of both images read from disk. WORK_DIR defaults to a fresh temporary
directory (removed at the end). Exit status 0 when the replica equals the primary.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile

import vmrepl

MiB = 1 << 20


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def write(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as disk:
        disk.seek(offset)
        disk.write(data)


def states(a: vmrepl.Service, b: vmrepl.Service, vm: vmrepl.Instance) -> str:
    pa, pb = a.get_system(vm), b.get_system(vm.Name)
    return (
        f"hv-a mode {int(pa.ReplicationMode)} state {int(pa.ReplicationState)} ({pa.ReplicationState.name}), "
        f"hv-b mode {int(pb.ReplicationMode)} state {int(pb.ReplicationState)} ({pb.ReplicationState.name})"
    )


def main(work: str, size_mib: int, cycles: int) -> int:
    with vmrepl.open(
        f"local:{work}/hv-b", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"}
    ) as b, vmrepl.open(
        f"local:{work}/hv-a", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"}
    ) as a:
        # hv-b: a recovery server that admits hv-a and keeps its replicas under one folder.
        b.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
        b.add_authorization_entry(
            AllowedPrimaryHostSystem="hv-a", TrustGroup="DEFAULT", ReplicaStorageLocation=f"{work}/hv-b-replicas"
        ).wait()
        port = b.info().ListenPort
        print(f"hv-b listens on 127.0.0.1:{port}")

        vm = a.define_system(name="web01", disks=[size_mib * MiB])
        disk = a.disk_path(vm, 0)
        for i, offset in enumerate((0, size_mib * MiB // 3, size_mib * MiB - 4 * MiB)):
            write(disk, offset, os.urandom(2 * MiB))
        print(f"defined {vm.ElementName} ({vm.Name}), {size_mib} MiB disk {disk}")

        settings = vmrepl.ReplicationSettingData(
            RecoveryConnectionPoint="hv-b",
            RecoveryServerPortNumber=port,
            AuthenticationType=vmrepl.AuthenticationType.Kerberos,
            ReplicationInterval=300,
            RecoveryHistory=3,
            CompressionEnabled=True,
        )
        a.create_replication_relationship(vm, settings).wait(timeout=60)
        print(f"enabled:     {states(a, b, vm)}")

        ir = a.start_replication(vm, vmrepl.InitialReplicationType.Network).wait(timeout=600)
        print(f"initial replication: {ir.BlocksSent} blocks, {ir.DataBytesSent} data bytes, "
              f"{ir.WireBytesSent} bytes on the wire")
        print(f"replicating: {states(a, b, vm)}")

        for c in range(1, cycles + 1):
            write(disk, (c * 5 * MiB + 4096 * c) % (size_mib * MiB - MiB), os.urandom(300_000))
            r = a.replicate_now(vm).wait(timeout=600)
            print(f"cycle {r.CycleId}: {r.BlocksSent} blocks, {r.WireBytesSent} bytes on the wire")

        print("recovery points on hv-b (oldest first):")
        for p in b.list_recovery_points(vm.Name):
            kind = p.VirtualSystemType.rsplit(":", 1)[-1]
            latest = "  latest" if p.IsLatest else ""
            print(f"  point {p.RecoveryPointSequence:3d}  {p.CreationTime}  {kind}{latest}")

        stats = a.get_replication_statistics(vm)
        print(f"statistics: {stats.ReplicationSuccessCount} cycles, {stats.ReplicationSize} bytes sent, "
              f"health {stats.ReplicationHealth.name}")

        primary_roots = a.compute_digest(vm).wait(timeout=600).DiskMerkleRoots
        replica_roots = b.list_recovery_points(vm.Name)[-1].DiskMerkleRoots
        image = b.get_system(vm.Name).Folder + "/replica/disk0.img"
        primary_sha, replica_sha = sha256(disk), sha256(image)
        print(f"primary  MerkleRoot {primary_roots[0]}  sha256 {primary_sha}")
        print(f"replica  MerkleRoot {replica_roots[0]}  sha256 {replica_sha}")
        if primary_roots != replica_roots or primary_sha != replica_sha:
            print("the replica DIFFERS from the primary", file=sys.stderr)
            return 1
        print("the replica matches the primary")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="?", help="folder for both host roots (default: a temporary directory)")
    ap.add_argument("--size-mib", type=int, default=64, help="disk size in MiB (default 64, at least 8)")
    ap.add_argument("--cycles", type=int, default=3, help="replicate_now cycles after the initial copy (default 3)")
    args = ap.parse_args()
    if args.size_mib < 8:
        ap.error("--size-mib must be at least 8")
    tmp = None if args.work else tempfile.mkdtemp(prefix="vmrepl-replicate-")
    work = os.path.abspath(args.work or tmp)  # type: ignore[arg-type]
    try:
        sys.exit(main(work, args.size_mib, args.cycles))
    except vmrepl.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
