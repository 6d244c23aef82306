"""The modules' logic, in process, against two local: services (no vmrepld, no ansible-playbook).

Each module's main() runs as Ansible would run it (its arguments in _ANSIBLE_ARGS, its result
the JSON it prints before exiting), with ``vmrepl.open(uri)`` answering the service of this
process that the URI names: hv-a and hv-b, on 127.0.0.1, each a recovery server admitting the
other, as in tests/python/test_failover.py. This checks idempotency (a second run of every step
reports changed=false), check mode (nothing changes) and the failures (code, message) step by
step; test_playbooks.py runs the same modules through ansible-playbook against two vmrepld.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pathlib
import subprocess
import sys
from typing import Any, Dict, Iterator

import pytest

from conftest import GEN_IMAGE, MiB

vmrepl = pytest.importorskip("vmrepl", reason="the vmrepl binding needs VMREPL_LIBRARY")

from ansible.module_utils import basic  # noqa: E402

URI_A, URI_B = "unix:/test/hv-a.sock", "unix:/test/hv-b.sock"


def gen(*args: Any) -> None:
    subprocess.run([sys.executable, str(GEN_IMAGE), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def read(path: str) -> bytes:
    return pathlib.Path(path).read_bytes()


class Kept:
    """A service the modules open and close, kept open for the next task."""

    def __init__(self, svc: vmrepl.Service) -> None:
        self._svc = svc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._svc, name)

    def close(self) -> None:
        pass


class Pair:
    def __init__(self, tmp: pathlib.Path, stack: contextlib.ExitStack) -> None:
        self.tmp = tmp
        self.b = stack.enter_context(
            vmrepl.open(f"local:{tmp / 'b'}", host_name="hv-b", listen="127.0.0.1:0", hosts={"hv-a": "127.0.0.1"})
        )
        self.a = stack.enter_context(
            vmrepl.open(f"local:{tmp / 'a'}", host_name="hv-a", listen="127.0.0.1:0", hosts={"hv-b": "127.0.0.1"})
        )
        self.port_a: int = self.a.info().ListenPort
        self.port_b: int = self.b.info().ListenPort
        self.services = {URI_A: self.a, URI_B: self.b}

    def open(self, uri: str, **options: Any) -> Kept:
        if uri not in self.services:
            raise vmrepl.SystemNotAvailable(f"cannot connect to {uri}")
        return Kept(self.services[uri])

    def servers(self) -> None:
        """Both recovery servers, admitting each other (through the module)."""
        for uri, peer in ((URI_A, "hv-b"), (URI_B, "hv-a")):
            r = run(
                "vmrepl_server", uri=uri, recovery_server_enabled=True, allowed_authentication_type=1,
                authorization_entries=[dict(allowed_primary_host_system=peer,
                                            replica_storage_location=str(self.tmp / f"replicas-of-{peer}"))],
            )
            assert not r.get("failed"), r

    def vm(self, name: str, mib: int = 8, seed: int = 1) -> str:
        vm = self.a.define_system(name=name, disks=[mib * MiB])
        gen("mixed", self.a.disk_path(vm), mib, seed)
        return name

    def replicate(self, name: str) -> Dict[str, Any]:
        r = run("vmrepl_relationship", uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=self.port_b,
                replication_interval=300, recovery_history=3, compression=True)
        assert r["changed"] and not r.get("failed"), r
        return r

    def modes(self, svc: vmrepl.Service, name: str):
        s = svc.get_system(name)
        return int(s.ReplicationMode), int(s.ReplicationState)

    def replica_image(self, svc: vmrepl.Service, name: str) -> str:
        return svc.get_system(name).Folder + "/replica/disk0.img"


_PAIR: Dict[str, Pair] = {}


def run(module: str, check: bool = False, diff: bool = False, **args: Any) -> Dict[str, Any]:
    """Runs plugins/modules/<module>.py main() with ``args``; its result (failed=True on
    fail_json)."""
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    mod = importlib.import_module(f"ansible_collections.vmrepl.replication.plugins.modules.{module}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            mod.main()
    basic._ANSIBLE_ARGS = None
    return json.loads(out.getvalue())


@pytest.fixture
def pair(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    with contextlib.ExitStack() as stack:
        p = Pair(tmp_path, stack)
        monkeypatch.setattr(vmrepl, "open", p.open)
        p.servers()
        yield p


def failed_with(r: Dict[str, Any], code: int, *needles: str) -> None:
    assert r.get("failed"), r
    assert r["code"] == code, r
    assert r["rc"] == code
    assert str(code) in r["msg"], r["msg"]
    for n in needles:
        assert n in r["msg"], (n, r["msg"])


# ---- vmrepl_server / vmrepl_info ----------------------------------------------------------------


def test_server_settings_and_entries_are_idempotent(pair: Pair) -> None:
    args = dict(uri=URI_B, recovery_server_enabled=True, allowed_authentication_type=1,
                authorization_entries=[dict(allowed_primary_host_system="hv-a",
                                            replica_storage_location=str(pair.tmp / "replicas-of-hv-a"))])
    r = run("vmrepl_server", **args)
    assert r["changed"] is False and r["actions"] == [], r  # as the fixture left it
    assert r["settings"]["RecoveryServerEnabled"] is True
    assert [e["AllowedPrimaryHostSystem"] for e in r["authorization_entries"]] == ["hv-a"]

    # Check mode: says what it would do, does nothing.
    more = dict(args, monitoring_interval=7200, authorization_entries=args["authorization_entries"] + [
        dict(allowed_primary_host_system="*.lab", trust_group="LAB", replica_storage_location="/srv/lab")])
    r = run("vmrepl_server", check=True, diff=True, **more)
    assert r["changed"] is True and r["jobs"] == []
    assert r["actions"] == ["modify_service_settings(MonitoringInterval)", "add_authorization_entry(*.lab)"]
    assert r["diff"]["after"]["settings"]["MonitoringInterval"] == 7200
    assert int(pair.b.get_service_settings().MonitoringInterval) != 7200
    assert len(pair.b.list_authorization_entries()) == 1

    r = run("vmrepl_server", **more)
    assert r["changed"] is True and len(r["jobs"]) == 2
    assert all(j["JobState"] == 7 for j in r["jobs"])
    assert int(pair.b.get_service_settings().MonitoringInterval) == 7200
    assert run("vmrepl_server", **more)["changed"] is False

    # A changed entry is modified; purge removes the unlisted one; absent removes.
    changed = dict(more, authorization_entries=[dict(allowed_primary_host_system="hv-a", trust_group="GOLD",
                                                     replica_storage_location=str(pair.tmp / "replicas-of-hv-a"))],
                   purge_authorization_entries=True)
    r = run("vmrepl_server", **changed)
    assert r["actions"] == ["modify_authorization_entry(hv-a)", "remove_authorization_entry(*.lab)"], r
    assert [(e["AllowedPrimaryHostSystem"], e["TrustGroup"]) for e in r["authorization_entries"]] == [("hv-a", "GOLD")]
    assert run("vmrepl_server", **changed)["changed"] is False
    r = run("vmrepl_server", uri=URI_B, authorization_entries=[dict(allowed_primary_host_system="hv-a", state="absent")])
    assert r["changed"] and r["authorization_entries"] == []
    assert run("vmrepl_server", uri=URI_B, authorization_entries=[
        dict(allowed_primary_host_system="hv-a", state="absent")])["changed"] is False


def test_server_refusal_carries_the_code(pair: Pair) -> None:
    r = run("vmrepl_server", uri=URI_B, monitoring_interval=5)  # below 3600
    failed_with(r, 32773, "MonitoringInterval")
    assert r["error_description"] and r["status_name"] == "InvalidParameter"
    r = run("vmrepl_server", uri="unix:/nowhere.sock")
    failed_with(r, 32777, "cannot open unix:/nowhere.sock")


def test_info_reads_and_never_changes(pair: Pair) -> None:
    name = pair.vm("web01")
    r = run("vmrepl_info", uri=URI_A, vm=name, gather=["all"])
    assert r["changed"] is False and r["exists"] is True
    assert r["vm"]["ElementName"] == "web01" and r["vm"]["ReplicationMode"] == 0
    assert r["service"]["HostName"] == "hv-a" and r["service"]["ListenPort"] == pair.port_a
    assert r["service"]["settings"]["RecoveryServerEnabled"] is True
    assert r["relationships"] == {} and r["recovery_points"] == {} and r["statistics"] == {}
    assert [e["AllowedPrimaryHostSystem"] for e in r["authorization_entries"]] == ["hv-b"]
    assert isinstance(r["jobs"], list)
    r = run("vmrepl_info", uri=URI_B, vm="web01", gather=[])
    assert r == {**r, "changed": False, "exists": False} and "vm" not in r
    pair.replicate(name)
    r = run("vmrepl_info", uri=URI_B, gather=["vms", "relationships", "recovery_points", "statistics"])
    assert [v["ElementName"] for v in r["vms"]] == ["web01"]
    assert r["relationships"]["web01"]["RecoveryConnectionPoint"] == "hv-b"
    assert len(r["recovery_points"]["web01"]) == 1 and r["recovery_points"]["web01"][0]["IsLatest"] is True
    assert "ReplicationSuccessCount" in r["statistics"]["web01"]


# ---- vmrepl_relationship --------------------------------------------------------------------------


def test_relationship_create_modify_check_mode_and_absent(pair: Pair) -> None:
    name = pair.vm("app01", 8, 2)
    args = dict(uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=pair.port_b,
                replication_interval=300, recovery_history=3, compression=True)
    r = run("vmrepl_relationship", check=True, **args)
    assert r["changed"] and r["actions"] == [f"create_replication_relationship(hv-b:{pair.port_b})",
                                             "start_replication(network)"]
    assert pair.modes(pair.a, name) == (0, 0)

    r = run("vmrepl_relationship", **args)
    assert r["changed"] and r["vm"]["ReplicationMode"] == 1 and r["vm"]["ReplicationState"] == 3
    assert r["initial_replication"]["JobState"] == 7 and r["initial_replication"]["BlocksSent"] > 0
    assert r["settings"]["RecoveryHistory"] == 3
    assert read(pair.replica_image(pair.b, name)) == read(pair.a.disk_path(name))
    again = run("vmrepl_relationship", **args)
    assert again["changed"] is False and again["actions"] == [], again

    r = run("vmrepl_relationship", check=True, diff=True, **dict(args, recovery_history=5))
    assert r["changed"] and r["actions"] == ["modify_replication_settings(RecoveryHistory)"]
    assert r["diff"]["before"]["settings"]["RecoveryHistory"] == 3
    assert r["diff"]["after"]["settings"]["RecoveryHistory"] == 5
    assert int(pair.a.get_replication_settings(name).RecoveryHistory) == 3
    r = run("vmrepl_relationship", **dict(args, recovery_history=5))
    assert r["changed"] and r["settings"]["RecoveryHistory"] == 5
    assert run("vmrepl_relationship", **dict(args, recovery_history=5))["changed"] is False

    r = run("vmrepl_relationship", **dict(args, recovery_server="hv-c"))
    failed_with(r, 32773, "already replicates to hv-b")
    r = run("vmrepl_relationship", **dict(args, uri=URI_B))  # the replica side
    failed_with(r, 32775, "ReplicationState 3", "ReplicationMode 2")
    r = run("vmrepl_relationship", uri=URI_A, vm="ghost", recovery_server="hv-b", recovery_port=pair.port_b)
    failed_with(r, 32779, "ghost")

    r = run("vmrepl_relationship", uri=URI_A, vm=name, state="absent", check=True)
    assert r["changed"] and pair.modes(pair.a, name)[0] == 1
    r = run("vmrepl_relationship", uri=URI_A, vm=name, state="absent")
    assert r["changed"] and r["vm"]["ReplicationMode"] == 0 and "settings" not in r
    assert run("vmrepl_relationship", uri=URI_A, vm=name, state="absent")["changed"] is False


def test_relationship_initial_replication_none_then_later(pair: Pair) -> None:
    name = pair.vm("later01", 8, 3)
    args = dict(uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=pair.port_b)
    r = run("vmrepl_relationship", initial_replication="none", **args)
    assert r["changed"] and r["vm"]["ReplicationState"] == 1
    assert run("vmrepl_relationship", initial_replication="none", **args)["changed"] is False
    r = run("vmrepl_relationship", **args)  # network: the relationship is ready, so it starts
    assert r["changed"] and r["actions"] == ["start_replication(network)"]
    assert r["vm"]["ReplicationState"] == 3


def test_a_job_outliving_the_timeout_fails_with_32772(pair: Pair) -> None:
    name = pair.vm("slow01", 64, 4)
    args = dict(uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=pair.port_b)
    run("vmrepl_relationship", initial_replication="none", **args)
    r = run("vmrepl_relationship", timeout=0, **args)
    failed_with(r, 32772, "still running", "start_replication(network)")
    assert r["job_id"] and r["job"]["JobType"] == 94 and r["job"]["JobState"] in (2, 3, 4)
    # The job goes on; the next run waits for it and reports no change of its own.
    r = run("vmrepl_relationship", **args)
    assert not r.get("failed"), r
    assert r["changed"] is False and r["vm"]["ReplicationState"] == 3
    assert r["initial_replication"]["JobState"] == 7 and r["initial_replication"]["InstanceID"] == r["jobs"][0]["InstanceID"]


# ---- planned failover, reverse, failback ---------------------------------------------------------


def test_planned_runbook_step_by_step(pair: Pair) -> None:
    name = pair.vm("web01", 16, 11)
    pair.replicate(name)
    pair.a.request_state_change(name, vmrepl.EnabledState.Running)

    def twice(module: str, **args: Any) -> Dict[str, Any]:
        """Runs a step in check mode (nothing moves), then for real, then again (no change)."""
        before = (pair.modes(pair.a, name), pair.modes(pair.b, name))
        r = run(module, check=True, **args)
        assert not r.get("failed") and r["changed"] and r["jobs"] == [], r
        assert (pair.modes(pair.a, name), pair.modes(pair.b, name)) == before
        r = run(module, **args)
        assert not r.get("failed") and r["changed"], r
        again = run(module, **args)
        assert not again.get("failed") and again["changed"] is False, again
        return r

    # Without power_off, a running primary is refused (SystemInUse).
    failed_with(run("vmrepl_failover", uri=URI_A, vm=name, action="prepare"), 32774, "running")
    r = twice("vmrepl_failover", uri=URI_A, vm=name, action="prepare", power_off=True)
    assert r["actions"] == ["request_state_change(off)", "request_replication_state_change(4)"]
    assert (r["vm"]["ReplicationState"], r["vm"]["EnabledState"]) == (4, 3)
    assert r["job"]["JobType"] == 100
    r = twice("vmrepl_failover", uri=URI_B, vm=name, action="initiate")
    assert r["vm"]["ReplicationState"] == 5 and r["vm"]["FailedOverReplicationType"] == 3
    assert r["job"]["JobType"] == 97
    gen("modify", pair.b.disk_path(name), 1, 21)  # the new primary's writes before the reverse
    r = twice("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a, start_vm=True)
    assert r["actions"] == [f"reverse_replication_relationship(hv-a:{pair.port_a})", "request_state_change(running)"]
    assert r["reverse"]["JobType"] == 104 and r["reverse"]["BlocksSent"] > 0
    assert (r["vm"]["ReplicationMode"], r["vm"]["ReplicationState"], r["vm"]["EnabledState"]) == (1, 3, 2)
    assert r["settings"]["RecoveryConnectionPoint"] == "hv-a"
    assert (r["settings"]["RecoveryHistory"], r["settings"]["CompressionEnabled"]) == (3, True)  # carried over
    assert pair.modes(pair.a, name) == (2, 3)
    assert read(pair.replica_image(pair.a, name)) == read(pair.b.disk_path(name))
    # The relationship, seen from its new primary, is what replication.yml asks for.
    r = run("vmrepl_relationship", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a,
            replication_interval=300, recovery_history=3, compression=True)
    assert r["changed"] is False, r

    # Failback.
    twice("vmrepl_failover", uri=URI_B, vm=name, action="prepare", power_off=True)
    twice("vmrepl_failover", uri=URI_A, vm=name, action="initiate")
    gen("modify", pair.a.disk_path(name), 1, 22)
    r = twice("vmrepl_reverse", uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=pair.port_b,
              start_vm=True, verify=True)
    assert (pair.modes(pair.a, name), pair.modes(pair.b, name)) == ((1, 3), (2, 3))
    assert read(pair.replica_image(pair.b, name)) == read(pair.a.disk_path(name))
    assert run("vmrepl_failover", uri=URI_A, vm=name, action="revert")["changed"] is False


def test_prepared_failover_is_reverted(pair: Pair) -> None:
    name = pair.vm("rev01", 8, 12)
    pair.replicate(name)
    run("vmrepl_failover", uri=URI_A, vm=name, action="prepare")
    r = run("vmrepl_failover", uri=URI_A, vm=name, action="revert")
    assert r["changed"] and r["vm"]["ReplicationState"] == 3 and r["job"]["JobType"] == 98
    assert run("vmrepl_failover", uri=URI_A, vm=name, action="revert")["changed"] is False
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="initiate")
    assert r["vm"]["ReplicationState"] == 5
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="revert")
    assert r["changed"] and r["vm"]["ReplicationState"] == 3
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="revert")["changed"] is False


# ---- unplanned: point, commit, make replica, reverse + resync --------------------------------------


def test_unplanned_runbook_step_by_step(pair: Pair) -> None:
    name = pair.vm("db01", 16, 13)
    pair.replicate(name)
    for seed in (31, 32):
        gen("modify", pair.a.disk_path(name), 1, seed)
        pair.a.replicate_now(name).wait(timeout=60)
    gen("modify", pair.a.disk_path(name), 1, 33)  # never replicated: lost with hv-a
    points = run("vmrepl_info", uri=URI_B, vm=name, gather=["recovery_points"])["recovery_points"][name]
    assert len(points) == 3
    older = points[-2]

    r = run("vmrepl_failover", uri=URI_B, vm=name, action="initiate", recovery_point=str(older["RecoveryPointSequence"]))
    assert r["changed"] and r["vm"]["ReplicationState"] == 5
    assert r["vm"]["FailedOverReplicationType"] != 3
    assert pair.b.compute_digest(name).wait().DiskMerkleRoots == older["DiskMerkleRoots"]
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="initiate")["changed"] is False
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="commit", start_vm=True)
    assert r["changed"] and (r["vm"]["ReplicationState"], r["vm"]["EnabledState"]) == (6, 2)
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="commit", start_vm=True)["changed"] is False
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="initiate")["changed"] is False
    gen("modify", pair.b.disk_path(name), 1, 34)  # the new primary's workload

    # The reverse before the old primary is a replica: the engine's refusal, passed through.
    r = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a)
    assert r.get("failed") and r["code"] in (32775, 32774), r

    pair.a.request_state_change(name, vmrepl.EnabledState.Running)
    r = run("vmrepl_relationship", uri=URI_A, vm=name, state="replica", check=True, power_off=True)
    assert r["changed"] and pair.modes(pair.a, name) == (1, 3)
    failed_with(run("vmrepl_relationship", uri=URI_A, vm=name, state="replica"), 32774, "running")
    r = run("vmrepl_relationship", uri=URI_A, vm=name, state="replica", power_off=True)
    assert r["changed"] and (r["vm"]["ReplicationMode"], r["vm"]["ReplicationState"]) == (2, 2)
    assert run("vmrepl_relationship", uri=URI_A, vm=name, state="replica", power_off=True)["changed"] is False

    r = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a,
            verify=True, check=True)
    assert r["changed"] and r["jobs"] == [] and pair.modes(pair.b, name) == (2, 6)
    r = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a, verify=True)
    assert r["changed"], r
    assert r["actions"] == [f"reverse_replication_relationship(hv-a:{pair.port_a})", "start_replication(network)"]
    assert r["reverse"]["BlocksSent"] > 0 and r["start_replication"]["JobState"] == 7
    assert (pair.modes(pair.b, name), pair.modes(pair.a, name)) == ((1, 3), (2, 3))
    assert read(pair.replica_image(pair.a, name)) == read(pair.b.disk_path(name))
    again = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a, verify=True)
    assert again["changed"] is False and again["actions"] == []
    # A reverse towards another host than the relationship's is a wrong state.
    failed_with(run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-c"), 32775, "ReplicationState 3")


def test_reverse_left_ready_is_started_by_the_next_run(pair: Pair) -> None:
    name = pair.vm("ready01", 8, 14)
    pair.replicate(name)
    run("vmrepl_failover", uri=URI_B, vm=name, action="initiate")
    run("vmrepl_failover", uri=URI_B, vm=name, action="commit")
    run("vmrepl_relationship", uri=URI_A, vm=name, state="replica")
    r = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a,
            start_replication="none")
    assert r["changed"] and r["vm"]["ReplicationState"] == 1 and "start_replication" not in r
    assert run("vmrepl_reverse", uri=URI_B, vm=name, start_replication="none")["changed"] is False
    r = run("vmrepl_reverse", uri=URI_B, vm=name)  # recovery_server: the relationship's
    assert r["changed"] and r["actions"] == ["start_replication(network)"] and r["vm"]["ReplicationState"] == 3
    assert read(pair.replica_image(pair.a, name)) == read(pair.b.disk_path(name))


# ---- wrong states and test failover --------------------------------------------------------------


def test_wrong_states_fail_with_32775_naming_the_state(pair: Pair) -> None:
    name = pair.vm("err01", 8, 15)
    pair.replicate(name)
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="commit")
    failed_with(r, 32775, "ReplicationState 3", "InvalidState")
    assert "ReplicationState 3" in r["error_description"] and r["status_name"] == "InvalidState"
    failed_with(run("vmrepl_failover", uri=URI_A, vm=name, action="initiate"), 32775, "ReplicationMode 1")
    failed_with(run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a),
                32775, "ReplicationState 3")
    # Check mode does not ask the engine: it reports the step it would try.
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="commit", check=True)["changed"] is True
    failed_with(run("vmrepl_failover", uri=URI_B, vm="ghost", action="initiate"), 32779, "ghost")
    assert pair.modes(pair.b, name) == (2, 3)


def test_test_failover_and_its_cleanup(pair: Pair) -> None:
    name = pair.vm("web02", 8, 16)
    pair.replicate(name)
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="test", check=True)
    assert r["changed"] and "test_vm" not in r and len(pair.b.list_systems()) == 1
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="test")
    assert r["changed"] and r["job"]["JobType"] == 102
    test_vm = r["test_vm"]
    assert test_vm["ElementName"] == "web02 - Test" and test_vm["ReplicationMode"] == 3
    assert read(pair.b.disk_path(test_vm["Name"])) == read(pair.a.disk_path(name))
    again = run("vmrepl_failover", uri=URI_B, vm=name, action="test")
    assert again["changed"] is False and again["test_vm"]["Name"] == test_vm["Name"]
    pair.b.request_state_change(test_vm["Name"], vmrepl.EnabledState.Running)
    r = run("vmrepl_failover", uri=URI_B, vm=name, action="revert")
    assert r["changed"] and r["actions"] == ["request_state_change(off) of web02 - Test", "destroy_system(web02 - Test)"]
    assert [s.ElementName for s in pair.b.list_systems()] == ["web02"]
    assert run("vmrepl_failover", uri=URI_B, vm=name, action="revert")["changed"] is False
    assert pair.modes(pair.b, name) == (2, 3)


def test_seeded_initial_replication_and_seeded_start_after_an_unplanned_reverse(pair: Pair) -> None:
    name = pair.vm("seed01", 8, 5)
    r = run("vmrepl_relationship", uri=URI_A, vm=name, recovery_server="hv-b", recovery_port=pair.port_b,
            initial_replication="seeded")
    assert r["changed"] and r["actions"][-1] == "start_replication(seeded)", r
    assert r["initial_replication"]["JobState"] == 7 and r["vm"]["ReplicationState"] == 3
    assert read(pair.replica_image(pair.b, name)) == read(pair.a.disk_path(name))
    run("vmrepl_failover", uri=URI_B, vm=name, action="initiate")
    run("vmrepl_failover", uri=URI_B, vm=name, action="commit")
    gen("modify", pair.b.disk_path(name), 1, 51)
    run("vmrepl_relationship", uri=URI_A, vm=name, state="replica")
    r = run("vmrepl_reverse", uri=URI_B, vm=name, recovery_server="hv-a", recovery_port=pair.port_a,
            start_replication="seeded")
    assert r["changed"] and r["actions"][-1] == "start_replication(seeded)", r
    assert (pair.modes(pair.b, name), pair.modes(pair.a, name)) == ((1, 3), (2, 3))
    assert read(pair.replica_image(pair.a, name)) == read(pair.b.disk_path(name))
