"""examples/python/digest.py, replicate.py and runbook.py run as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import BINDING, REPO


def test_digest_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "digest.py"), str(tmp_path / "host")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert re.search(r"^MerkleRoot\s+[0-9a-f]{32} \(xxh3-128\)$", r.stdout, re.M)
    assert "digest: 100%" in r.stderr  # the progress line, driven by asyncio
    assert "defined web01" in r.stdout


def test_replicate_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "replicate.py"), str(tmp_path), "--size-mib", "16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "hv-a mode 1 state 1 (ReadyForReplication), hv-b mode 2 state 2" in out
    assert "hv-a mode 1 state 3 (Replicating), hv-b mode 2 state 3 (Replicating)" in out
    # Initial point + 3 cycles, RecoveryHistory 3: four points, the last one the latest.
    points = re.findall(r"^  point +(\d+) .*Standard( +latest)?$", out, re.M)
    assert [int(p) for p, _ in points] == [1, 2, 3, 4] and points[-1][1] and not any(l for _, l in points[:-1])
    primary = re.search(r"^primary +MerkleRoot ([0-9a-f]{32}) +sha256 ([0-9a-f]{64})$", out, re.M)
    replica = re.search(r"^replica +MerkleRoot ([0-9a-f]{32}) +sha256 ([0-9a-f]{64})$", out, re.M)
    assert primary and replica and primary.groups() == replica.groups()
    assert out.rstrip().endswith("the replica matches the primary")


def test_runbook_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "runbook.py"), str(tmp_path), "--size-mib", "16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    steps = re.findall(r"^(\d)\. (.+?): (JobState 7 \(Completed\)|done at once); (.*)$", out, re.M)
    assert [int(n) for n, *_ in steps] == list(range(1, 9))
    assert steps[0][1] == "prepare planned failover on hv-a" and "hv-a mode 1 state 4" in steps[0][3]
    assert steps[1][1] == "fail over on hv-b" and "hv-b mode 2 state 5" in steps[1][3]
    assert steps[2][1] == "reverse replication on hv-b -> hv-a"
    assert steps[2][3].startswith("hv-a mode 2 state 3 (Replicating), hv-b mode 1 state 3 (Replicating)")
    assert steps[6][1] == "reverse replication on hv-a -> hv-b"
    assert steps[7][3] == "hv-a mode 1 state 3 (Replicating), hv-b mode 2 state 3 (Replicating)"
    # Each reverse sent a few blocks of the 16 MiB disk, not the disk.
    sent = re.findall(r"^   reverse sent (\d+) blocks, (\d+) data bytes \((\d+) bytes on the wire\) "
                      r"of a 16777216-byte disk \((\d+\.\d+)%\)", out, re.M)
    assert len(sent) == 2
    for blocks, data, _wire, share in sent:
        assert 0 < int(blocks) <= 8 and 0 < int(data) <= 8 * 65536 and float(share) < 5
    assert out.rstrip().endswith("hv-b's replica equals its disk")
