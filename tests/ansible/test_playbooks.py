"""The runbooks of examples/ansible through the real ansible-playbook, against two vmrepld.

Two daemons run in a temporary folder, each with its own host root, admin socket and
replication listener on a free loopback port, and a `hosts` table naming the other
(127.0.0.1). The inventory is examples/ansible/inventory.yml with each host's vmrepl_uri set
to its socket (ansible_connection: local for both). The tests talk to the daemons through the
Python binding (unix:) only to make the VMs' data and to check the outcome:

* planned.yml (failover, reverse, failback) ends with byte-equal disks, hv-a the primary;
* unplanned.yml: hv-a's daemon stopped, the failover part runs with --limit hv-b; hv-a back,
  the whole playbook makes it a replica, reverses and resyncs - byte-equal disks, hv-b the
  primary;
* a second run of each playbook reports changed=0 in the recap; --check changes nothing;
* a step in a wrong state fails the task with the state and 32775 in its message.

Run by ctest as ansible.playbooks, which sets VMREPL_LIBRARY and VMREPLD.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml

from conftest import EXAMPLES, GEN_IMAGE, MiB, ansible_env

vmrepl = pytest.importorskip("vmrepl", reason="the vmrepl binding needs VMREPL_LIBRARY")

VMREPLD = os.environ.get("VMREPLD", "")
pytestmark = pytest.mark.skipif(not VMREPLD, reason="VMREPLD is not set (the build has no tools/vmrepld)")

HOSTS = ("hv-a", "hv-b")
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.M,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(*args: Any) -> None:
    subprocess.run([sys.executable, str(GEN_IMAGE), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def read(path: str) -> bytes:
    return pathlib.Path(path).read_bytes()


class Daemon:
    """One vmrepld, started and stopped by the test (SIGTERM: a clean shutdown)."""

    def __init__(self, tmp: pathlib.Path, name: str, peer: str) -> None:
        self.name = name
        self.root = tmp / name
        self.socket = tmp / f"{name}.sock"
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.config = tmp / f"{name}.toml"
        self.config.write_text(
            f'host_name = "{name}"\n'
            f'host_root = "{self.root}"\n'
            'log_level = "info"\n'
            "[replication]\n"
            f'listen = "127.0.0.1:{self.port}"\n'
            f'hosts = {{ "{peer}" = "127.0.0.1" }}\n'
            "cycle_interval_override_s = 0\n"
            "[management]\n"
            f'socket = "{self.socket}"\n'
        )
        self.proc: Optional[subprocess.Popen] = None

    @property
    def uri(self) -> str:
        return f"unix:{self.socket}"

    def start(self) -> None:
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([VMREPLD, "--config", str(self.config), "--foreground"],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"vmrepld {self.name} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if self.socket.exists():
                try:
                    with vmrepl.open(self.uri) as svc:
                        if svc.info().ListenPort == self.port:
                            return
                except vmrepl.Error:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"vmrepld {self.name} did not answer on {self.socket}:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"vmrepld {self.name} ignored SIGTERM:\n{self.log.read_text()}")
        assert self.proc.returncode == 0, f"vmrepld {self.name} exit {self.proc.returncode}:\n{self.log.read_text()}"

    @contextlib.contextmanager
    def client(self) -> Iterator[vmrepl.Service]:
        with vmrepl.open(self.uri) as svc:
            yield svc


class Site:
    """Both daemons, the inventory, and ansible-playbook runs against them."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp
        self.d = {"hv-a": Daemon(tmp, "hv-a", "hv-b"), "hv-b": Daemon(tmp, "hv-b", "hv-a")}
        self.inventory = tmp / "inventory.yml"
        self.runbooks = tmp / "runbooks"
        inv = yaml.safe_load((EXAMPLES / "inventory.yml").read_text())
        groups = inv["all"]["children"]["vmrepl_hosts"]
        for site in groups["children"].values():
            for host, hostvars in site["hosts"].items():
                hostvars["vmrepl_uri"] = self.d[host].uri
                hostvars["vmrepl_replica_storage"] = str(tmp / f"replicas-on-{host}")
        groups["vars"]["vmrepl_runbook_dir"] = str(self.runbooks)
        groups["vars"]["vmrepl_timeout"] = 300
        self.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
        self.env = ansible_env(
            ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
            ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
            ANSIBLE_HOME=str(tmp / "ansible-home"),
            VMREPL_LIBRARY=os.environ["VMREPL_LIBRARY"],
        )

    def start(self) -> None:
        for d in self.d.values():
            d.start()

    def stop(self) -> None:
        for d in self.d.values():
            d.stop()

    def playbook(self, name: str, *args: str) -> subprocess.CompletedProcess:
        """ansible-playbook -i <inventory> examples/ansible/<name> args...; also saved as a log."""
        cmd = ["ansible-playbook", "-i", str(self.inventory), *args,
               str(name if os.path.isabs(name) else EXAMPLES / name)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=900)
        with open(self.tmp / "ansible.log", "a") as log:
            log.write(f"$ {' '.join(cmd)}\n{p.stdout}\n{p.stderr}\nexit {p.returncode}\n\n")
        return p

    def recap(self, p: subprocess.CompletedProcess) -> Dict[str, Dict[str, int]]:
        found = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
                 for m in RECAP.finditer(p.stdout)}
        assert found, f"no PLAY RECAP in:\n{p.stdout}\n{p.stderr}"
        return found

    def ok(self, name: str, *args: str) -> Dict[str, Dict[str, int]]:
        p = self.playbook(name, *args)
        assert p.returncode == 0, f"{name} {args} exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        recap = self.recap(p)
        for host, counts in recap.items():
            assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts, p.stdout)
        return recap

    def modes(self, vm: str) -> Dict[str, tuple]:
        out = {}
        for host, d in self.d.items():
            with d.client() as svc:
                s = svc.get_system(vm)
                out[host] = (int(s.ReplicationMode), int(s.ReplicationState))
        return out

    def disks(self, vm: str) -> Dict[str, bytes]:
        """Each host's copy of the VM's disk: the primary's own disk, the replica's replicated image."""
        out = {}
        for host, d in self.d.items():
            with d.client() as svc:
                s = svc.get_system(vm)
                if int(s.ReplicationMode) == 2:
                    out[host] = read(s.Folder + "/replica/disk0.img")
                else:
                    out[host] = read(svc.disk_path(vm, 0))
        return out

    def jobs(self) -> Dict[str, int]:
        out = {}
        for host, d in self.d.items():
            with d.client() as svc:
                out[host] = len(svc.list_jobs())
        return out


