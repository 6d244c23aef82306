"""The binding over vmrepld: ``vmrepl.open("unix:<socket>")`` gives the same Service as
``local:`` — the planned failover, reverse and failback runbook between two daemons, errors
raised as the same classes, ``await job`` on the remote service's descriptor, and a lost daemon.

The daemons are real processes (VMREPLD: the vmrepld binary of this build, set by ctest), each
with its own host root, replication listener on 127.0.0.1 and admin socket.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Iterator, Tuple

import pytest

import vmrepl
from conftest import REPO, MiB
from vmrepl import EnabledState, JobState, ReplicationMode, ReplicationState, RequestedState

GEN_IMAGE = REPO / "bench" / "gen_image.py"
VMREPLD = os.environ.get("VMREPLD", "")

pytestmark = pytest.mark.skipif(not VMREPLD, reason="VMREPLD (the daemon binary) is not set; ctest sets it")


def gen(*args: Any) -> None:
    subprocess.run([sys.executable, str(GEN_IMAGE), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One vmrepld: host `name`, root and socket under `tmp`."""

    def __init__(self, tmp: pathlib.Path, name: str, peer: str, port: int, peer_port: int) -> None:
        self.name = name
        self.port = port
        self.sock = tmp / f"{name}.sock"
        self.root = tmp / name
        self.config = tmp / f"{name}.toml"
        self.config.write_text(
            f'host_name = "{name}"\nhost_root = "{self.root}"\nlog_level = "info"\n'
            f'[replication]\nlisten = "127.0.0.1:{port}"\nhosts = {{ "{peer}" = "127.0.0.1" }}\n'
            f'[management]\nsocket = "{self.sock}"\n'
        )
        self.log = open(tmp / f"{name}.log", "wb")
        self.proc = subprocess.Popen([VMREPLD, "--config", str(self.config), "--foreground"], stderr=self.log)
        deadline = time.monotonic() + 20
        while not self.sock.exists():
            assert self.proc.poll() is None, (tmp / f"{name}.log").read_text()
            assert time.monotonic() < deadline, "vmrepld did not create its socket"
            time.sleep(0.05)

    @property
    def uri(self) -> str:
        return f"unix:{self.sock}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def daemons(tmp_path: pathlib.Path) -> Iterator[Tuple[Daemon, Daemon]]:
    pa, pb = free_port(), free_port()
    a = Daemon(tmp_path, "hv-a", "hv-b", pa, pb)
    b = Daemon(tmp_path, "hv-b", "hv-a", pb, pa)
    try:
        yield a, b
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def admit(svc: vmrepl.Service, primary: str, storage: pathlib.Path) -> None:
    svc.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
    svc.add_authorization_entry(
        AllowedPrimaryHostSystem=primary, TrustGroup="DEFAULT", ReplicaStorageLocation=str(storage)
    ).wait()


def to(d: Daemon) -> vmrepl.ReplicationSettingData:
    return vmrepl.ReplicationSettingData(
        RecoveryConnectionPoint=d.name, RecoveryServerPortNumber=d.port, AuthenticationType=1,
        ReplicationInterval=300, RecoveryHistory=2,
    )


def modes(svc: vmrepl.Service, name: str) -> Tuple[int, int]:
    s = svc.get_system(name)
    return s.ReplicationMode, s.ReplicationState


