"""Replication between two in-process services on 127.0.0.1 (hv-a primary, hv-b recovery server).

Each test opens its own pair, each service on its own root under tmp_path, with the replication
listener on a free port. Bytes are compared on disk: the replica's image is the replica VM's
Folder + "/replica/disk0.img" (the replica store of the engine; the replica VM's own disks are
placeholders until a failover). Wire and data byte counts come from the jobs' final properties.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import pathlib
import shutil
import socket
import time
from typing import Any, Iterator, List, Optional

import pytest

import vmrepl
from conftest import MiB
from vmrepl import (
    InitialReplicationType,
    JobState,
    JobType,
    ReplicationMode,
    ReplicationState,
    RequestedState,
)

BLOCK = 64 * 1024
DISK = 32 * MiB


class Pair:
    """hv-a (primary) and hv-b (recovery server admitting hv-a), both listening on 127.0.0.1."""

    def __init__(self, tmp: pathlib.Path, stack: contextlib.ExitStack, **a_options: Any) -> None:
        self.tmp = tmp
        self.replicas = tmp / "replicas"
        self.b = stack.enter_context(
            vmrepl.open(f"local:{tmp / 'b'}", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"})
        )
        self.a = stack.enter_context(
            vmrepl.open(
                f"local:{tmp / 'a'}", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"}, **a_options
            )
        )
        self.b.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
        self.b.add_authorization_entry(
            AllowedPrimaryHostSystem="hv-a", TrustGroup="DEFAULT", ReplicaStorageLocation=str(self.replicas)
        ).wait()
        self.port: int = self.b.info().ListenPort

    def settings(self, **properties: Any) -> vmrepl.ReplicationSettingData:
        base = dict(RecoveryConnectionPoint="hv-b", RecoveryServerPortNumber=self.port, AuthenticationType=1)
        base.update(properties)
        return vmrepl.ReplicationSettingData(**base)

    def define(self, name: str = "web01", size: int = DISK) -> vmrepl.Instance:
        """A VM on hv-a with random data at several places of its disk (some unaligned)."""
        vm = self.a.define_system(name=name, disks=[size])
        for off in (0, 4095, 7 * MiB + 12345, size // 2, size - 100_000):
            write(self.a.disk_path(vm), off, os.urandom(70_000))
        return vm

    def replica_image(self, vm: vmrepl.Instance, disk: int = 0) -> str:
        return self.b.get_system(vm.Name).Folder + f"/replica/disk{disk}.img"

    def enable(self, vm: vmrepl.Instance, **properties: Any) -> None:
        self.a.create_replication_relationship(vm, self.settings(**properties)).wait()

    def start(self, vm: vmrepl.Instance, **properties: Any) -> vmrepl.Instance:
        self.enable(vm, **properties)
        return self.a.start_replication(vm).wait()

    def same(self, vm: vmrepl.Instance) -> bool:
        return read(self.a.disk_path(vm)) == read(self.replica_image(vm))

    def modes(self, vm: vmrepl.Instance) -> tuple:
        """((mode, state) on hv-a, (mode, state) on hv-b)."""
        pa, pb = self.a.get_system(vm), self.b.get_system(vm.Name)
        return (pa.ReplicationMode, pa.ReplicationState), (pb.ReplicationMode, pb.ReplicationState)


@contextlib.contextmanager
def open_pair(tmp: pathlib.Path, **a_options: Any) -> Iterator[Pair]:
    with contextlib.ExitStack() as stack:
        yield Pair(tmp, stack, **a_options)


@pytest.fixture
def pair(tmp_path: pathlib.Path) -> Iterator[Pair]:
    with open_pair(tmp_path) as p:
        yield p


def write(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read(path: str) -> bytes:
    return pathlib.Path(path).read_bytes()


def nonzero_blocks(path: str) -> int:
    data = read(path)
    zero = bytes(BLOCK)
    return sum(1 for i in range(0, len(data), BLOCK) if data[i : i + BLOCK] != zero)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raises_at_once(exc: type, call: Any, *needles: str) -> vmrepl.Error:
    """The call raises ``exc`` itself (validation), not a job that fails later."""
    with pytest.raises(exc) as ei:
        call()
    for needle in needles:
        assert needle in ei.value.message, (needle, ei.value.message)
    return ei.value


# ---- enable, initial replication, cycles ----------------------------------------------------------


def test_create_and_network_start_give_a_byte_identical_replica(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    job = a.create_replication_relationship(vm, pair.settings(RecoveryHistory=2, CompressionEnabled=True))
    assert isinstance(job, vmrepl.Job) and job.job_type == JobType.CreateReplicationRelationship == 91
    assert job.wait().JobState == JobState.Completed
    # After create: the primary is ready (1/1), the replica VM waits for the initial copy (2/2).
    assert pair.modes(vm) == ((ReplicationMode.Primary, ReplicationState.ReadyForReplication), (2, 2))
    replica = b.get_system(vm.Name)
    assert replica.ElementName == "web01" and replica.DiskSizes == [DISK]
    assert replica.Folder.startswith(str(pair.replicas) + "/")  # under the entry's location

    rsd = a.get_replication_settings(vm)
    assert rsd.class_name == "Msvm_ReplicationSettingData"
    assert rsd.InstanceID == f"Microsoft:{vm.Name}\\HVR\\0" and rsd.VirtualSystemIdentifier == vm.Name
    assert (rsd.PrimaryHostSystem, rsd.RecoveryConnectionPoint, rsd.RecoveryServerPortNumber) == ("hv-a", "hv-b", pair.port)
    assert rsd.RecoveryHistory == 2 and rsd.CompressionEnabled is True
    assert b.get_replication_settings(vm.Name).RecoveryHostSystem == "hv-b"

    job = a.start_replication(vm, InitialReplicationType.Network)
    assert job.job_type == JobType.StartInbandInitialReplication == 94
    result = job.wait(timeout=60)
    # Both sides replicate (1/3 and 2/3) and the replica's image is the primary's disk.
    assert pair.modes(vm) == ((1, ReplicationState.Replicating), (ReplicationMode.Replica, 3))
    assert pair.same(vm)
    # Only the non-zero blocks travel, as data; the roots are the primary's own digest.
    assert result.BlocksSent == nonzero_blocks(a.disk_path(vm)) >= 5
    assert result.DataBytesSent == result.BlocksSent * BLOCK
    assert result.DiskMerkleRoots == a.compute_digest(vm).wait().DiskMerkleRoots
    points = b.list_recovery_points(vm.Name)
    assert len(points) == 1 and points[0].IsLatest and points[0].DiskMerkleRoots == result.DiskMerkleRoots
    assert a.get_system(vm).LastReplicationTime != "00000000000000.000000+000"


def test_replicate_now_recovery_points_and_statistics(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    first = pair.start(vm, RecoveryHistory=2)
    results = [first]
    counts = [len(b.list_recovery_points(vm.Name))]
    for i in range(4):
        write(a.disk_path(vm), (3 + 5 * i) * MiB + 1000 * i, os.urandom(100_000))
        job = a.replicate_now(vm)
        assert job.job_type == JobType.ReplicationSendingDelta == 105
        r = job.wait(timeout=60)
        results.append(r)
        assert pair.same(vm), f"cycle {i}"
        assert 1 <= r.BlocksSent <= 3 and r.CycleId == first.CycleId + i + 1  # only what changed
        counts.append(len(b.list_recovery_points(vm.Name)))
    # RecoveryHistory 2: the latest point and two older ones.
    assert counts == [1, 2, 3, 3, 3]
    points = b.list_recovery_points(vm.Name)
    assert [p.RecoveryPointSequence for p in points] == [3, 4, 5]
    assert [p.IsLatest for p in points] == [False, False, True]
    assert all(p.class_name == "Msvm_VirtualSystemSettingData" for p in points)
    assert all(p.VirtualSystemType == "Microsoft:Hyper-V:Snapshot:Replica:Standard" for p in points)
    assert all(p.ReplicationType == vmrepl.ReplicationType.Regular for p in points)
    assert points[-1].DiskMerkleRoots == results[-1].DiskMerkleRoots

    # Statistics of each side count the five cycles; the primary's sizes are the jobs' wire bytes.
    st = a.get_replication_statistics(vm)
    assert st.class_name == "Msvm_ReplicationStatistics" and st.VirtualSystemIdentifier == vm.Name
    assert st.ReplicationSuccessCount == 5
    assert (st.ReplicationFailureCount, st.NetworkFailureCount, st.ReplicationMissCount) == (0, 0, 0)
    assert st.ReplicationSize == sum(r.WireBytesSent for r in results)
    assert st.MaxReplicationSize == max(r.WireBytesSent for r in results) == first.WireBytesSent
    assert st.ReplicationHealth == vmrepl.ReplicationHealth.Ok and st.PendingReplicationSize == 0
    assert b.get_replication_statistics(vm.Name).ReplicationSuccessCount == 5

    # A lower RecoveryHistory takes effect at the next cycle.
    a.modify_replication_settings(vm, RecoveryHistory=0).wait()
    a.replicate_now(vm).wait()
    assert [p.RecoveryPointSequence for p in b.list_recovery_points(vm.Name)] == [6]


def test_suspend_and_resume(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    pair.start(vm)
    job = a.request_replication_state_change(vm, RequestedState.Suspend)
    assert job.job_type == JobType.ReplicateStateChange == 96
    job.wait()
    assert pair.modes(vm) == ((1, ReplicationState.Suspended), (2, 3))  # each side its own state
    raises_at_once(vmrepl.InvalidState, lambda: a.replicate_now(vm), "ReplicationState 7")
    raises_at_once(vmrepl.InvalidState, lambda: a.request_replication_state_change(vm, 7), "ReplicationState 7")
    write(a.disk_path(vm), 9 * MiB, b"written while suspended")
    a.request_replication_state_change(vm, RequestedState.Replicating).wait()
    assert pair.modes(vm) == ((1, 3), (2, 3))
    raises_at_once(vmrepl.InvalidState, lambda: a.request_replication_state_change(vm, 3), "ReplicationState 3")
    assert a.replicate_now(vm).wait().BlocksSent == 1
    assert pair.same(vm)
    # Either side may suspend (spec §8): a suspended replica refuses the primary's cycles.
    b.request_replication_state_change(vm.Name, RequestedState.Suspend).wait()
    assert pair.modes(vm) == ((1, 3), (2, ReplicationState.Suspended))
    write(a.disk_path(vm), 10 * MiB, b"while the replica is suspended")
    with pytest.raises(vmrepl.InvalidState, match="accepts no cycle") as ei:
        a.replicate_now(vm).wait()
    assert ei.value.job_state == JobState.Exception
    assert a.get_replication_statistics(vm).ReplicationFailureCount == 1
    b.request_replication_state_change(vm.Name, RequestedState.Replicating).wait()
    a.replicate_now(vm).wait()
    assert pair.modes(vm) == ((1, 3), (2, 3)) and pair.same(vm)
    # Requested states that are not replication states are refused as parameters.
    raises_at_once(vmrepl.InvalidParameter, lambda: a.request_replication_state_change(vm, 42), "RequestedState 42")


def test_resynchronize_from_the_wrong_state_is_refused_at_once(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    pair.enable(vm)
    e = raises_at_once(vmrepl.InvalidState, lambda: a.resynchronize(vm), "ReplicationState 1", "Ready for replication")
    assert e.code == 32775 and e.job_id is None
    assert pair.modes(vm) == ((1, 1), (2, 2))  # nothing changed
    raises_at_once(vmrepl.InvalidState, lambda: b.resynchronize(vm.Name), "not a primary")


def test_resynchronize_sends_only_the_differences(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    pair.start(vm, RecoveryHistory=4)
    a.replicate_now(vm).wait()
    assert len(b.list_recovery_points(vm.Name)) == 2
    a.request_replication_state_change(vm, RequestedState.Suspend).wait()
    for off in (MiB, 20 * MiB + 7):
        write(a.disk_path(vm), off, os.urandom(1000))
    job = a.resynchronize(vm, start_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    assert job.job_type == JobType.Resynchronizing == 107
    r = job.wait(timeout=60)
    assert r.BlocksSent == 2 and r.DataBytesSent == 2 * BLOCK
    assert pair.modes(vm) == ((1, 3), (2, 3)) and pair.same(vm)
    # A resynchronization starts the replica's history again.
    assert [p.IsLatest for p in b.list_recovery_points(vm.Name)] == [True]
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: a.resynchronize(vm, start_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)),
        "StartTime",
    )


def test_seeded_start_sends_only_what_differs_from_the_seed(pair: Pair) -> None:
    a, b = pair.a, pair.b
    net, seeded = pair.define("net"), a.define_system(name="seeded", disks=[DISK])
    shutil.copyfile(a.disk_path(net), a.disk_path(seeded))  # the same content
    full = pair.start(net)

    pair.enable(seeded)
    # The operator's copy goes into the replica VM's disk on hv-b before the start.
    shutil.copyfile(a.disk_path(seeded), b.disk_path(seeded.Name, 0))
    write(a.disk_path(seeded), 11 * MiB, b"changed after the seed was taken")
    job = a.start_replication(seeded, type=InitialReplicationType.Seeded)
    job.wait(timeout=60)
    props = job.properties
    assert props.DataBytesSent == BLOCK and props.BlocksSent == 1  # only the changed block
    assert props.DataBytesSent < full.DataBytesSent == nonzero_blocks(a.disk_path(net)) * BLOCK
    assert pair.modes(seeded) == ((1, 3), (2, 3)) and pair.same(seeded)
    a.replicate_now(seeded).wait()  # cycles go on from the seeded point
    assert pair.same(seeded)


def test_change_feed_cycles_send_the_reported_blocks(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    first = pair.start(vm)
    assert first.ChangeSource == "scan"

    def workload(offset: int, data: bytes) -> None:
        write(a.disk_path(vm), offset, data)
        a.disk_mark_dirty(vm, 0, offset, len(data))  # durable once it returns

    # The first report attaches the feed; one more scanning cycle establishes it...
    workload(5 * MiB, b"x" * 100)
    r = a.replicate_now(vm).wait()
    assert (r.ChangeSource, r.BlocksSent) == ("scan", 1) and pair.same(vm)
    # ...then cycles send what was reported, without scanning (a range across two blocks).
    workload(9 * MiB + BLOCK - 6, b"y" * 100)
    r = a.replicate_now(vm).wait()
    assert (r.ChangeSource, r.BlocksSent) == ("change-feed", 2) and pair.same(vm)
    r = a.replicate_now(vm).wait()
    assert (r.ChangeSource, r.BlocksSent) == ("change-feed", 0)
    raises_at_once(vmrepl.InvalidParameter, lambda: a.disk_mark_dirty(vm, 1, 0, 1), "disk 1")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.disk_mark_dirty(vm, 0, DISK, 1), "offset")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.disk_mark_dirty(vm, 0, DISK - 1, 2), "length")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.disk_mark_dirty(vm, 0, 0, 0), "length")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.disk_mark_dirty(vm, 0, -1, 1), "out of range")
    raises_at_once(vmrepl.FileNotFound, lambda: a.disk_mark_dirty("ghost", 0, 0, 1), "ghost")


def test_interval_cycles_run_by_themselves(tmp_path: pathlib.Path) -> None:
    with open_pair(tmp_path, cycle_interval_override_s=1) as pair:
        vm = pair.define()
        pair.start(vm, RecoveryHistory=8, ReplicationInterval=30)
        write(pair.a.disk_path(vm), 5 * MiB, b"picked up by the timer")
        deadline = time.monotonic() + 20
        while pair.a.get_replication_statistics(vm).ReplicationSuccessCount < 3:  # IR + 2 timed
            assert time.monotonic() < deadline, "no interval cycle within 20 s"
            time.sleep(0.1)
        assert pair.same(vm)
        assert len(pair.b.list_recovery_points(vm.Name)) >= 3


def test_await_replication_jobs_under_asyncio(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    seen: List[vmrepl.Progress] = []

    async def main() -> vmrepl.Instance:
        await a.create_replication_relationship(vm, pair.settings())
        job = a.start_replication(vm)
        job.on_progress(seen.append)
        await job
        write(a.disk_path(vm), 0, b"again")
        return await a.replicate_now(vm)

    assert asyncio.run(main()).BlocksSent == 1
    assert seen and seen[-1].percent == 100
    assert pair.same(vm)


# ---- settings -------------------------------------------------------------------------------------


def test_modify_replication_settings(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    pair.start(vm)
    # Keyword properties change just those, on both sides; the rest stays.
    job = a.modify_replication_settings(vm, RecoveryHistory=5, ReplicationInterval=30)
    assert job.job_type == JobType.ModifyReplicationRelationshipSettings == 92
    job.wait()
    for side, cs in ((a, vm), (b, vm.Name)):
        s = side.get_replication_settings(cs)
        assert (s.RecoveryHistory, s.ReplicationInterval) == (5, 30)
        assert (s.RecoveryConnectionPoint, s.RecoveryServerPortNumber) == ("hv-b", pair.port)
    # Whole settings: a dataclass (with overrides), a dict, and the engine's own text forms.
    current = vmrepl.ReplicationSettingData.from_dict(a.get_replication_settings(vm))
    a.modify_replication_settings(vm, current, RecoveryHistory=6).wait()
    assert a.get_replication_settings(vm).RecoveryHistory == 6
    a.modify_replication_settings(vm, {**current.to_dict(), "RecoveryHistory": 7}).wait()
    assert a.get_replication_settings(vm).RecoveryHistory == 7
    a.modify_replication_settings(vm, a.get_replication_settings(vm).to_cim_xml()).wait()
    a.modify_replication_settings(vm, a.get_replication_settings(vm).to_mof()).wait()
    assert b.get_replication_settings(vm.Name).RecoveryHistory == 7
    # Settings given whole mean what they say: unset properties take the spec's defaults.
    a.modify_replication_settings(vm, pair.settings()).wait()
    s = a.get_replication_settings(vm)
    assert (s.RecoveryHistory, s.ReplicationInterval, s.PrimaryHostSystem) == (0, 300, "hv-a")
    # The engine names the property it refuses, at once.
    raises_at_once(vmrepl.InvalidParameter, lambda: a.modify_replication_settings(vm, ReplicationInterval=45), "ReplicationInterval")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.modify_replication_settings(vm, RecoveryHistory=25), "RecoveryHistory")
    with pytest.raises(TypeError, match="ReplicationIntervall"):
        a.modify_replication_settings(vm, ReplicationIntervall=30)
    with pytest.raises(TypeError, match="combined"):
        a.modify_replication_settings(vm, pair.settings().to_json(), RecoveryHistory=1)
    with pytest.raises(TypeError):
        a.modify_replication_settings(vm)
    assert a.replicate_now(vm).wait().JobState == JobState.Completed


def test_service_settings(svc: vmrepl.Service) -> None:
    s = svc.get_service_settings()
    assert s.class_name == "Msvm_ReplicationServiceSettingData"
    assert (s.RecoveryServerEnabled, s.AllowedAuthenticationType, s.HttpPort, s.HttpsPort) == (False, 0, 80, 443)
    assert s.MonitoringInterval == 43200 and s.MonitoringStartTime == "00000000090000.000000+000"
    job = svc.modify_service_settings(HttpPort=8080)
    assert job.job_type == JobType.ModifyReplicationServerSettings == 90
    job.wait()
    # Keyword properties keep the other settings in force.
    svc.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
    s = svc.get_service_settings()
    assert (s.RecoveryServerEnabled, s.AllowedAuthenticationType, s.HttpPort) == (True, 1, 8080)
    info = svc.info()
    assert (info.RecoveryServerEnabled, info.HttpPort) == (True, 8080)
    # A dataclass, a dict or text is taken whole: what it leaves unset is the spec's default.
    svc.modify_service_settings(vmrepl.ReplicationServiceSettingData(RecoveryServerEnabled=True, MonitoringInterval=3600)).wait()
    s = svc.get_service_settings()
    assert (s.RecoveryServerEnabled, s.HttpPort, s.MonitoringInterval, s.AllowedAuthenticationType) == (True, 80, 3600, 0)
    svc.modify_service_settings({"__CLASS": "Msvm_ReplicationServiceSettingData", "HttpsPort": 8443}).wait()
    svc.modify_service_settings(svc.get_service_settings().to_cim_xml()).wait()
    s = svc.get_service_settings()
    assert (s.RecoveryServerEnabled, s.HttpsPort) == (False, 8443)
    raises_at_once(vmrepl.InvalidParameter, lambda: svc.modify_service_settings(MonitoringInterval=60), "MonitoringInterval")
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: svc.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=2),
        "CertificateThumbPrint",
    )
    with pytest.raises(TypeError, match="Msvm_ReplicationServiceSettingData has no property Port"):
        svc.modify_service_settings(Port=1)


def test_authorization_entries(svc: vmrepl.Service, tmp_path: pathlib.Path) -> None:
    assert svc.list_authorization_entries() == []
    entry = vmrepl.AuthorizationSettingData(
        AllowedPrimaryHostSystem="*.contoso.com", TrustGroup="DEFAULT", ReplicaStorageLocation=str(tmp_path / "r1")
    )
    svc.add_authorization_entry(entry).wait()
    svc.add_authorization_entry(AllowedPrimaryHostSystem="hv-a", TrustGroup="G", ReplicaStorageLocation="/srv/r2").wait()
    entries = svc.list_authorization_entries()
    assert [e.AllowedPrimaryHostSystem for e in entries] == ["*.contoso.com", "hv-a"]
    assert entries[0].class_name == "Msvm_ReplicationAuthorizationSettingData"
    assert vmrepl.AuthorizationSettingData.from_dict(entries[0]) == entry
    # A second entry for the same host: the job fails, naming the property.
    with pytest.raises(vmrepl.InvalidParameter, match="AllowedPrimaryHostSystem") as ei:
        svc.add_authorization_entry(entry).wait()
    assert ei.value.job_state == JobState.Exception
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: svc.add_authorization_entry(AllowedPrimaryHostSystem="x", TrustGroup="G", ReplicaStorageLocation="rel"),
        "ReplicaStorageLocation",
    )
    # Keyword properties change just those of the entry in force (found case-insensitively).
    svc.modify_authorization_entry(AllowedPrimaryHostSystem="HV-A", TrustGroup="GOLD").wait()
    e = [x for x in svc.list_authorization_entries() if x.AllowedPrimaryHostSystem.lower() == "hv-a"][0]
    assert (e.TrustGroup, e.ReplicaStorageLocation) == ("GOLD", "/srv/r2")
    # Text in, as Microsoft's sample does (GetText of a built instance).
    svc.modify_authorization_entry(e.to_mof().replace("/srv/r2", "/srv/r3")).wait()
    assert svc.list_authorization_entries()[1].ReplicaStorageLocation == "/srv/r3"
    with pytest.raises(vmrepl.InvalidParameter, match="no entry"):
        svc.modify_authorization_entry(AllowedPrimaryHostSystem="hv-z", TrustGroup="G", ReplicaStorageLocation="/x").wait()
    with pytest.raises(TypeError, match="AllowedPrimaryHostSystem"):
        svc.modify_authorization_entry(TrustGroup="G")
    remove = svc.remove_authorization_entry("*.CONTOSO.com")
    assert remove.job_type == JobType.ModifyReplicationServerSettings
    remove.wait()
    assert [x.AllowedPrimaryHostSystem for x in svc.list_authorization_entries()] == ["HV-A"]
    raises_at_once(vmrepl.FileNotFound, lambda: svc.remove_authorization_entry("*.contoso.com"), "*.contoso.com")


# ---- errors of the engine -------------------------------------------------------------------------


def test_an_unadmitted_primary_is_access_denied(pair: Pair, tmp_path: pathlib.Path) -> None:
    with vmrepl.open(f"local:{tmp_path / 'c'}", host_name="hv-c", hosts={"hv-b": "127.0.0.1"}) as c:
        vm = c.define_system(name="intruder", disks=[MiB])
        job = c.create_replication_relationship(vm, pair.settings())  # validation passes
        with pytest.raises(vmrepl.AccessDenied) as ei:
            job.wait(timeout=60)
        e = ei.value
        assert e.code == 32769 and e.job_state == JobState.Exception and e.job_id == job.instance_id
        assert "hv-c" in e.message
        assert job.properties.ErrorCode == vmrepl.Status.AccessDenied
        assert c.get_system(vm).ReplicationMode == ReplicationMode.None_
        assert [v.ElementName for v in pair.b.list_systems()] == []  # nothing created on hv-b
        with pytest.raises(vmrepl.AccessDenied):
            c.test_replication_connection("hv-b", pair.port).wait()
        # Admitted by an entry of its own, hv-c gets through.
        pair.b.add_authorization_entry(
            AllowedPrimaryHostSystem="hv-c", TrustGroup="DEFAULT", ReplicaStorageLocation=str(tmp_path / "c-replicas")
        ).wait()
        c.test_replication_connection("hv-b", pair.port).wait()
        c.create_replication_relationship(vm, pair.settings()).wait()
        assert pair.b.get_system(vm.Name).Folder.startswith(str(tmp_path / "c-replicas"))
    # A recovery server that is not enabled admits nobody.
    pair.b.modify_service_settings(RecoveryServerEnabled=False).wait()
    with pytest.raises(vmrepl.AccessDenied, match="RecoveryServerEnabled"):
        pair.a.test_replication_connection("hv-b", pair.port).wait()


def test_invalid_parameters_are_named_at_once(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: a.create_replication_relationship(vm, pair.settings(RecoveryServerPortNumber=0)),
        "RecoveryServerPortNumber",
    )
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: a.create_replication_relationship(vm, pair.settings(ReplicationInterval=45)),
        "ReplicationInterval",
    )
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: a.create_replication_relationship(vm, {"RecoveryServerPortNumber": pair.port, "AuthenticationType": 1}),
        "RecoveryConnectionPoint",
    )
    raises_at_once(vmrepl.InvalidParameter, lambda: a.create_replication_relationship(vm, "not setting data"))
    assert a.get_system(vm).ReplicationMode == ReplicationMode.None_  # nothing was created
    pair.enable(vm)
    raises_at_once(vmrepl.NotSupported, lambda: a.start_replication(vm, InitialReplicationType.Export), "export")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.start_replication(vm, 9), "InitialReplicationType")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.start_replication(vm, export_location="/x"), "InitialReplicationExportLocation")
    raises_at_once(vmrepl.IncorrectDataType, lambda: a.start_replication(vm, start_time="tomorrow"), "StartTime")
    raises_at_once(
        vmrepl.InvalidParameter,
        lambda: a.start_replication(vm, start_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)),
        "StartTime",
    )
    assert pair.modes(vm) == ((1, 1), (2, 2))


def test_start_replication_twice_is_invalid_state(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    pair.enable(vm)
    job = a.start_replication(vm)
    # The state leaves 1 before the call returns: a second start is refused even while it runs.
    raises_at_once(vmrepl.InvalidState, lambda: a.start_replication(vm), "StartReplication needs state 1")
    job.wait(timeout=60)
    raises_at_once(vmrepl.InvalidState, lambda: a.start_replication(vm), "ReplicationState 3")
    raises_at_once(vmrepl.InvalidState, lambda: a.create_replication_relationship(vm, pair.settings()), "mode 1")
    raises_at_once(vmrepl.InvalidState, lambda: a.destroy_system(vm), "relationship")
    raises_at_once(vmrepl.InvalidState, lambda: a.list_recovery_points(vm), "not a replica")
    raises_at_once(vmrepl.InvalidState, lambda: pair.b.replicate_now(vm.Name), "not a primary")


def test_unknown_vm_is_file_not_found(pair: Pair) -> None:
    a = pair.a
    calls = [
        lambda: a.create_replication_relationship("ghost", pair.settings()),
        lambda: a.start_replication("ghost"),
        lambda: a.modify_replication_settings("ghost", pair.settings()),
        lambda: a.remove_replication_relationship("ghost"),
        lambda: a.request_replication_state_change("ghost", RequestedState.Suspend),
        lambda: a.resynchronize("ghost"),
        lambda: a.replicate_now("ghost"),
        lambda: a.get_replication_statistics("ghost"),
        lambda: a.get_replication_settings("ghost"),
        lambda: a.list_recovery_points("ghost"),
    ]
    for call in calls:
        e = raises_at_once(vmrepl.FileNotFound, call, "ghost")
        assert e.code == 32779


def test_no_relationship_is_invalid_state(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    for call in (
        lambda: a.get_replication_settings(vm),
        lambda: a.get_replication_statistics(vm),
        lambda: a.remove_replication_relationship(vm),
        lambda: a.replicate_now(vm),
        lambda: a.request_replication_state_change(vm, RequestedState.Suspend),
        lambda: a.modify_replication_settings(vm, pair.settings()),
    ):
        raises_at_once(vmrepl.InvalidState, call, "web01")


def test_test_replication_connection(pair: Pair) -> None:
    a = pair.a
    job = a.test_replication_connection("hv-b", pair.port)
    assert job.job_type == JobType.TestReplicationConnection == 115
    assert job.wait(timeout=30).JobState == JobState.Completed
    port = closed_port()
    with pytest.raises(vmrepl.SystemNotAvailable) as ei:
        a.test_replication_connection("hv-b", port, vmrepl.AuthenticationType.Kerberos).wait(timeout=30)
    assert ei.value.code == 32777 and ei.value.job_state == JobState.Exception and str(port) in ei.value.message
    raises_at_once(vmrepl.InvalidParameter, lambda: a.test_replication_connection("hv-b", 0), "RecoveryServerPortNumber")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.test_replication_connection("hv-b", pair.port, 2), "CertificateThumbPrint")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.test_replication_connection("hv-b", pair.port, 3), "AuthenticationType")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.test_replication_connection("", pair.port), "RecoveryConnectionPoint")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.test_replication_connection("hv-b", 70000), "out of range")


def test_remove_replication_relationship_keeps_the_replica_vm(pair: Pair) -> None:
    a, b = pair.a, pair.b
    vm = pair.define()
    pair.start(vm)
    image = pair.replica_image(vm)
    content = read(a.disk_path(vm))
    job = a.remove_replication_relationship(vm)
    assert job.job_type == JobType.RemoveReplicationRelationship == 93
    job.wait(timeout=30)
    # Both sides forget the relationship (the primary told the recovery server)...
    assert pair.modes(vm) == ((ReplicationMode.None_, ReplicationState.Disabled), (0, 0))
    # ...and the replica VM stays on hv-b with its data.
    replica = b.get_system(vm.Name)
    assert replica.ElementName == "web01" and read(image) == content
    raises_at_once(vmrepl.InvalidState, lambda: a.get_replication_settings(vm), "mode 0")
    raises_at_once(vmrepl.InvalidState, lambda: b.list_recovery_points(vm.Name), "not a replica")
    raises_at_once(vmrepl.InvalidState, lambda: a.remove_replication_relationship(vm), "mode 0")
    a.destroy_system(vm)  # no relationship any more: allowed
    b.destroy_system(vm.Name)


def test_replication_methods_after_close_raise_invalid_state(root: str) -> None:
    with vmrepl.open(f"local:{root}") as svc:
        vm = svc.define_system(name="vm", disks=[MiB])
    settings = vmrepl.ReplicationSettingData(RecoveryConnectionPoint="x", RecoveryServerPortNumber=1, AuthenticationType=1)
    calls = [
        lambda: svc.create_replication_relationship(vm, settings),
        lambda: svc.start_replication(vm),
        lambda: svc.modify_replication_settings(vm, settings),
        lambda: svc.modify_replication_settings(vm, RecoveryHistory=1),
        lambda: svc.remove_replication_relationship(vm),
        lambda: svc.request_replication_state_change(vm, 7),
        lambda: svc.resynchronize(vm),
        lambda: svc.replicate_now(vm),
        lambda: svc.test_replication_connection("x", 1),
        lambda: svc.get_replication_statistics(vm),
        lambda: svc.get_replication_settings(vm),
        lambda: svc.list_recovery_points(vm),
        lambda: svc.modify_service_settings(RecoveryServerEnabled=True),
        lambda: svc.get_service_settings(),
        lambda: svc.add_authorization_entry(AllowedPrimaryHostSystem="x", TrustGroup="G", ReplicaStorageLocation="/x"),
        lambda: svc.modify_authorization_entry(AllowedPrimaryHostSystem="x", TrustGroup="G"),
        lambda: svc.remove_authorization_entry("x"),
        lambda: svc.list_authorization_entries(),
        lambda: svc.disk_mark_dirty(vm, 0, 0, 1),
    ]
    for call in calls:
        with pytest.raises(vmrepl.InvalidState, match="Service.*is closed"):
            call()


def test_python_side_argument_checks(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    with pytest.raises(TypeError, match="setting data"):
        svc.create_replication_relationship(vm, 42)
    with pytest.raises(TypeError, match="start_time"):
        svc.start_replication(vm, start_time=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="thumbprint"):
        svc.test_replication_connection("x", 1, 2, thumbprint=b"ab")  # type: ignore[arg-type]
    with pytest.raises(vmrepl.InvalidParameter, match="out of range"):
        svc.request_replication_state_change(vm, 70000)
    with pytest.raises(vmrepl.InvalidParameter, match="out of range"):
        svc.start_replication(vm, -1)
    with pytest.raises(TypeError):
        svc.add_authorization_entry()
    with pytest.raises(TypeError, match="Msvm_ReplicationAuthorizationSettingData has no property Host"):
        svc.add_authorization_entry(Host="x")
    with pytest.raises(vmrepl.InvalidParameter, match="NUL"):
        svc.remove_authorization_entry("hv-a\x00x")


# ---- bandwidth limits -----------------------------------------------------------------------------

KiB = 1 << 10


def test_bandwidth_limits_of_each_service_and_relationship(pair: Pair) -> None:
    a, b = pair.a, pair.b
    assert a.bandwidth_limit() == 0 and b.bandwidth_limit() == 0  # none by default
    # The whole service's limit: one per service.
    a.set_bandwidth_limit(8 * MiB)
    b.set_bandwidth_limit(BLOCK)  # exactly one block per second is allowed
    assert a.bandwidth_limit() == 8 * MiB and b.bandwidth_limit() == BLOCK

    # A relationship's limit, on either side, by name, GUID or Instance; the service's stays.
    vm = pair.define()
    pair.enable(vm)
    assert a.bandwidth_limit(vm) == 0
    a.set_bandwidth_limit(4 * MiB, vm)
    assert a.bandwidth_limit(vm) == a.bandwidth_limit("web01") == a.bandwidth_limit(vm.Name) == 4 * MiB
    a.set_bandwidth_limit(3 * MiB, vm=vm.Name)
    assert a.bandwidth_limit(vm=vm) == 3 * MiB and a.bandwidth_limit() == 8 * MiB
    b.set_bandwidth_limit(2 * MiB, vm.Name)  # the replica VM's relationship
    assert b.bandwidth_limit(vm.Name) == 2 * MiB and b.bandwidth_limit() == BLOCK
    assert a.bandwidth_limit(vm) == 3 * MiB

    # 0 removes a limit.
    b.set_bandwidth_limit(0)
    b.set_bandwidth_limit(0, vm.Name)
    assert b.bandwidth_limit() == 0 and b.bandwidth_limit(vm.Name) == 0

    # A relationship's limit is kept with it: a reopened hv-a has it, but not the service's.
    a.close()
    with vmrepl.open(f"local:{pair.tmp / 'a'}", host_name="hv-a", hosts={"hv-b": "127.0.0.1"}) as again:
        assert again.bandwidth_limit(vm.Name) == 3 * MiB
        assert again.bandwidth_limit() == 0


def test_bandwidth_limit_errors(pair: Pair) -> None:
    a = pair.a
    # Under one block per second: InvalidParameter, for the service and for a relationship.
    e = raises_at_once(vmrepl.InvalidParameter, lambda: a.set_bandwidth_limit(1000), "1000")
    assert e.code == 32773
    raises_at_once(vmrepl.InvalidParameter, lambda: a.set_bandwidth_limit(BLOCK - 1), str(BLOCK - 1))
    vm = pair.define()
    # A VM without a relationship has no limit of its own to set.
    e = raises_at_once(vmrepl.InvalidState, lambda: a.set_bandwidth_limit(8 * MiB, vm), "web01")
    assert e.code == 32775
    pair.enable(vm)
    raises_at_once(vmrepl.InvalidParameter, lambda: a.set_bandwidth_limit(1000, vm), "1000")
    assert a.bandwidth_limit(vm) == 0 and a.bandwidth_limit() == 0  # nothing changed
    # An unknown VM: NotFound (FileNotFound), for set and get.
    e = raises_at_once(vmrepl.NotFound, lambda: a.set_bandwidth_limit(8 * MiB, "ghost"), "ghost")
    assert e.code == 32779
    raises_at_once(vmrepl.NotFound, lambda: a.bandwidth_limit("ghost"), "ghost")
    # "" is no VM (None is the whole service).
    raises_at_once(vmrepl.InvalidParameter, lambda: a.set_bandwidth_limit(8 * MiB, ""), "empty")
    raises_at_once(vmrepl.InvalidParameter, lambda: a.bandwidth_limit(""), "empty")


def test_bandwidth_limit_argument_checks(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    for bad in ("8M", 1.5, True, None, b"1"):
        with pytest.raises(TypeError, match="bytes_per_s must be an int"):
            svc.set_bandwidth_limit(bad)  # type: ignore[arg-type]
    for bad_int in (-1, 1 << 64):
        with pytest.raises(ValueError, match="bytes_per_s"):
            svc.set_bandwidth_limit(bad_int)
    with pytest.raises(TypeError, match="computer_system"):
        svc.set_bandwidth_limit(8 * MiB, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="computer_system"):
        svc.bandwidth_limit(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Msvm_ComputerSystem"):
        svc.bandwidth_limit(svc.info())
    assert svc.bandwidth_limit() == 0  # nothing reached the service
    svc.close()
    with pytest.raises(vmrepl.InvalidState, match="Service.*is closed"):
        svc.set_bandwidth_limit(8 * MiB)
    with pytest.raises(vmrepl.InvalidState, match="Service.*is closed"):
        svc.bandwidth_limit(vm)


def test_a_throttled_initial_replication_reports_its_limit(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    pair.enable(vm)
    limit = 256 * KiB
    a.set_bandwidth_limit(8 * MiB)  # the service's: the smaller, the relationship's, wins
    a.set_bandwidth_limit(limit, vm)
    started = time.monotonic()
    result = a.start_replication(vm).wait(timeout=120)
    elapsed = time.monotonic() - started
    assert pair.same(vm)
    assert result.BandwidthLimit == limit
    # About 8 blocks at 4 a second: the transfer took about as long as the limit makes it (a
    # bucket holds at most 250 ms worth), and the job's rate is the rate it reached.
    assert result.DataBytesSent >= 6 * BLOCK
    assert elapsed >= 0.7 * result.WireBytesSent / limit, (elapsed, result.WireBytesSent)
    assert 0 < result.RateBytesPerSecond <= 1.5 * limit, result.RateBytesPerSecond

    # Without the relationship's limit, the service's applies; without both, none.
    a.set_bandwidth_limit(0, vm)
    write(a.disk_path(vm), 3 * MiB, os.urandom(1000))
    assert a.replicate_now(vm).wait(timeout=60).BandwidthLimit == 8 * MiB
    a.set_bandwidth_limit(0)
    write(a.disk_path(vm), 5 * MiB, os.urandom(1000))
    assert a.replicate_now(vm).wait(timeout=60).BandwidthLimit == 0


# ---- races and replica-side statistics ------------------------------------------------------------


def test_a_suspend_racing_a_cycle_loses_nothing(pair: Pair) -> None:
    a = pair.a
    vm = pair.define()
    pair.start(vm)
    for order in ("cycle first", "suspend first", "cycle first", "suspend first"):
        before = a.get_replication_statistics(vm).ReplicationSuccessCount
        if order == "cycle first":
            cycle: Optional[vmrepl.Job] = a.replicate_now(vm)
            suspend = a.request_replication_state_change(vm, RequestedState.Suspend)
        else:
            suspend = a.request_replication_state_change(vm, RequestedState.Suspend)
            try:
                cycle = a.replicate_now(vm)
            except vmrepl.InvalidState:  # the suspend took effect first: a fine outcome
                cycle = None
        completed = False
        if cycle is not None:
            try:
                cycle.wait(timeout=60)
                completed = True
            except vmrepl.InvalidState:  # refused by the cycle itself once suspended: fine too
                pass
        suspend.wait(timeout=60)
        # The suspend was requested and completed: the VM is suspended, and a cycle that
        # completed is counted.
        assert a.get_system(vm).ReplicationState == ReplicationState.Suspended, order
        assert a.get_replication_statistics(vm).ReplicationSuccessCount == before + completed, order
        a.request_replication_state_change(vm, RequestedState.Replicating).wait()


def test_replica_statistics_have_a_largest_cycle(pair: Pair) -> None:
    vm = pair.define()
    pair.start(vm)
    st = pair.b.get_replication_statistics(vm.Name)
    assert st.ReplicationSuccessCount == 1 and st.ReplicationSize > 0
    assert 0 < st.MaxReplicationSize <= st.ReplicationSize
