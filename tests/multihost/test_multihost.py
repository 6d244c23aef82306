"""Two vmrepld daemons, hv-a and hv-b, driven by vmreplctl only (ctest: multihost.vmrepld).

Hosts. When the test runs as root and ``ip netns add`` works, each daemon runs in its own
network namespace (``ip netns exec NS vmrepld ...``): the namespaces are joined by a veth pair
with its own addresses, 10.231.X.1/24 (hv-a) and 10.231.X.2/24 (hv-b), X random, and each
daemon's ``hosts`` table maps the other host name to the other's veth address; both listen on
port 6600 with their certificate listeners (tools/mkcerts.sh certificates; relationships and
reverses use AuthenticationType 2, since plaintext replication stays on loopback). Their admin sockets are files under the test's tmp_path, reachable from the test's
own namespace. Otherwise (not root, no ``ip netns``, or VMREPL_MULTIHOST_NETNS=0) both run on
127.0.0.1 with distinct ports, and only the network-cut test is skipped. The namespaces are
removed by the fixture's finalizer whatever the outcome.

Tests:
  * the planned runbook (examples/cli/planned.sh), hv-a -> hv-b and back, with writes on hv-b;
  * the unplanned runbook (examples/cli/unplanned.sh): hv-a's daemon is killed, hv-b fails over
    and commits, hv-a comes back and is made the replica of hv-b;
  * a network cut (netns link down) during a cycle: the job ends in Exception 32777, and the
    next cycle succeeds once the link is back;
  * kill -9 of the replica's daemon during a cycle, and of the old primary's daemon during a
    reverse, each followed by a restart on the same config;
  * load: 50 VMs of 1 MiB replicating hv-a -> hv-b, with writes between cycles: no failed cycle,
    bounded RSS, fds not growing. The suite runs the 1-minute version, where
    cycle_interval_override_s = 5 stands in for the 30 s ReplicationInterval the VMs are enabled
    with. With VMREPL_SOAK=1 it is the 5-minute soak, on the real 30 s interval (no override).

Run: ``ctest --test-dir BUILD -L multihost --output-on-failure`` (as root for the namespaces), or
``VMREPLD=BUILD/tools/vmrepld/vmrepld VMREPLCTL=BUILD/tools/vmreplctl/vmreplctl /usr/bin/python3 -m
pytest -q tests/multihost``. The soak: ``VMREPL_SOAK=1 ctest --test-dir BUILD -L multihost`` (about 8
minutes in all, within the test's 900 s TIMEOUT).

Disk contents are bench/gen_image.py images; bytes are compared on disk: a VM's own disk is
``DiskPaths[0]`` of ``vmreplctl --json vm show``; the data a replica VM has received is
``<Folder>/replica/disk0.img``. Transfers that must be interrupted are slowed down with
``vmreplctl limit`` (a relationship's or the service's bandwidth limit).
"""

from __future__ import annotations

import ctypes
import filecmp
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

VMREPLD = os.environ.get("VMREPLD", "")
VMREPLCTL = os.environ.get("VMREPLCTL", "")
REPO = Path(__file__).resolve().parents[2]
GEN_IMAGE = REPO / "bench" / "gen_image.py"
PLANNED = REPO / "examples" / "cli" / "planned.sh"
UNPLANNED = REPO / "examples" / "cli" / "unplanned.sh"
SOAK = os.environ.get("VMREPL_SOAK", "") not in ("", "0")
MiB = 1 << 20

pytestmark = pytest.mark.skipif(not (VMREPLD and VMREPLCTL),
                                reason="VMREPLD and VMREPLCTL are not set (run through ctest)")

# JobState
COMPLETED, EXCEPTION = 7, 10
# (ReplicationMode, ReplicationState)
PRIMARY_REPLICATING, REPLICA_REPLICATING = (1, 3), (2, 3)


