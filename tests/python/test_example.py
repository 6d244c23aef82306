"""examples/python/digest.py, replicate.py, planned.py, unplanned.py and
concurrent_vms.py (asyncio, two VMs at once) run as documented."""

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


def test_planned_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "planned.py"), str(tmp_path), "--size-mib", "16"],
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


def test_unplanned_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "unplanned.py"), str(tmp_path), "--size-mib", "16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "recovery points on hv-b: [1, 2, 3]" in out
    steps = re.findall(r"^(\d)\. (.+?): (JobState 7 \(Completed\)|done at once); (.*)$", out, re.M)
    assert [int(n) for n, *_ in steps] == list(range(1, 7))
    assert steps[0][1] == "fail over on hv-b to point 2 (older)" and "hv-b mode 2 state 5 (Recovered)" in steps[0][3]
    assert "   hv-b's disk is point 2 (Merkle roots match)" in out
    assert steps[1][1] == "commit failover on hv-b" and "hv-b mode 2 state 6 (Committed)" in steps[1][3]
    assert steps[3][1] == "make web01 on hv-a a replica"
    assert steps[3][3].startswith("hv-a mode 2 state 2 (WaitingToCompleteInitialReplication)")
    assert steps[4][1] == "reverse replication on hv-b -> hv-a (verify full)"
    assert "hv-b mode 1 state 1 (ReadyForReplication)" in steps[4][3]
    assert steps[5][3] == "hv-a mode 2 state 3 (Replicating), hv-b mode 1 state 3 (Replicating)"
    # The reverse undid hv-a's unreplicated writes and carried hv-b's: a few blocks, not the disk.
    sent = re.search(r"^   reverse sent (\d+) blocks, (\d+) data bytes of a 16777216-byte disk", out, re.M)
    assert sent and 0 < int(sent.group(1)) <= 16
    assert out.rstrip().endswith("hv-a's replica equals its disk")


def test_concurrent_vms_example(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "concurrent_vms.py"), str(tmp_path), "--size-mib", "16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    expected = [
        "enable replication to hv-b",
        "initial replication",
        "cycle hv-a -> hv-b",
        "prepare planned failover on hv-a",
        "fail over on hv-b",
        "reverse hv-b -> hv-a",
        "cycle hv-b -> hv-a",
    ]
    where = {}
    for name in ("web01", "web02"):
        mine = [(i, l) for i, l in enumerate(lines) if l.startswith(f"[{name}] ")]
        assert [l[len(name) + 3:].split(":")[0].split(" (")[0] for _, l in mine] == expected, mine
        assert all("JobState 7 (Completed)" in l for _, l in mine)
        assert mine[-1][1].endswith("hv-a mode 2 state 3, hv-b mode 1 state 3")
        where[name] = [i for i, _ in mine]
    # Both driven at once: each VM's first step comes before the other's last one.
    assert where["web02"][0] < where["web01"][-1] and where["web01"][0] < where["web02"][-1]
    assert lines[-1] == "both reversed: hv-b is the primary of web01 and web02; hv-a's replicas equal their disks"