def test_planned_failover_reverse_and_failback_over_unix_sockets(daemons: Tuple[Daemon, Daemon], tmp_path) -> None:
    da, db = daemons
    with vmrepl.open(da.uri) as a, vmrepl.open(db.uri) as b:
        assert a.info().HostName == "hv-a" and b.info().HostName == "hv-b"
        admit(b, "hv-a", tmp_path / "b-replicas")
        admit(a, "hv-b", da.root)
        vm = a.define_system(name="web01", disks=[16 * MiB])
        gen("mixed", a.disk_path(vm), 16, 5)
        a.create_replication_relationship(vm, to(db)).wait()
        a.start_replication(vm).wait(timeout=120)
        assert modes(b, "web01") == (ReplicationMode.Replica, ReplicationState.Replicating)
        # Planned failover hv-a -> hv-b.
        a.request_state_change("web01", EnabledState.Off)
        a.request_replication_state_change("web01", RequestedState.SyncedReplicationComplete).wait(timeout=60)
        b.initiate_failover("web01").wait(timeout=60)
        assert pathlib.Path(b.disk_path("web01")).read_bytes() == pathlib.Path(a.disk_path("web01")).read_bytes()
        # hv-b runs and writes, then reverses: hv-a becomes its replica.
        b.request_state_change("web01", EnabledState.Running)
        gen("modify", b.disk_path("web01"), 2, 9)
        b.reverse_replication_relationship("web01", to(da)).wait(timeout=120)
        assert modes(b, "web01") == (ReplicationMode.Primary, ReplicationState.Replicating)
        assert modes(a, "web01") == (ReplicationMode.Replica, ReplicationState.Replicating)
        # Failback.
        b.request_state_change("web01", EnabledState.Off)
        b.request_replication_state_change("web01", RequestedState.SyncedReplicationComplete).wait(timeout=60)
        a.initiate_failover("web01").wait(timeout=60)
        a.reverse_replication_relationship("web01", to(db)).wait(timeout=120)
        assert modes(a, "web01") == (ReplicationMode.Primary, ReplicationState.Replicating)
        # hv-b is the replica again: its replicated data is the replica image.
        replica = pathlib.Path(b.get_system("web01").Folder) / "replica" / "disk0.img"
        assert pathlib.Path(a.disk_path("web01")).read_bytes() == replica.read_bytes()


def test_errors_and_asyncio_over_a_unix_socket(daemons: Tuple[Daemon, Daemon]) -> None:
    da, _ = daemons
    with vmrepl.open(da.uri) as a:
        vm = a.define_system(name="db01", disks=[4 * MiB])
        # The same error classes as local:, raised from the daemon's real conditions.
        with pytest.raises(vmrepl.InvalidState) as ei:
            a.initiate_failover(vm.Name)
        assert ei.value.code == 32775
        with pytest.raises(vmrepl.NotFound):
            a.get_system("no-such-vm")
        with pytest.raises(vmrepl.InvalidParameter) as ep:
            a.define_system(name="../escape", disks=[4 * MiB])
        assert ep.value.code == 32773

        async def digest() -> Any:
            return await a.compute_digest(vm.Name)

        props = asyncio.run(digest())
        assert props.JobState == JobState.Completed
        assert props.MerkleRoot


def test_a_lost_daemon_is_32777_for_the_client(daemons: Tuple[Daemon, Daemon]) -> None:
    da, _ = daemons
    with vmrepl.open(da.uri) as a:
        assert a.list_systems() == []
        assert da.stop() == 0
        with pytest.raises(vmrepl.SystemNotAvailable) as ei:
            a.list_systems()
        assert ei.value.code == 32777
    with pytest.raises(vmrepl.SystemNotAvailable):
        vmrepl.open(da.uri)


def test_a_call_left_without_answer_is_unknown_not_unavailable(tmp_path: pathlib.Path) -> None:
    """The daemon dies while a call is on its way: whether it took effect cannot be known
    (32771, vmrepl.Unknown); a call made after that is 32777 (nothing was sent)."""
    d = Daemon(tmp_path, "hv-a", "hv-b", free_port(), free_port())
    try:
        with vmrepl.open(d.uri) as a:
            assert a.list_systems() == []
            os.kill(d.proc.pid, signal.SIGSTOP)  # the request reaches the socket, nobody answers
            outcome: dict = {}

            def define() -> None:
                try:
                    a.define_system(name="web01", disks=[MiB])
                    outcome["result"] = "defined"
                except vmrepl.Error as e:
                    outcome["result"] = e

            t = threading.Thread(target=define)
            t.start()
            time.sleep(0.5)
            assert t.is_alive()  # waiting for the answer
            os.kill(d.proc.pid, signal.SIGKILL)
            d.proc.wait(timeout=30)
            t.join(timeout=30)
            e = outcome["result"]
            assert type(e) is vmrepl.Unknown, e
            assert e.code == 32771 and "define_system" in str(e) and "is unknown" in str(e), str(e)
            with pytest.raises(vmrepl.SystemNotAvailable):
                a.list_systems()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.log.close()
