"""OutOfMemory (32778) from a real allocation: a digest of an 8 TiB sparse disk needs a block
index of 128 Mi entries (several GiB), which a process whose address space is limited cannot
get. The engine reports it as the job's error; the binding raises vmrepl.OutOfMemory.

The limit applies to a child Python process only (RLIMIT_AS), so the test runner is unaffected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import BINDING

CHILD = textwrap.dedent(
    """
    import re, resource, sys
    import vmrepl

    root = sys.argv[1]
    with vmrepl.open("local:" + root) as s:
        s.define_system(name="big", disks=[8 << 40])
        # Room for everything the digest needs but the index: what the process maps now plus 1 GiB.
        with open("/proc/self/status") as f:
            vm_size = int(re.search(r"^VmSize:\\s+(\\d+) kB", f.read(), re.M).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm_size + (1 << 30), resource.RLIM_INFINITY))
        try:
            s.compute_digest("big").wait(timeout=120)
            print("completed")
        except vmrepl.Error as e:
            print(type(e).__name__, e.code, str(e))
        # The service still works once the job gave its memory back.
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        s.define_system(name="small", disks=[1 << 20])
        s.compute_digest("small").wait(timeout=60)
        print("small ok")
    """
)


def test_a_digest_that_cannot_get_its_index_memory_raises_out_of_memory(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BINDING), env.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "root")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2, p.stdout
    name, code, message = lines[0].split(" ", 2)
    assert (name, code) == ("OutOfMemory", "32778"), lines[0]
    assert "block index of 134217728 entries" in message, message  # 8 TiB / 64 KiB blocks
    assert lines[1] == "small ok"
