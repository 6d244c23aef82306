#!/usr/bin/env python3
"""Define a VM, write into its disk, and digest it under asyncio with a live progress line.

    VMREPL_LIBRARY=build/capi/libvmrepl.so PYTHONPATH=bindings/python \\
        python3 examples/python/digest.py [HOST_ROOT] [--size-gib N]

HOST_ROOT defaults to a fresh temporary directory (removed at the end). The job's progress
arrives through the service descriptor registered with the asyncio loop: no threads, no polling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

import vmrepl


def show(p: vmrepl.Progress) -> None:
    mib = 1 << 20
    print(
        f"\r  digest: {p.percent:3d}%  {p.bytes_done / mib:9.1f} / {p.bytes_total / mib:9.1f} MiB"
        f"  {p.rate / mib:9.1f} MiB/s  {p.phase:<24}",
        end="",
        file=sys.stderr,
        flush=True,
    )


async def main(root: str, size_gib: int) -> int:
    with vmrepl.open(f"local:{root}", host_name="hv-demo") as svc:
        vm = svc.define_system(name="web01", disks=[size_gib << 30])
        print(f"defined {vm.ElementName} ({vm.Name}), disk {svc.disk_path(vm, 0)}")

        # The workload: a few MiB at several places of the (sparse) disk.
        with open(svc.disk_path(vm, 0), "r+b") as disk:
            for i, offset in enumerate((0, 1 << 30, (size_gib << 30) - (4 << 20))):
                disk.seek(offset)
                disk.write(bytes([i + 1]) * (4 << 20))

        with svc.compute_digest(vm) as job:
            job.on_progress(show)
            result = await job  # vmrepl.Error subclass if the job fails
        print(file=sys.stderr)
        print(f"MerkleRoot   {result.MerkleRoot} ({result.HashAlgorithm})")
        print(f"blocks       {result.BlockCount} of {result.BlockSize} bytes, {result.ZeroBlocks} zero")
        print(f"bytes read   {result.BytesRead}")
        print(f"elapsed      {vmrepl.from_cim_datetime(result.ElapsedTime)}")
        svc.destroy_system(vm)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", help="host root (default: a temporary directory)")
    ap.add_argument("--size-gib", type=int, default=4, help="disk size in GiB (default 4)")
    args = ap.parse_args()
    tmp = None if args.root else tempfile.mkdtemp(prefix="vmrepl-demo-")
    root = os.path.abspath(args.root or os.path.join(tmp, "host"))  # type: ignore[arg-type]
    try:
        sys.exit(asyncio.run(main(root, args.size_gib)))
    except vmrepl.Error as e:
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
