#!/usr/bin/env python3
"""Two VMs at once under asyncio: replicated hv-a -> hv-b, both failed over and reversed together.

    VMREPL_LIBRARY=build/capi/libvmrepl.so PYTHONPATH=bindings/python \\
        python3 examples/python/concurrent_vms.py [WORK_DIR] [--size-mib N]

(Not named concurrent.py: a script of that name in this folder would shadow the standard
library's ``concurrent`` package, which asyncio imports, for every script here.)

Two services of this process on 127.0.0.1, each a recovery server admitting the other. hv-a
defines web01 and web02; one coroutine per VM then drives its whole life with ``await job``
(the service's descriptor is registered with the running loop, no polling threads), and
asyncio.gather runs both at once:

  enable replication, initial replication, a cycle of new writes,
  planned failover (VM off on hv-a, prepare on hv-a, fail over on hv-b),
  reverse on hv-b -> hv-a, the new primary's writes, a cycle hv-b -> hv-a.

Every line is prefixed with the VM's name; the lines of the two VMs interleave. WORK_DIR defaults
to a fresh temporary directory (removed at the end). Exit status 0 when, at the end, hv-a's
replica of each VM equals hv-b's disk byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from typing import Dict

import vmrepl

MiB = 1 << 20
BLOCK = 64 * 1024
VMS = ("web01", "web02")


def write(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as disk:
        disk.seek(offset)
        disk.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def scribble(path: str, size: int, seed: int) -> None:
    for k in range(4):
        write(path, (seed * 7 + k * 131) % (size // BLOCK) * BLOCK + 100, os.urandom(3000))


class Site:
    """hv-a and hv-b, each a recovery server admitting the other."""

    def __init__(self, a: vmrepl.Service, b: vmrepl.Service, size: int) -> None:
        self.a, self.b, self.size = a, b, size
        self.port = {"hv-a": a.info().ListenPort, "hv-b": b.info().ListenPort}

    def to(self, host: str) -> vmrepl.ReplicationSettingData:
        return vmrepl.ReplicationSettingData(
            RecoveryConnectionPoint=host, RecoveryServerPortNumber=self.port[host], AuthenticationType=1,
            ReplicationInterval=300, RecoveryHistory=3, CompressionEnabled=True,
        )

    def states(self, name: str) -> str:
        sa, sb = self.a.get_system(name), self.b.get_system(name)
        return (f"hv-a mode {int(sa.ReplicationMode)} state {int(sa.ReplicationState)}, "
                f"hv-b mode {int(sb.ReplicationMode)} state {int(sb.ReplicationState)}")

    async def life(self, vm: vmrepl.Instance, seed: int) -> str:
        """One VM from enabling replication to reversed; returns hv-a's replica image path."""
        a, b, name = self.a, self.b, vm.Name
        tag = f"[{vm.ElementName}]"

        def say(what: str, r: vmrepl.Instance) -> None:
            print(f"{tag} {what}: JobState {int(r.JobState)} ({r.JobState.name}); {self.states(name)}", flush=True)

        say("enable replication to hv-b", await a.create_replication_relationship(vm, self.to("hv-b")))
        r = await a.start_replication(vm, vmrepl.InitialReplicationType.Network)
        say(f"initial replication ({r.BlocksSent} blocks)", r)
        scribble(a.disk_path(vm), self.size, seed)
        r = await a.replicate_now(vm)
        say(f"cycle hv-a -> hv-b ({r.BlocksSent} blocks)", r)

        a.request_state_change(vm, vmrepl.EnabledState.Off)
        say("prepare planned failover on hv-a",
            await a.request_replication_state_change(vm, vmrepl.RequestedState.SyncedReplicationComplete))
        say("fail over on hv-b", await b.initiate_failover(name))
        r = await b.reverse_replication_relationship(name, self.to("hv-a"))
        say(f"reverse hv-b -> hv-a ({r.BlocksSent} blocks, {r.ChangeSource})", r)
        b.request_state_change(name, vmrepl.EnabledState.Running)
        scribble(b.disk_path(name), self.size, seed + 10)  # the new primary's workload
        r = await b.replicate_now(name)
        say(f"cycle hv-b -> hv-a ({r.BlocksSent} blocks)", r)
        return a.get_system(name).Folder + "/replica/disk0.img"


async def run(site: Site, vms: Dict[str, vmrepl.Instance]) -> Dict[str, str]:
    images = await asyncio.gather(*(site.life(vm, seed) for seed, vm in enumerate(vms.values(), 1)))
    return dict(zip(vms, images))


def main(work: str, size_mib: int) -> int:
    size = size_mib * MiB
    with vmrepl.open(
        f"local:{work}/hv-b", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"}
    ) as b, vmrepl.open(
        f"local:{work}/hv-a", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"}
    ) as a:
        for svc, peer in ((b, "hv-a"), (a, "hv-b")):
            svc.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
            svc.add_authorization_entry(
                AllowedPrimaryHostSystem=peer, TrustGroup="DEFAULT", ReplicaStorageLocation=f"{work}/replicas-of-{peer}"
            ).wait()
        site = Site(a, b, size)
        vms = {}
        for name in VMS:
            vm = vms[name] = a.define_system(name=name, disks=[size])
            for offset in range(0, size, 4 * MiB):
                write(a.disk_path(vm), offset, os.urandom(MiB))
            print(f"defined {name} ({vm.Name}) on hv-a, {size_mib} MiB disk")

        images = asyncio.run(run(site, vms))

        bad = [name for name, vm in vms.items() if read(images[name]) != read(b.disk_path(vm.Name))]
        for name in bad:
            print(f"{name}: hv-a's replica DIFFERS from hv-b's disk", file=sys.stderr)
        if bad:
            return 1
        print(f"both reversed: hv-b is the primary of {' and '.join(VMS)}; hv-a's replicas equal their disks")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="?", help="folder for both host roots (default: a temporary directory)")
    ap.add_argument("--size-mib", type=int, default=64, help="disk size in MiB of each VM (default 64, at least 8)")
    args = ap.parse_args()
    if args.size_mib < 8:
        ap.error("--size-mib must be at least 8")
    tmp = None if args.work else tempfile.mkdtemp(prefix="vmrepl-concurrent-")
    work = os.path.abspath(args.work or tmp)  # type: ignore[arg-type]
    try:
        sys.exit(main(work, args.size_mib))
    except vmrepl.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
