"""Failover, test failover and ReverseReplicationRelationship through the binding, between two
in-process services on 127.0.0.1 that each admit the other (a reverse makes the old primary a
replica, so hv-a is a recovery server too).

Disks are gen_image.py "mixed" images (bench/gen_image.py: 40% zero, 30% random, 30% text
blocks) changed with its "modify" command; bytes are compared on disk. On a replica VM the
replicated data is ``<VM Folder>/replica/disk0.img``; on a failed-over or primary VM it is the
VM's own disk (``disk_path``).
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
from typing import Any, Iterator, Tuple

import pytest

import vmrepl
from conftest import REPO, MiB
from vmrepl import EnabledState, JobState, JobType, ReplicationMode, ReplicationState, RequestedState

GEN_IMAGE = REPO / "bench" / "gen_image.py"


def gen(*args: Any) -> None:
    """bench/gen_image.py with these arguments (its report line is dropped)."""
    subprocess.run([sys.executable, str(GEN_IMAGE), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def read(path: str) -> bytes:
    return pathlib.Path(path).read_bytes()


class Hosts:
    """hv-a and hv-b on 127.0.0.1, each a recovery server admitting the other.

    hv-b keeps its replicas under tmp/b-replicas; hv-a (the old primary after a reverse) under
    its own host root, as the operator's entry on hv-a says."""

    def __init__(self, tmp: pathlib.Path, stack: contextlib.ExitStack) -> None:
        self.root_a, self.root_b = tmp / "a", tmp / "b"
        self.b = stack.enter_context(
            vmrepl.open(f"local:{self.root_b}", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"})
        )
        self.a = stack.enter_context(
            vmrepl.open(f"local:{self.root_a}", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"})
        )
        self.b.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
        self.b.add_authorization_entry(
            AllowedPrimaryHostSystem="hv-a", TrustGroup="DEFAULT", ReplicaStorageLocation=str(tmp / "b-replicas")
        ).wait()
        self.a.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
        self.a.add_authorization_entry(
            AllowedPrimaryHostSystem="hv-b", TrustGroup="DEFAULT", ReplicaStorageLocation=str(self.root_a)
        ).wait()
        self.port_a: int = self.a.info().ListenPort
        self.port_b: int = self.b.info().ListenPort

    def to(self, host: str, **properties: Any) -> vmrepl.ReplicationSettingData:
        """Settings replicating to ``host`` ("hv-a" or "hv-b") on its listener."""
        port = self.port_a if host == "hv-a" else self.port_b
        base = dict(
            RecoveryConnectionPoint=host, RecoveryServerPortNumber=port, AuthenticationType=1,
            ReplicationInterval=300, RecoveryHistory=3,
        )
        base.update(properties)
        return vmrepl.ReplicationSettingData(**base)

    def replicated(self, name: str, mib: int, seed: int) -> vmrepl.Instance:
        """A VM on hv-a holding a mixed image, replicating to hv-b (initial replication done)."""
        vm = self.a.define_system(name=name, disks=[mib * MiB])
        gen("mixed", self.a.disk_path(vm), mib, seed)
        self.a.create_replication_relationship(vm, self.to("hv-b")).wait()
        self.a.start_replication(vm).wait(timeout=60)
        return vm

    @staticmethod
    def modes(svc: vmrepl.Service, vm: vmrepl.Instance) -> Tuple[int, int]:
        s = svc.get_system(vm.Name)
        return s.ReplicationMode, s.ReplicationState

    @staticmethod
    def replica_image(svc: vmrepl.Service, vm: vmrepl.Instance) -> str:
        return svc.get_system(vm.Name).Folder + "/replica/disk0.img"


@pytest.fixture
def hosts(tmp_path: pathlib.Path) -> Iterator[Hosts]:
    with contextlib.ExitStack() as stack:
        yield Hosts(tmp_path, stack)


def raises_at_once(exc: type, call: Any, *needles: str) -> vmrepl.Error:
    """The call itself raises ``exc`` (validation), no job is started."""
    with pytest.raises(exc) as ei:
        call()
    for needle in needles:
        assert needle in ei.value.message, (needle, ei.value.message)
    assert ei.value.job_id is None
    return ei.value


def planned_failover(old: vmrepl.Service, new: vmrepl.Service, vm: vmrepl.Instance) -> None:
    """Prepare on the old primary (VM off, final cycle, state 4), fail over on the new side."""
    assert old.request_state_change(vm.Name, EnabledState.Off) is None
    job = old.request_replication_state_change(vm.Name, RequestedState.SyncedReplicationComplete)
    assert job.wait(timeout=60).JobState == JobState.Completed
    assert Hosts.modes(old, vm) == (ReplicationMode.Primary, ReplicationState.SyncedReplicationComplete)
    job = new.initiate_failover(vm.Name)
    assert job.job_type == JobType.InitiateFailover == 97
    job.wait(timeout=60)
    assert Hosts.modes(new, vm) == (ReplicationMode.Replica, ReplicationState.Recovered)
    assert new.get_system(vm.Name).FailedOverReplicationType == vmrepl.ReplicationType.Planned == 3
    # Planned: nothing was lost, the failed-over disk is the old primary's.
    assert read(new.disk_path(vm.Name)) == read(old.disk_path(vm.Name))


# ---- (1) the planned runbook: fail over, reverse, fail back ---------------------------------------


def test_planned_failover_reverse_and_failback(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    vm = hosts.replicated("web01", 16, 11)

    planned_failover(a, b, vm)
    # The new primary runs and writes.
    b.request_state_change(vm.Name, EnabledState.Running)
    gen("modify", b.disk_path(vm.Name), 1, 21)
    job = b.reverse_replication_relationship(vm.Name, hosts.to("hv-a"))
    assert job.job_type == JobType.ReverseReplication == 104
    r = job.wait(timeout=60)
    assert hosts.modes(b, vm) == (ReplicationMode.Primary, ReplicationState.Replicating)
    assert hosts.modes(a, vm) == (ReplicationMode.Replica, ReplicationState.Replicating)
    # hv-a holds the replica of hv-b's disk; only what hv-b changed travelled.
    assert read(hosts.replica_image(a, vm)) == read(b.disk_path(vm.Name))
    assert r.ChangeSource in ("change-feed", "scan", "merkle")
    assert 0 < r.BlocksSent < (16 * MiB) // (64 * 1024) // 10
    assert r.DataBytesSent >= r.BlocksSent * 64 * 1024
    assert r.DiskMerkleRoots == b.compute_digest(vm.Name).wait().DiskMerkleRoots
    settings = b.get_replication_settings(vm.Name)
    assert (settings.PrimaryHostSystem, settings.RecoveryConnectionPoint) == ("hv-b", "hv-a")
    # Cycles go on from hv-b to hv-a.
    gen("modify", b.disk_path(vm.Name), 1, 22)
    assert b.replicate_now(vm.Name).wait(timeout=60).BlocksSent > 0
    assert read(hosts.replica_image(a, vm)) == read(b.disk_path(vm.Name))

    # Failback, verified in full: hv-b prepares, hv-a fails over and reverses to hv-b.
    planned_failover(b, a, vm)
    gen("modify", a.disk_path(vm), 1, 23)
    r = a.reverse_replication_relationship(vm, hosts.to("hv-b"), verify="full").wait(timeout=60)
    assert hosts.modes(a, vm) == (ReplicationMode.Primary, ReplicationState.Replicating)
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Replicating)
    assert read(hosts.replica_image(b, vm)) == read(a.disk_path(vm))
    assert r.BlocksSent > 0


def test_a_prepared_failover_is_reverted_on_the_primary(hosts: Hosts) -> None:
    a = hosts.a
    vm = hosts.replicated("app01", 8, 12)
    a.request_replication_state_change(vm, RequestedState.SyncedReplicationComplete).wait(timeout=60)
    assert hosts.modes(a, vm) == (1, ReplicationState.SyncedReplicationComplete)
    job = a.revert_failover(vm)
    assert job.job_type == JobType.RevertFailover == 98
    job.wait(timeout=30)
    assert hosts.modes(a, vm) == (1, ReplicationState.Replicating)


# ---- (2) unplanned: an older point, commit, make-replica, reverse, start ------------------------


def test_unplanned_failover_to_an_older_point_then_reverse_and_start(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    vm = hosts.replicated("db01", 16, 13)
    for seed in (31, 32):
        gen("modify", a.disk_path(vm), 1, seed)
        a.replicate_now(vm).wait(timeout=60)
    gen("modify", a.disk_path(vm), 1, 33)  # never replicated: lost with hv-a
    points = b.list_recovery_points(vm.Name)
    assert len(points) == 3 and points[-1].IsLatest
    older = points[-2]

    job = b.initiate_failover(vm.Name, older)  # the Instance itself
    job.wait(timeout=60)
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Recovered)
    assert b.get_system(vm.Name).FailedOverReplicationType != vmrepl.ReplicationType.Planned
    # The failed-over disk is that point.
    assert b.compute_digest(vm.Name).wait().DiskMerkleRoots == older.DiskMerkleRoots
    job = b.commit_failover(vm.Name)
    assert job.job_type == JobType.CommitFailover == 99
    job.wait(timeout=30)
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Committed)
    assert len(b.list_recovery_points(vm.Name)) == 1
    gen("modify", b.disk_path(vm.Name), 1, 34)  # the new primary's writes

    # hv-a comes back: made a replica first (its VM off), then the reverse from hv-b.
    job = a.request_replication_state_change(vm, RequestedState.WaitingToCompleteInitialReplication)
    job.wait(timeout=30)
    assert hosts.modes(a, vm) == (ReplicationMode.Replica, ReplicationState.WaitingToCompleteInitialReplication)
    r = b.reverse_replication_relationship(vm.Name, hosts.to("hv-a").to_json(), verify="full").wait(timeout=60)
    assert hosts.modes(b, vm) == (ReplicationMode.Primary, ReplicationState.ReadyForReplication)
    assert hosts.modes(a, vm) == (ReplicationMode.Replica, ReplicationState.WaitingToCompleteInitialReplication)
    assert r.ChangeSource in ("change-feed", "scan", "merkle") and r.BlocksSent > 0
    b.start_replication(vm.Name, vmrepl.InitialReplicationType.Network).wait(timeout=60)
    assert hosts.modes(b, vm) == (ReplicationMode.Primary, ReplicationState.Replicating)
    assert hosts.modes(a, vm) == (ReplicationMode.Replica, ReplicationState.Replicating)
    assert read(hosts.replica_image(a, vm)) == read(b.disk_path(vm.Name))


def test_revert_failover_on_the_replica_resumes_replication(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    vm = hosts.replicated("fs01", 8, 14)
    seq = b.list_recovery_points(vm.Name)[-1].RecoveryPointSequence
    b.initiate_failover(vm.Name, seq).wait(timeout=60)  # by sequence number
    assert read(b.disk_path(vm.Name)) == read(a.disk_path(vm))
    b.revert_failover(vm.Name).wait(timeout=30)
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Replicating)
    gen("modify", a.disk_path(vm), 1, 41)
    a.replicate_now(vm).wait(timeout=60)
    assert read(hosts.replica_image(b, vm)) == read(a.disk_path(vm))
    raises_at_once(vmrepl.InvalidState, lambda: b.commit_failover(vm.Name), "ReplicationState 3")
    raises_at_once(vmrepl.InvalidState, lambda: b.revert_failover(vm.Name), "ReplicationState 3")


# ---- (3) errors at once ---------------------------------------------------------------------------


def test_reverse_errors_are_raised_at_once(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    vm = hosts.replicated("err01", 8, 15)
    back = hosts.to("hv-a")
    e = raises_at_once(vmrepl.InvalidState, lambda: a.reverse_replication_relationship(vm, back), "ReplicationMode 1")
    assert e.code == 32775
    e = raises_at_once(
        vmrepl.InvalidState, lambda: b.reverse_replication_relationship(vm.Name, back), "ReplicationState 3"
    )
    assert e.code == 32775
    b.initiate_failover(vm.Name, "").wait(timeout=60)  # "" is the latest too
    e = raises_at_once(
        vmrepl.InvalidParameter,
        lambda: b.reverse_replication_relationship(vm.Name, hosts.to("hv-a", RecoveryServerPortNumber=0)),
    )
    assert e.code == 32773 and e.message.startswith("RecoveryServerPortNumber"), e.message
    # verify: None or "full", nothing else; refused before the library is called.
    for bogus in ("bogus", "FULL", 1, True):
        e = raises_at_once(
            vmrepl.InvalidParameter,
            lambda: b.reverse_replication_relationship(vm.Name, back, verify=bogus),  # type: ignore[arg-type]
            "verify",
        )
        assert e.code == 32773
    raises_at_once(vmrepl.InvalidState, lambda: a.initiate_failover(vm), "not a replica")
    raises_at_once(vmrepl.FileNotFound, lambda: b.initiate_failover("ghost"), "ghost")
    raises_at_once(vmrepl.InvalidParameter, lambda: b.revert_failover("Msvm_ComputerSystem.Name="))
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Recovered)  # nothing moved


def test_snapshot_and_settings_argument_checks(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    with pytest.raises(TypeError, match="recovery point"):
        svc.initiate_failover(vm, vm)  # a VM is not a recovery point
    with pytest.raises(TypeError, match="snapshot"):
        svc.test_replica_system(vm, 1.5)  # type: ignore[arg-type]
    with pytest.raises(vmrepl.InvalidParameter, match="out of range"):
        svc.initiate_failover(vm, -1)
    with pytest.raises(vmrepl.InvalidParameter, match="NUL"):
        svc.initiate_failover(vm, "1\x00")
    with pytest.raises(TypeError, match="setting data"):
        svc.reverse_replication_relationship(vm, 42)


def test_failover_methods_after_close_raise_invalid_state(root: str) -> None:
    with vmrepl.open(f"local:{root}") as svc:
        vm = svc.define_system(name="vm", disks=[MiB])
    settings = vmrepl.ReplicationSettingData(RecoveryConnectionPoint="x", RecoveryServerPortNumber=1, AuthenticationType=1)
    for call in (
        lambda: svc.initiate_failover(vm),
        lambda: svc.revert_failover(vm),
        lambda: svc.commit_failover(vm),
        lambda: svc.test_replica_system(vm, "1"),
        lambda: svc.reverse_replication_relationship(vm, settings),
        lambda: svc.reverse_replication_relationship(vm, settings, verify="full"),
    ):
        with pytest.raises(vmrepl.InvalidState, match="Service.*is closed"):
            call()


# ---- (4) test failover ----------------------------------------------------------------------------


def test_test_replica_system_makes_a_test_vm_that_destroy_removes(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    vm = hosts.replicated("web02", 8, 16)
    job = b.test_replica_system(vm.Name)
    assert job.job_type == JobType.InitiateTestReplica == 102
    test_vm = job.wait(timeout=60).ResultingSystem
    t = b.get_system(test_vm)
    assert t.ElementName == "web02 - Test" and t.Name == test_vm != vm.Name
    assert t.ReplicationMode == ReplicationMode.TestReplica == 3
    assert read(b.disk_path(test_vm)) == read(hosts.replica_image(b, vm)) == read(a.disk_path(vm))
    raises_at_once(vmrepl.InvalidState, lambda: b.test_replica_system(vm.Name))  # one at a time
    # Replication goes on meanwhile.
    gen("modify", a.disk_path(vm), 1, 51)
    a.replicate_now(vm).wait(timeout=60)
    assert hosts.modes(b, vm) == (ReplicationMode.Replica, ReplicationState.Replicating)
    b.destroy_system(test_vm)
    raises_at_once(vmrepl.FileNotFound, lambda: b.get_system(test_vm))
    assert [s.ElementName for s in b.list_systems()] == ["web02"]
    # From an older point, named by its InstanceID.
    first = b.list_recovery_points(vm.Name)[0]
    test_vm = b.test_replica_system(vm.Name, first.InstanceID).wait(timeout=60).ResultingSystem
    assert b.compute_digest(test_vm).wait().DiskMerkleRoots == first.DiskMerkleRoots
    b.destroy_system(test_vm)