@pytest.fixture
def site(tmp_path: pathlib.Path, library: str) -> Iterator[Site]:
    s = Site(tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def changed(recap: Dict[str, Dict[str, int]]) -> int:
    return sum(c["changed"] for c in recap.values())


def define(site: Site, vm: str, mib: int, seed: int) -> None:
    with site.d["hv-a"].client() as a:
        v = a.define_system(name=vm, disks=[mib * MiB])
        gen("mixed", a.disk_path(v), mib, seed)


# ---- planned: failover, reverse, failback -------------------------------------------------------


def test_planned_runbook(site: Site) -> None:
    define(site, "web01", 16, 1)

    recap = site.ok("planned.yml")
    assert set(recap) == set(HOSTS) and changed(recap) > 0
    assert site.modes("web01") == {"hv-a": (1, 3), "hv-b": (2, 3)}
    disks = site.disks("web01")
    assert disks["hv-a"] == disks["hv-b"]
    assert sorted(p.name for p in site.runbooks.iterdir()) == ["planned-web01.failback", "planned-web01.failover"]

    # A second run changes nothing.
    recap = site.ok("planned.yml")
    assert {h: c["changed"] for h, c in recap.items()} == {"hv-a": 0, "hv-b": 0}, recap

    # Check mode, for a new drill: it reports the steps it would take and changes nothing.
    jobs = site.jobs()
    recap = site.ok("planned.yml", "--check", "-e", "vmrepl_drill_id=drill-2")
    assert changed(recap) > 0
    assert site.modes("web01") == {"hv-a": (1, 3), "hv-b": (2, 3)}
    assert site.disks("web01") == disks
    assert site.jobs() == jobs  # no job started
    assert not list(site.runbooks.glob("drill-2.*"))


def test_wrong_state_fails_the_task_with_the_state_and_32775(site: Site) -> None:
    define(site, "err01", 8, 2)
    site.ok("replication.yml", "-e", "vmrepl_vm=err01")
    play = site.tmp / "wrong.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Commit a failover that never happened",
        "hosts": "hv-b",
        "gather_facts": False,
        "tasks": [{
            "name": "Commit err01 on hv-b (a replica in state 3)",
            "vmrepl.replication.vmrepl_failover": {"uri": "{{ vmrepl_uri }}", "vm": "err01", "action": "commit"},
        }],
    }], sort_keys=False))
    p = site.playbook(str(play))
    assert p.returncode == 2, p.stdout + p.stderr
    assert site.recap(p)["hv-b"]["failed"] == 1
    # The default callback prints the failed result as one JSON object.
    line = next(x for x in p.stdout.splitlines() if x.startswith("fatal: [hv-b]: FAILED! => "))
    result = json.loads(line.split(" => ", 1)[1])
    assert result["changed"] is False
    assert "ReplicationState 3" in result["msg"] and "32775" in result["msg"], result["msg"]
    assert result["code"] == 32775 and result["rc"] == 32775 and result["status_name"] == "InvalidState"
    assert "ReplicationState 3" in result["error_description"]
    assert site.modes("err01") == {"hv-a": (1, 3), "hv-b": (2, 3)}