def gen(*args: Any) -> None:
    """bench/gen_image.py with these arguments (its report line is dropped)."""
    subprocess.run([sys.executable, str(GEN_IMAGE), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def same_file(a: str, b: str) -> bool:
    return filecmp.cmp(a, b, shallow=False)


def thumbprint(certs: Path, name: str) -> str:
    """The SHA-1 thumbprint of a tools/mkcerts.sh certificate."""
    for line in (certs / f"{name}.thumbprint").read_text().splitlines():
        algo, hexdigits = line.split()
        if algo == "sha1":
            return hexdigits
    raise AssertionError(f"no SHA-1 thumbprint for {name} in {certs}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> Dict[str, str]:
    """The environment without VMREPL_* (no default URI or open options leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VMREPL_")}


def poll(cond: Any, timeout: float, step: float = 0.2) -> bool:
    """Whether cond() becomes true within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class Checks:
    """Checks whose failures are reported together at the end of a scenario (so that one
    wrong code does not hide what the rest of the scenario would show)."""

    def __init__(self) -> None:
        self.failed: List[str] = []

    def that(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed.append(message)

    def done(self) -> None:
        assert not self.failed, "\n".join(self.failed)


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ---- hosts: network namespaces or loopback -------------------------------------------------


class Net:
    """Where the two daemons live: two network namespaces joined by a veth pair, or 127.0.0.1."""

    def __init__(self, tag: str) -> None:
        self.netns = False
        self.reason = ""
        self.ns: List[str] = []
        self.ifname = ["vmra", "vmrb"]
        self.addrs = ["127.0.0.1", "127.0.0.1"]
        if os.environ.get("VMREPL_MULTIHOST_NETNS", "1") == "0":
            self.reason = "VMREPL_MULTIHOST_NETNS=0: the daemons run on 127.0.0.1"
        elif os.geteuid() != 0:
            self.reason = "not root: no network namespaces, the daemons run on 127.0.0.1"
        elif not shutil.which("ip"):
            self.reason = "no ip(8): no network namespaces, the daemons run on 127.0.0.1"
        else:
            try:
                self._setup(tag)
                self.netns = True
            except (subprocess.CalledProcessError, OSError) as e:
                err = getattr(e, "stderr", "") or str(e)
                self.close()
                self.addrs = ["127.0.0.1", "127.0.0.1"]
                self.reason = f"ip netns does not work here ({err.strip()}): the daemons run on 127.0.0.1"

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)

    @staticmethod
    def remove_stale() -> None:
        """Namespaces left by a run that was killed (its pid is gone): removed."""
        p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():
            m = re.match(r"(vmrmh-(\d+)-\d+-[ab])\b", line)
            if m and not os.path.exists(f"/proc/{m.group(2)}"):
                subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True, timeout=30)

    def _setup(self, tag: str) -> None:
        self.remove_stale()
        x = random.randint(1, 254)
        names = [f"vmrmh-{tag}-a", f"vmrmh-{tag}-b"]
        for ns in names:
            self._ip("netns", "add", ns)
            self.ns.append(ns)
        (a, b), (ia, ib) = names, self.ifname
        self._ip("-n", a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", b)
        self.addrs = [f"10.231.{x}.1", f"10.231.{x}.2"]
        for ns, ifname, addr in zip(names, self.ifname, self.addrs):
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            self._ip("-n", ns, "link", "set", ifname, "up")
        subprocess.run(["ip", "netns", "exec", a, "true"], check=True, capture_output=True, text=True, timeout=30)

    def prefix(self, i: int) -> List[str]:
        """The command prefix that runs a program in host i's namespace."""
        return ["ip", "netns", "exec", self.ns[i]] if self.netns else []

    def link(self, i: int, up: bool) -> None:
        """Host i's end of the veth pair up or down."""
        self._ip("-n", self.ns[i], "link", "set", self.ifname[i], "up" if up else "down")

    def close(self) -> None:
        for ns in self.ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.ns = []


# ---- daemons and vmreplctl -----------------------------------------------------------------


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the daemon's child before exec: SIGKILL when the test process dies (a killed test
    leaves no daemon behind). It survives the exec of ip netns exec and of vmrepld."""
    _LIBC.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


class CtlError(AssertionError):
    pass


class Result:
    def __init__(self, p: subprocess.CompletedProcess) -> None:
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr
        try:
            self.doc: Any = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            self.doc = None


class Daemon:
    """One vmrepld: its config, host root, admin socket and log under tmp."""

    def __init__(self, tmp: Path, name: str, peer: str, net: Net, index: int, port: int,
                 io_timeout_ms: int, cycle_override_s: int, job_retention_s: int, certs: Optional[Path]) -> None:
        self.name, self.net, self.index, self.port = name, net, index, port
        self.root = tmp / name
        self.sock = tmp / f"{name}.sock"
        self.config = tmp / f"{name}.toml"
        self.logpath = tmp / f"{name}.log"
        # Between namespaces replication is certificate-authenticated TLS (plaintext stays on
        # loopback); on 127.0.0.1 it is plaintext.
        self.thumbprint = thumbprint(certs, name) if certs else ""
        listener = f'tls_listen = "{net.addrs[index]}:{port}"' if certs else f'listen = "{net.addrs[index]}:{port}"'
        tls = (f'[tls]\ncertificate = "{certs}/{name}.pem"\nkey = "{certs}/{name}.key"\nca = "{certs}/ca.pem"\n'
               if certs else "")
        self.config.write_text(
            f'host_name = "{name}"\nhost_root = "{self.root}"\nlog_level = "info"\n'
            f"[replication]\n"
            f"{listener}\n"
            f'hosts = {{ "{peer}" = "{net.addrs[1 - index]}" }}\n'
            f"connect_timeout_ms = 3000\n"
            f"io_timeout_ms = {io_timeout_ms}\n"
            f"cycle_interval_override_s = {cycle_override_s}\n"
            f"job_retention_s = {job_retention_s}\n"
            f'[management]\nsocket = "{self.sock}"\n'
            f"{tls}"
        )
        self.proc: Optional[subprocess.Popen] = None
        self._log = open(self.logpath, "ab")
        self.start()

    @property
    def uri(self) -> str:
        return f"unix:{self.sock}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def lines(self) -> List[str]:
        return self.logpath.read_text(errors="replace").splitlines()

    def start(self) -> None:
        n = len(self.lines())
        # ip netns exec execs vmrepld: the child's pid is the daemon's.
        self.proc = subprocess.Popen([*self.net.prefix(self.index), VMREPLD, "--config", str(self.config),
                                      "--foreground"], stdout=subprocess.DEVNULL, stderr=self._log,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while not any(x.endswith(" vmrepld: ready") for x in self.lines()[n:]):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name}: vmrepld exited ({self.proc.returncode}):\n{tail(self.logpath)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: vmrepld not ready after 30 s:\n{tail(self.logpath)}")
            time.sleep(0.05)
        assert os.readlink(f"/proc/{self.pid}/exe").endswith("vmrepld")

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self.stop()
        self._log.close()

    # /proc figures of the running daemon
    def rss_kib(self) -> int:
        m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{self.pid}/status").read_text(), re.M)
        assert m
        return int(m.group(1))

    def cert_args(self) -> List[str]:
        """vmreplctl enable/reverse arguments naming this host's certificate, when it has one."""
        return ["--auth-type", "2", "--thumbprint", self.thumbprint] if self.thumbprint else []

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    # vmreplctl
    def run(self, *args: str, timeout: float = 120) -> Result:
        """vmreplctl --json ARGS against this daemon, whatever its exit status (but it must
        return within timeout seconds)."""
        try:
            return Result(subprocess.run([VMREPLCTL, "--uri", self.uri, "--json", "-q", *args], capture_output=True,
                                         text=True, timeout=timeout, env=clean_env()))
        except subprocess.TimeoutExpired:
            raise CtlError(f"{self.name}: vmreplctl {' '.join(args)} did not return within {timeout} s\n"
                           f"{self.name} log:\n{tail(self.logpath)}") from None

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([VMREPLCTL, "--uri", self.uri, "--json", "-q", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=clean_env())

    def ctl(self, *args: str, timeout: float = 120) -> Any:
        """vmreplctl --json ARGS, which must exit 0: its JSON document."""
        r = self.run(*args, timeout=timeout)
        if r.rc != 0:
            raise CtlError(f"{self.name}: vmreplctl {' '.join(args)} exited {r.rc}\nstdout: {r.out}\nstderr: {r.err}"
                           f"\n{self.name} log:\n{tail(self.logpath)}")
        return r.doc

    def vm(self, vm: str) -> Dict[str, Any]:
        return self.ctl("vm", "show", vm)

    def modes(self, vm: str) -> Tuple[int, int]:
        s = self.ctl("status", vm)
        return s["ReplicationMode"], s["ReplicationState"]

    def disk(self, vm: str) -> str:
        """The VM's own disk 0."""
        return self.vm(vm)["DiskPaths"][0]

    def replica_image(self, vm: str) -> str:
        """What this host, the VM's replica, has received of disk 0."""
        return self.vm(vm)["Folder"] + "/replica/disk0.img"

    def job_ids(self) -> set:
        return {j["InstanceID"] for j in self.ctl("jobs")}

    def wait_sending(self, before: set, seconds: float = 1.5, timeout: float = 60) -> Dict[str, Any]:
        """The job that is not in `before`, once it has been sending (Phase "sending ...") for
        `seconds`: a transfer under a bandwidth limit, well under way and far from its end."""
        deadline = time.monotonic() + timeout
        since: Optional[float] = None
        while True:
            for j in self.ctl("jobs"):
                if j["InstanceID"] in before:
                    continue
                if j.get("JobState", 0) >= 7:
                    raise AssertionError(f"{self.name}: the job ended before it could be interrupted: {j}")
                if j.get("JobState") == 4 and str(j.get("Phase", "")).startswith("sending"):
                    since = since or time.monotonic()
                    if time.monotonic() - since >= seconds:
                        return j
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no job sending after {timeout} s: {self.ctl('jobs')}")
            time.sleep(0.05)


class Cluster:
    """hv-a and hv-b, each a recovery server admitting the other (a reverse makes the old
    primary a replica)."""

    def __init__(self, tmp: Path, net: Net, io_timeout_ms: int, cycle_override_s: int, job_retention_s: int) -> None:
        self.tmp, self.net = tmp, net
        ports = (6600, 6600) if net.netns else (free_port(), free_port())
        certs: Optional[Path] = None
        if net.netns:
            certs = tmp / "certs"
            subprocess.run(["sh", str(REPO / "tools" / "mkcerts.sh"), str(certs), "hv-a", "hv-b"], check=True,
                           capture_output=True, timeout=120)
        args = (io_timeout_ms, cycle_override_s, job_retention_s, certs)
        self.a = Daemon(tmp, "hv-a", "hv-b", net, 0, ports[0], *args)
        self.b = Daemon(tmp, "hv-b", "hv-a", net, 1, ports[1], *args)
        for d, peer in ((self.a, "hv-b"), (self.b, "hv-a")):
            if certs:  # certificate authentication only, answered with this host's certificate
                d.ctl("server", "enable", "--auth", "2", "--thumbprint", d.thumbprint)
            else:
                d.ctl("server", "enable")
            d.ctl("auth", "add", peer, "--location", str(tmp / f"{d.name}-replicas"))
        info = self.b.ctl("server", "show")
        assert info["HostName"] == "hv-b", info
        if certs:
            assert (info["TlsListenPort"], info["ListenPort"]) == (ports[1], 0), info
            assert info["HostCertificateThumbPrint"] == self.b.thumbprint, info
        else:
            assert info["ListenPort"] == ports[1], info

    def close(self) -> None:
        for d in (self.a, self.b):
            d.close()

    def replicated(self, name: str, mib: int, seed: int, *extra: str) -> str:
        """A VM on hv-a holding a mixed image, replicating to hv-b (initial replication done)."""
        a = self.a
        a.ctl("vm", "create", name, "--disk", f"{mib}M")
        gen("mixed", a.disk(name), mib, seed)
        a.ctl("enable", name, "--recovery-server", "hv-b", "--port", str(self.b.port), *a.cert_args(), *extra)
        a.ctl("start", name)
        assert a.modes(name) == PRIMARY_REPLICATING
        assert self.b.modes(name) == REPLICA_REPLICATING
        assert same_file(self.b.replica_image(name), a.disk(name))
        return name

    def script(self, path: Path, vm: str, phase: str, **extra: str) -> subprocess.CompletedProcess:
        env = clean_env()
        env.update(VMREPLCTL=VMREPLCTL, URI_A=self.a.uri, URI_B=self.b.uri, HOST_A="hv-a", HOST_B="hv-b",
                   PORT_A=str(self.a.port), PORT_B=str(self.b.port), VM=vm, PHASE=phase)
        if self.a.thumbprint:
            env.update(THUMB_A=self.a.thumbprint, THUMB_B=self.b.thumbprint)
        env.update(extra)
        return subprocess.run(["bash", str(path)], capture_output=True, text=True, env=env, timeout=600)

    def run_script(self, path: Path, vm: str, phase: str, **extra: str) -> str:
        p = self.script(path, vm, phase, **extra)
        assert p.returncode == 0, (f"{path.name} PHASE={phase} exited {p.returncode}\nstdout:\n{p.stdout}\n"
                                   f"stderr:\n{p.stderr}\nhv-a:\n{tail(self.a.logpath)}\nhv-b:\n{tail(self.b.logpath)}")
        return p.stdout


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net(f"{os.getpid()}-{random.randint(0, 9999)}")
    try:
        yield n
    finally:
        n.close()


@pytest.fixture
def hosts(tmp_path: Path, net: Net) -> Iterator[Any]:
    """A factory: hosts(io_timeout_ms=..., cycle_override_s=..., job_retention_s=...) -> Cluster.
    The daemons are stopped before the namespaces go; their logs' tails are printed (pytest
    shows them when the test fails)."""
    made: List[Cluster] = []

    def make(io_timeout_ms: int = 15000, cycle_override_s: int = 0, job_retention_s: int = 300) -> Cluster:
        c = Cluster(tmp_path, net, io_timeout_ms, cycle_override_s, job_retention_s)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()
            print(f"---- {net.reason or 'network namespaces ' + ', '.join(net.ns)}")
            for d in (c.a, c.b):
                print(f"---- {d.name} log (tail)\n{tail(d.logpath, 60)}")


# ---- the runbooks --------------------------------------------------------------------------


def test_planned_runbook_over_and_back(hosts) -> None:
    c = hosts()
    a, b = c.a, c.b
    vm = c.replicated("web01", 16, 11, "--history", "2")
    gen("modify", a.disk(vm), 2, 12)
    a.ctl("replicate", vm)
    a.ctl("vm", "start", vm)  # the VM runs on hv-a: the runbook turns it off first

    out = c.run_script(PLANNED, vm, "over")
    assert "==> step" in out and "failover web01 --prepare" in out and "reverse web01 --recovery-server hv-a" in out
    assert b.modes(vm) == PRIMARY_REPLICATING and a.modes(vm) == REPLICA_REPLICATING
    sb = b.ctl("status", vm)
    assert sb["EnabledState"] == 2  # started by the runbook
    assert a.ctl("status", vm)["EnabledState"] == 3
    # Planned: nothing lost; hv-a's disk became the replica of hv-b's.
    assert same_file(b.disk(vm), a.replica_image(vm))

    # The VM works on hv-b; a cycle hv-b -> hv-a, then more writes that only the prepare sends.
    gen("modify", b.disk(vm), 2, 13)
    r = b.ctl("replicate", vm)
    assert r["JobState"] == COMPLETED and r["BlocksSent"] > 0
    assert same_file(b.disk(vm), a.replica_image(vm))
    gen("modify", b.disk(vm), 1, 14)
    last = c.tmp / "web01-on-hv-b.img"
    shutil.copyfile(b.disk(vm), last)

    out = c.run_script(PLANNED, vm, "back")
    assert "### failback of web01: hv-b -> hv-a" in out
    assert a.modes(vm) == PRIMARY_REPLICATING and b.modes(vm) == REPLICA_REPLICATING
    assert a.ctl("status", vm)["EnabledState"] == 2 and b.ctl("status", vm)["EnabledState"] == 3
    # hv-a runs what hv-b had last (planned: nothing lost), and hv-b holds the replica of it.
    assert same_file(a.disk(vm), str(last))
    assert same_file(a.disk(vm), b.replica_image(vm))
    # Replication goes on hv-a -> hv-b.
    gen("modify", a.disk(vm), 1, 15)
    a.ctl("replicate", vm)
    assert same_file(a.disk(vm), b.replica_image(vm))


def test_planned_runbook_end_to_end_and_failure_exit(hosts) -> None:
    c = hosts()
    vm = c.replicated("app01", 8, 21)
    out = c.run_script(PLANNED, vm, "all")
    assert out.count("==> step") == 12 and "### done" in out
    assert c.a.modes(vm) == PRIMARY_REPLICATING and c.b.modes(vm) == REPLICA_REPLICATING
    assert same_file(c.a.disk(vm), c.b.replica_image(vm))
    # Any failure stops the runbook with a non-zero status: a VM that does not exist, and a VM
    # that is not where the runbook expects it (hv-b is the replica: "back" refuses).
    p = c.script(PLANNED, "ghost", "over")
    assert p.returncode != 0 and "FileNotFound" in p.stderr, (p.stdout, p.stderr)
    p = c.script(PLANNED, vm, "back")
    assert p.returncode != 0 and "expected 1, 3" in p.stderr, (p.stdout, p.stderr)
    assert c.a.modes(vm) == PRIMARY_REPLICATING and c.b.modes(vm) == REPLICA_REPLICATING  # nothing moved


def test_unplanned_runbook(hosts) -> None:
    c = hosts()
    a, b = c.a, c.b
    vm = c.replicated("db01", 16, 31, "--history", "3")
    for seed in (32, 33):
        gen("modify", a.disk(vm), 1, seed)
        a.ctl("replicate", vm)
    last_cycle = c.tmp / "db01-last-cycle.img"
    shutil.copyfile(a.disk(vm), last_cycle)
    a_disk = a.disk(vm)
    a.ctl("vm", "start", vm)
    gen("modify", a_disk, 1, 34)  # never replicated: lost with hv-a

    a.kill9()  # hv-a is lost
    out = c.run_script(UNPLANNED, vm, "failover", URI_A="unix:/nonexistent")
    assert "InitiateFailover" in out and "CommitFailover" in out
    assert b.modes(vm) == (2, 6)
    sb = b.ctl("status", vm)
    assert sb["EnabledState"] == 2 and sb["FailedOverReplicationType"] != 3
    # hv-b runs the latest point: the last cycle's content.
    assert same_file(b.disk(vm), str(last_cycle))
    assert len(b.ctl("points", vm)) == 1
    gen("modify", b.disk(vm), 2, 35)  # the new primary's writes

    a.start()  # hv-a is back, with its stale VM
    assert a.modes(vm)[0] == 1
    out = c.run_script(UNPLANNED, vm, "reverse")
    assert "make-replica" in out and "--verify full" in out
    assert b.modes(vm) == PRIMARY_REPLICATING and a.modes(vm) == REPLICA_REPLICATING
    assert a.ctl("status", vm)["EnabledState"] == 3
    # hv-a holds hv-b's disk: its own lost writes are undone.
    assert same_file(a.replica_image(vm), b.disk(vm))
    # And replication goes on hv-b -> hv-a.
    gen("modify", b.disk(vm), 1, 36)
    assert b.ctl("replicate", vm)["BlocksSent"] > 0
    assert same_file(a.replica_image(vm), b.disk(vm))


# ---- faults --------------------------------------------------------------------------------


def test_network_cut_during_a_cycle_fails_with_32777_then_the_next_cycle_succeeds(hosts, net: Net) -> None:
    if not net.netns:
        pytest.skip(f"the link cut needs network namespaces: {net.reason}")
    c = hosts(io_timeout_ms=3000)
    a, b = c.a, c.b
    vm = c.replicated("net01", 256, 41)
    before = c.tmp / "net01-before.img"
    shutil.copyfile(b.replica_image(vm), before)
    gen("modify", a.disk(vm), 20, 42)
    a.ctl("limit", vm, "--set", "8M")  # ~100 MB to send: about 12 s, cut 1.5 s into it
    jobs_before = a.job_ids()
    p = a.popen("replicate", vm)
    try:
        job = a.wait_sending(jobs_before)
        net.link(0, up=False)
        t_cut = time.monotonic()
        out, err = p.communicate(timeout=120)
        took = time.monotonic() - t_cut
    finally:
        if p.poll() is None:
            p.kill()
        net.link(0, up=True)
    # The failed cycle: vmreplctl exits 1 with the job's error, the job stays queryable. Every
    # check is made (and the rest of the scenario run) before the failures are reported.
    checks = Checks()
    assert p.returncode == 1, (out, err)
    doc = json.loads(out)
    assert doc["JobState"] == EXCEPTION, doc
    checks.that(doc["error"]["code"] == 32777 and err.startswith("error 32777 SystemNotAvailable: "),
                f"a network cut must fail the cycle with 32777 SystemNotAvailable; vmreplctl said: {err.strip()}")
    assert took < 30, f"the cycle took {took:.1f} s to fail after the cut (io_timeout_ms 3000)"
    shown = a.ctl("job", "show", job["InstanceID"])
    assert shown["JobState"] == EXCEPTION, shown
    checks.that(shown["ErrorCode"] == 32777, f"job show: ErrorCode {shown['ErrorCode']}, expected 32777")
    stats = a.ctl("stats", vm)
    checks.that(stats["ReplicationFailureCount"] >= 1 and stats["NetworkFailureCount"] >= 1,
                "the failed cycle is not counted: ReplicationFailureCount "
                f"{stats['ReplicationFailureCount']}, NetworkFailureCount {stats['NetworkFailureCount']}")
    # hv-b gave the cycle up too: its replica is the last committed point.
    checks.that(poll(lambda: same_file(b.replica_image(vm), str(before)), 15),
                "hv-b's replica image is not the point before the interrupted cycle")

    # The link is back: the next cycle succeeds and the replica matches.
    a.ctl("limit", vm, "--set", "0")
    r = a.ctl("replicate", vm)
    assert r["JobState"] == COMPLETED and r["BlocksSent"] > 0
    assert a.modes(vm) == PRIMARY_REPLICATING and b.modes(vm) == REPLICA_REPLICATING
    assert same_file(b.replica_image(vm), a.disk(vm))
    checks.done()


def test_kill_9_of_the_replica_daemon_during_a_cycle(hosts) -> None:
    c = hosts(io_timeout_ms=3000)
    a, b = c.a, c.b
    vm = c.replicated("crash01", 64, 51, "--history", "2")
    committed = c.tmp / "crash01-committed.img"
    shutil.copyfile(a.disk(vm), committed)
    gen("modify", a.disk(vm), 20, 52)
    a.ctl("limit", vm, "--set", "2M")  # ~25 MB to send: about 12 s, killed 1.5 s into it
    jobs_before = a.job_ids()
    p = a.popen("replicate", vm)
    try:
        a.wait_sending(jobs_before)
        b.kill9()
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, (out, err)
    doc = json.loads(out)
    assert doc["JobState"] == EXCEPTION and doc["error"]["code"] == 32777, doc

    # hv-b restarts on the same config: its replica is a committed point, the one before the
    # interrupted cycle (that cycle never completed on the primary).
    b.start()
    assert b.modes(vm) == REPLICA_REPLICATING
    assert same_file(b.replica_image(vm), str(committed))
    # Replication resumes: the next cycle brings the replica to the primary's disk.
    a.ctl("limit", vm, "--set", "0")
    r = a.ctl("replicate", vm)
    assert r["JobState"] == COMPLETED and r["BlocksSent"] > 0
    assert same_file(b.replica_image(vm), a.disk(vm))
    gen("modify", a.disk(vm), 2, 53)
    a.ctl("replicate", vm)
    assert same_file(b.replica_image(vm), a.disk(vm))
    assert a.modes(vm) == PRIMARY_REPLICATING and b.modes(vm) == REPLICA_REPLICATING


def _settle(d: Daemon, vm: str, want: Tuple[int, int], timeout: float = 20) -> Tuple[int, int]:
    """The VM's (mode, state) on d once it is `want`, or whatever it is after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = d.modes(vm)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_kill_9_of_the_old_primary_daemon_during_a_reverse(hosts) -> None:
    c = hosts(io_timeout_ms=3000)
    a, b = c.a, c.b
    vm = c.replicated("rev01", 64, 61)
    # Planned failover hv-a -> hv-b, then hv-b's writes: what the reverse sends back.
    a.ctl("failover", vm, "--prepare")
    b.ctl("failover", vm)
    assert a.modes(vm) == (1, 4) and b.modes(vm) == (2, 5)
    gen("modify", b.disk(vm), 20, 62)
    a_before, b_before = c.tmp / "rev01-a.img", c.tmp / "rev01-b.img"
    shutil.copyfile(a.disk(vm), a_before)
    shutil.copyfile(b.disk(vm), b_before)

    b.ctl("limit", "--set", "2M")  # hv-b's service-wide limit: the reverse takes about 12 s
    jobs_before = b.job_ids()
    p = b.popen("reverse", vm, "--recovery-server", "hv-a", "--port", str(a.port), *b.cert_args())
    try:
        job = b.wait_sending(jobs_before)
        a.kill9()
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, (out, err)
    doc = json.loads(out)
    assert doc["JobState"] == EXCEPTION and doc["error"]["code"] in (32777, 32768), doc
    shown = b.ctl("job", "show", job["InstanceID"])
    assert shown["JobState"] == EXCEPTION, shown
    # The new primary is as before: failed over, its disk untouched.
    assert b.modes(vm) == (2, 5)
    assert same_file(b.disk(vm), str(b_before))

    # hv-a restarts: still the prepared primary, its disk exactly as before the reverse.
    a.start()
    assert _settle(a, vm, (1, 4)) == (1, 4)
    assert same_file(a.disk(vm), str(a_before))
    # A retried reverse succeeds.
    b.ctl("limit", "--set", "0")
    r = b.ctl("reverse", vm, "--recovery-server", "hv-a", "--port", str(a.port), *b.cert_args())
    assert r["JobState"] == COMPLETED and r["BlocksSent"] > 0
    assert b.modes(vm) == PRIMARY_REPLICATING and a.modes(vm) == REPLICA_REPLICATING
    assert same_file(a.replica_image(vm), b.disk(vm))
    assert same_file(b.disk(vm), str(b_before))


# ---- load ----------------------------------------------------------------------------------


def test_load_50_vms(hosts) -> None:
    """50 VMs of 1 MiB (sparse) replicating hv-a -> hv-b with writes between cycles.

    Default: 60 s with cycle_interval_override_s = 5 standing in for the 30 s interval the VMs
    are enabled with. VMREPL_SOAK=1: 300 s on the real 30 s interval. Asserts: no failed cycle
    on any VM (statistics and health), each VM replicated several times, vmrepld's RSS below
    300 MiB and not growing more than 20% from the first third of the run to its end, its open
    fds not growing (the floor of the count, sampled every second: cycles in flight add some),
    and every replica equal to its primary at the end."""
    duration = 300.0 if SOAK else 60.0
    interval = 30 if SOAK else 5
    # Finished jobs are dropped after 10 s (default 300 s), so that the job table reaches its
    # steady size early in the run and what grows after that is the daemon's.
    c = hosts(cycle_override_s=0 if SOAK else 5, job_retention_s=10)
    a, b = c.a, c.b
    names = [f"load{i:02d}" for i in range(50)]
    rng = random.Random(71)
    disks: Dict[str, str] = {}

    def write(name: str, r: random.Random) -> None:
        with open(disks[name], "r+b") as f:
            f.seek(r.randrange(0, MiB - 4096) & ~4095)
            f.write(r.randbytes(4096))

    def setup(name: str) -> None:
        disks[name] = a.ctl("vm", "create", name, "--disk", "1M", timeout=60)["DiskPaths"][0]
        write(name, random.Random(name))
        a.ctl("enable", name, "--recovery-server", "hv-b", "--port", str(b.port), "--interval", "30", *a.cert_args(),
              timeout=60)
        a.ctl("start", name, timeout=60)

    t_setup = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # vmreplctl calls, 8 at a time
        list(pool.map(setup, names))
    t_setup = time.monotonic() - t_setup

    def write_some(k: int) -> None:
        for name in rng.sample(names, k):
            write(name, rng)

    samples: Dict[str, List[Tuple[float, int, int]]] = {"hv-a": [], "hv-b": []}
    t0 = time.monotonic()
    next_write = t0
    while (now := time.monotonic()) - t0 < duration:
        for d in (a, b):
            samples[d.name].append((now - t0, d.rss_kib(), d.fds()))
        if now >= next_write:
            write_some(10)
            next_write = now + 2
        time.sleep(1)
    assert a.proc.poll() is None and b.proc.poll() is None

    # Every replica catches up with its primary (the last writes go with the next cycles).
    t_settle = time.monotonic()
    deadline = t_settle + 3 * interval + 30
    while True:
        behind = [n for n in names if not same_file(disks[n], b.replica_image(n))]
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not behind, f"replicas differing from their primary: {behind}"
    t_settle = time.monotonic() - t_settle

    listed = {vm["ElementName"]: vm for vm in a.ctl("vm", "list")}
    bad = {n: (v["ReplicationState"], v["ReplicationHealth"]) for n, v in listed.items()
           if (v["ReplicationState"], v["ReplicationHealth"]) != (3, 1)}
    assert not bad, f"VMs not replicating in health 1 on hv-a: {bad}"
    assert all((v["ReplicationMode"], v["ReplicationState"]) == REPLICA_REPLICATING
               for v in b.ctl("vm", "list")), "hv-b: not every VM is a replicating replica"
    min_cycles = int(duration / interval) // 3
    with ThreadPoolExecutor(8) as pool:
        stats = dict(zip(names, pool.map(lambda n: a.ctl("stats", n), names)))
    for name, s in stats.items():
        assert s["ReplicationFailureCount"] == 0 and s["NetworkFailureCount"] == 0, (name, s)
        assert s["ReplicationSuccessCount"] >= min_cycles, (name, s)

    # Each job that ends is logged; a failed one at warn (Exception, Killed), and nothing else
    # went wrong either: no warn or error line in either daemon's log.
    for d in (a, b):
        bad_lines = [x for x in d.lines() if " warn  " in x or " error " in x]
        assert not bad_lines, f"{d.name}:\n" + "\n".join(bad_lines[:20])
    logged = sum(1 for x in a.lines() if re.search(r' jobs: job "Replication cycle load\d\d" .* Completed in ', x))
    cycles = sum(s["ReplicationSuccessCount"] for s in stats.values())
    report = [f"setup {t_setup:.1f} s, run {duration:.0f} s, replicas equal {t_settle:.1f} s later; "
              f"{cycles} successful cycles (min {min(s['ReplicationSuccessCount'] for s in stats.values())} a VM), "
              f"{logged} cycle jobs logged Completed"]
    for d in (a, b):
        ss = samples[d.name]
        mark = duration / 3
        early = [x for x in ss if mark - 5 <= x[0] <= mark + 5]
        late = [x for x in ss if x[0] >= duration - 10]
        assert early and late
        rss_early, rss_late = max(x[1] for x in early), max(x[1] for x in late)
        rss_max = max(x[1] for x in ss)
        fd_early, fd_late = min(x[2] for x in early), min(x[2] for x in late)
        report.append(f"{d.name}: RSS {rss_early} -> {rss_late} KiB (max {rss_max}), "
                      f"fds floor {fd_early} -> {fd_late} (max {max(x[2] for x in ss)})")
        assert rss_max < 300 * 1024, report[-1]
        assert rss_late <= rss_early * 1.2, report[-1]
        assert fd_late <= fd_early + 2, report[-1]
    print("\n".join(report))