# ---- unplanned: failover with the primary down, then reverse + resync ------------------------------


def test_unplanned_runbook(site: Site) -> None:
    define(site, "db01", 16, 3)
    site.ok("replication.yml", "-e", "vmrepl_vm=db01")
    with site.d["hv-a"].client() as a:
        path = a.disk_path("db01")
        gen("modify", path, 1, 31)
        a.replicate_now("db01").wait(timeout=60)
        a.request_state_change("db01", vmrepl.EnabledState.Running)
        gen("modify", path, 1, 32)  # never replicated: lost with hv-a
    lost = read(path)

    # hv-a is lost: the failover part runs on hv-b alone.
    site.d["hv-a"].stop()
    recap = site.ok("unplanned.yml", "-e", "vmrepl_vm=db01", "--limit", "hv-b")
    assert set(recap) == {"hv-b"} and recap["hv-b"]["changed"] > 0
    with site.d["hv-b"].client() as b:
        s = b.get_system("db01")
        assert (int(s.ReplicationMode), int(s.ReplicationState), int(s.EnabledState)) == (2, 6, 2)
        assert read(b.disk_path("db01")) != lost
        gen("modify", b.disk_path("db01"), 1, 33)  # the new primary's workload

    # hv-a is back: made a replica, reversed onto, resynchronized.
    site.d["hv-a"].start()
    recap = site.ok("unplanned.yml", "-e", "vmrepl_vm=db01")
    assert recap["hv-a"]["changed"] > 0 and recap["hv-b"]["changed"] > 0
    assert site.modes("db01") == {"hv-a": (2, 3), "hv-b": (1, 3)}
    disks = site.disks("db01")
    assert disks["hv-a"] == disks["hv-b"] != lost

    recap = site.ok("unplanned.yml", "-e", "vmrepl_vm=db01")
    assert {h: c["changed"] for h, c in recap.items()} == {"hv-a": 0, "hv-b": 0}, recap
    jobs = site.jobs()
    recap = site.ok("unplanned.yml", "-e", "vmrepl_vm=db01", "--check")
    assert changed(recap) == 0
    assert site.modes("db01") == {"hv-a": (2, 3), "hv-b": (1, 3)}
    assert site.disks("db01") == disks and site.jobs() == jobs


def test_check_mode_of_replication_not_set_up_changes_nothing(site: Site) -> None:
    define(site, "chk01", 8, 4)
    jobs = site.jobs()
    recap = site.ok("replication.yml", "--check", "-e", "vmrepl_vm=chk01")
    assert recap["hv-a"]["changed"] == 2 and recap["hv-b"]["changed"] == 1  # servers, relationship
    for d in site.d.values():
        with d.client() as svc:
            assert not svc.list_authorization_entries()
            assert svc.get_service_settings().RecoveryServerEnabled is False
    with site.d["hv-a"].client() as a:
        assert int(a.get_system("chk01").ReplicationMode) == 0
    assert site.jobs() == jobs
