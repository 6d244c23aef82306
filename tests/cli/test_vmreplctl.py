"""vmreplctl's output and exit codes: tables for people, one JSON document with --json, and
0 ok / 1 job failed / 2 bad usage / 3 refused call.

Each invocation opens its local: host root, runs one command and closes it again, as a
local: root is held exclusively by one process. The two-host tests serve the recovery side
from vmrepl_test_host (tests/service/test_host_main.cpp), a process of its own.

Run by ctest as cli.vmreplctl, which sets VMREPLCTL and VMREPL_TEST_HOST to the binaries of
the build tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
from pathlib import Path
from typing import Iterator, Optional

import pytest

CTL = os.environ.get("VMREPLCTL", "")
TEST_HOST = os.environ.get("VMREPL_TEST_HOST", "")
MAN_PAGE = Path(__file__).resolve().parents[2] / "tools" / "vmreplctl" / "vmreplctl.1"

pytestmark = pytest.mark.skipif(not CTL, reason="VMREPLCTL is not set (run through ctest)")

A_OPTIONS = '{"host_name":"hv-a","listen":"127.0.0.1:0","hosts":{"hv-b":"127.0.0.1"}}'
B_OPTIONS = '{"host_name":"hv-b","listen":"127.0.0.1:0","hosts":{"hv-a":"127.0.0.1"}}'


def run(*args: str, uri: Optional[str] = None, options: Optional[str] = None,
        env_extra: Optional[dict] = None) -> subprocess.CompletedProcess:
    """One vmreplctl invocation; the environment carries no VMREPL_* unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMREPL")}
    env.update(env_extra or {})
    cmd = [CTL]
    if uri is not None:
        cmd += ["--uri", uri]
    if options is not None:
        cmd += ["--open-options", options]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def as_json(p: subprocess.CompletedProcess):
    """stdout must be exactly one JSON document."""
    return json.loads(p.stdout)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return f"local:{tmp_path / 'host'}"


def write_blocks(path: str, blocks: range, seed: int) -> None:
    """Writes 64 KiB of non-zero bytes into each block of `blocks`."""
    with open(path, "r+b") as f:
        for b in blocks:
            f.seek(b * 65536)
            f.write(bytes([(seed + b) % 251 + 1]) * 65536)


@contextlib.contextmanager
def recovery_host(tmp_path: Path, name: str, primary: str) -> Iterator[int]:
    """vmrepl_test_host: a recovery server admitting `primary`, until SIGTERM. Yields its port."""
    if not TEST_HOST:
        pytest.skip("VMREPL_TEST_HOST is not set")
    proc = subprocess.Popen(
        [TEST_HOST, str(tmp_path / name), name, "0", primary, str(tmp_path / f"{name}-replicas")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=20), "vmrepl_test_host did not start"
        line = proc.stdout.readline()
        assert line.startswith("ready "), f"vmrepl_test_host: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield int(line.split()[1])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()


# ---- VMs ------------------------------------------------------------------------------------


def test_vm_create_list_show_in_tables_and_json(root: str) -> None:
    out = ok(run("vm", "create", "web01", "--disk", "64M,32M", uri=root))
    assert re.search(r"^ElementName\s+web01$", out, re.M)
    assert re.search(r"^DiskSizes\s+64\.0 MiB, 32\.0 MiB$", out, re.M)
    ok(run("vm", "create", "db01", "--disk", "1G", "--disk", "512KiB", uri=root))

    table = ok(run("vm", "list", uri=root)).splitlines()
    header = table[0].split()
    assert header == ["NAME", "GUID", "POWER", "MODE", "STATE", "HEALTH", "DISKS"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"web01", "db01"}
    # Columns are aligned: every row starts its GUID where the header's GUID starts.
    col = table[0].index("GUID")
    assert all(re.fullmatch(r"[0-9A-F-]{36}", line[col:col + 36]) for line in table[1:])
    assert "3 Off" in rows["web01"] and "0 None" in rows["web01"] and "0 Disabled" in rows["web01"]
    assert "0 NotApplicable" in rows["web01"]

    vms = as_json(run("vm", "list", "--json", uri=root))
    by_name = {vm["ElementName"]: vm for vm in vms}
    assert by_name["web01"]["DiskSizes"] == [64 << 20, 32 << 20]
    assert by_name["db01"]["DiskSizes"] == [1 << 30, 512 << 10]
    assert by_name["web01"]["__CLASS"] == "Msvm_ComputerSystem"
    guid = by_name["web01"]["Name"]
    assert guid in rows["web01"]

    # By name and by GUID, table and JSON.
    shown = as_json(run("--json", "vm", "show", guid, uri=root))
    assert shown["ElementName"] == "web01" and shown["ReplicationMode"] == 0 and shown["EnabledState"] == 3
    text = ok(run("vm", "show", "web01", uri=root))
    assert re.search(rf"^Name\s+{guid}$", text, re.M)
    assert re.search(r"^ReplicationState\s+0 Disabled$", text, re.M)


def test_vm_start_stop_destroy(root: str) -> None:
    ok(run("vm", "create", "web01", "--disk", "1M", uri=root))
    assert as_json(run("--json", "vm", "start", "web01", uri=root))["EnabledState"] == 2
    assert re.search(r"^web01\s+\S+\s+2 Running\s", ok(run("vm", "list", uri=root)), re.M)
    # A running VM cannot be destroyed: refused at once.
    p = run("vm", "destroy", "web01", uri=root)
    assert p.returncode == 3 and "error 32774 SystemInUse" in p.stderr
    ok(run("vm", "stop", "web01", uri=root))
    assert as_json(run("vm", "destroy", "web01", "--json", uri=root))["Destroyed"] is True
    assert as_json(run("vm", "list", "--json", uri=root)) == []


def test_digest_json_and_table(root: str, tmp_path: Path) -> None:
    vm = as_json(run("--json", "vm", "create", "web01", "--disk", "4M", uri=root))
    write_blocks(vm["DiskPaths"][0], range(0, 64, 2), seed=7)
    p = run("--json", "digest", "web01", uri=root)
    doc = as_json(p)
    assert p.returncode == 0 and "error" not in doc
    assert doc["__CLASS"] == "Msvm_ConcreteJob" and doc["JobState"] == 7 and doc["ErrorCode"] == 0
    assert doc["BlockCount"] == 64 and doc["ZeroBlocks"] == 32 and doc["BytesRead"] == 32 * 65536
    assert re.fullmatch(r"[0-9a-f]{32,64}", doc["MerkleRoot"])
    text = ok(run("digest", "web01", uri=root))
    assert re.search(r"JobState 7 Completed", text)
    assert re.search(rf"^\s+MerkleRoot\s+{doc['MerkleRoot']}$", text, re.M)
    assert re.search(r"^\s+BytesRead\s+2097152 \(2\.0 MiB\)$", text, re.M)


# ---- errors and exit codes ------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    [],
    ["vm"],
    ["vm", "show"],
    ["vm", "create", "x", "--disk", "10X"],
    ["vm", "create", "x", "--disk", "0"],
    ["vm", "create", "x"],
    ["enable", "web01", "--recovery-server", "hv-b"],
    ["enable", "web01", "--recovery-server", "hv-b", "--port", "70000"],
    ["start", "web01", "--type", "carrier-pigeon"],
    ["failover", "web01", "--prepare", "--test"],
    ["reverse", "web01", "--recovery-server", "hv-a", "--port", "1", "--verify", "some"],
    ["vm", "list", "--no-such-option"],
    ["limit", "--set", "fast"],
    ["limit", "web01", "--set", "8X"],
    ["limit", "--set"],
])
def test_bad_usage_exits_2(root: str, args: list) -> None:
    p = run(*args, uri=root)
    assert p.returncode == 2, p.stderr
    assert p.stdout == "" and "Run with --help" in p.stderr
    # With --json the usage error is a JSON document too.
    p = run("--json", *args, uri=root)
    assert p.returncode == 2
    assert as_json(p)["error"]["name"] == "Usage"


def test_no_uri_is_bad_usage(tmp_path: Path) -> None:
    p = run("vm", "list")
    assert p.returncode == 2 and "VMREPL_URI" in p.stderr
    # ... and the environment provides both the URI and the open options.
    p = run("--json", "server", "show", env_extra={
        "VMREPL_URI": f"local:{tmp_path / 'h'}", "VMREPL_OPEN_OPTIONS": '{"host_name": "hv-env"}'})
    assert as_json(p)["HostName"] == "hv-env"


def test_unknown_vm_is_refused_with_exit_3(root: str) -> None:
    p = run("vm", "show", "nosuch", uri=root)
    assert p.returncode == 3 and p.stdout == ""
    assert re.fullmatch(r"error 32779 FileNotFound: .*nosuch.*\n", p.stderr)
    p = run("--json", "status", "nosuch", uri=root)
    assert p.returncode == 3
    err = as_json(p)["error"]
    assert err["code"] == 32779 and err["name"] == "FileNotFound" and "nosuch" in err["message"]
    assert "error 32779" in p.stderr


def test_refused_state_and_options(root: str, tmp_path: Path) -> None:
    ok(run("vm", "create", "web01", "--disk", "1M", uri=root))
    p = run("start", "web01", uri=root)  # no relationship yet
    assert p.returncode == 3 and p.stderr.startswith("error 32775 InvalidState: ")
    p = run("--json", "vm", "list", uri=root, options='{"bogus": 1}')
    assert p.returncode == 3 and as_json(p)["error"]["code"] == 32773
    p = run("vm", "list", uri=f"unix:{tmp_path / 'sock'}")
    assert p.returncode == 3 and "error 32777 SystemNotAvailable" in p.stderr


def test_failed_job_exits_1(root: str) -> None:
    ok(run("vm", "create", "web01", "--disk", "1M", uri=root))
    # Nobody listens on port 1: CreateReplicationRelationship's job ends in Exception.
    p = run("enable", "web01", "--recovery-server", "127.0.0.1", "--port", "1", uri=root)
    assert p.returncode == 1
    assert re.search(r"JobState 10 Exception", p.stdout)
    assert re.search(r"^error 32777 SystemNotAvailable: .*127\.0\.0\.1:1", p.stderr, re.M)
    p = run("--json", "enable", "web01", "--recovery-server", "127.0.0.1", "--port", "1", uri=root)
    doc = as_json(p)
    assert p.returncode == 1
    assert doc["JobState"] == 10 and doc["ErrorCode"] == 32777
    assert doc["error"] == {"code": 32777, "name": "SystemNotAvailable", "message": doc["ErrorDescription"]}


def test_help_documents_exit_codes_and_man_page_lists_every_command() -> None:
    p = run("--help")
    assert p.returncode == 0
    for line in ["0  success", "1  a job failed", "2  bad usage", "3  the service refused"]:
        assert line in p.stdout
    assert "(Env:VMREPL_URI)" in p.stdout
    assert run("--version").stdout.startswith("vmreplctl ")

    def commands(*path: str) -> list:
        text = run(*path, "--help").stdout
        section = text.split("Subcommands:\n", 1)[1].split("\n\n", 1)[0]
        return [line.split()[0] for line in section.splitlines() if line.strip()]

    top = commands()
    assert {"vm", "digest", "enable", "start", "replicate", "status", "suspend", "resume", "resync",
            "failover", "make-replica", "commit", "revert", "reverse", "points", "stats", "settings",
            "limit", "auth", "server", "jobs", "job"} <= set(top)
    man = MAN_PAGE.read_text().replace("\\-", "-")
    for cmd in top:
        if cmd in ("vm", "auth", "server", "job"):
            for sub in commands(cmd):
                assert f"{cmd} {sub}" in man, f"vmreplctl.1 does not list '{cmd} {sub}'"
                assert run(cmd, sub, "--help").returncode == 0
        else:
            assert re.search(rf'^\.BI? "?{re.escape(cmd)}\b', man, re.M), f"vmreplctl.1 does not list '{cmd}'"


# ---- bandwidth limits -----------------------------------------------------------------------


def test_limit_of_the_service_shows_sets_and_refuses(root: str) -> None:
    # The whole service's limit (a local: root's service lives for one invocation).
    assert ok(run("limit", uri=root)) == "unlimited\n"
    assert as_json(run("--json", "limit", uri=root)) == {"BandwidthLimit": 0, "ComputerSystem": None}
    assert ok(run("limit", "--set", "8M", uri=root)) == "8.0 MiB/s (8388608 bytes/s)\n"
    assert ok(run("limit", "--set", "1g", uri=root)) == "1.0 GiB/s (1073741824 bytes/s)\n"
    assert as_json(run("limit", "--set", "65536", "--json", uri=root)) == {
        "BandwidthLimit": 65536, "ComputerSystem": None}
    assert ok(run("limit", "--set", "512K", uri=root)) == "512.0 KiB/s (524288 bytes/s)\n"
    assert ok(run("limit", "--set", "unlimited", uri=root)) == "unlimited\n"
    assert ok(run("limit", "--set", "0", uri=root)) == "unlimited\n"

    # Under one block per second: refused at once (exit 3), in words and in JSON.
    p = run("limit", "--set", "1000", uri=root)
    assert p.returncode == 3 and p.stdout == ""
    assert re.fullmatch(r"error 32773 InvalidParameter: .*1000.*\n", p.stderr)
    p = run("--json", "limit", "--set", "1K", uri=root)
    assert p.returncode == 3 and as_json(p)["error"]["code"] == 32773
    # A VM without a relationship has no limit of its own to set (reading gives none).
    ok(run("vm", "create", "web01", "--disk", "1M", uri=root))
    p = run("limit", "web01", "--set", "8M", uri=root)
    assert p.returncode == 3 and p.stderr.startswith("error 32775 InvalidState: ") and "web01" in p.stderr
    assert as_json(run("--json", "limit", "web01", uri=root)) == {"BandwidthLimit": 0, "ComputerSystem": "web01"}
    # An unknown VM, and an empty name (not the whole service).
    p = run("--json", "limit", "nosuch", uri=root)
    assert p.returncode == 3 and as_json(p)["error"]["code"] == 32779 and "error 32779 FileNotFound" in p.stderr
    p = run("limit", "", "--set", "8M", uri=root)
    assert p.returncode == 3 and p.stderr.startswith("error 32773 InvalidParameter: ")


def test_two_hosts_limit_of_a_relationship_is_kept_and_throttles(tmp_path: Path) -> None:
    a = f"local:{tmp_path / 'hv-a'}"
    with recovery_host(tmp_path, "hv-b", primary="hv-a") as port:
        vm = as_json(run("--json", "vm", "create", "web01", "--disk", "8M", uri=a, options=A_OPTIONS))
        write_blocks(vm["DiskPaths"][0], range(0, 8), seed=5)
        ok(run("enable", "web01", "--recovery-server", "hv-b", "--port", str(port), uri=a, options=A_OPTIONS))
        assert ok(run("limit", "web01", uri=a, options=A_OPTIONS)) == "unlimited\n"
        assert ok(run("limit", "web01", "--set", "256K", uri=a, options=A_OPTIONS)) == "256.0 KiB/s (262144 bytes/s)\n"
        # Kept with the relationship: the next invocation (a new service on the root) has it.
        assert as_json(run("--json", "limit", vm["Name"], uri=a, options=A_OPTIONS)) == {
            "BandwidthLimit": 262144, "ComputerSystem": vm["Name"]}
        assert ok(run("limit", "web01", uri=a, options=A_OPTIONS)) == "256.0 KiB/s (262144 bytes/s)\n"

        # The initial replication runs under it: 8 blocks at 4 a second; the job says so.
        doc = as_json(run("--json", "start", "web01", uri=a, options=A_OPTIONS))
        assert doc["JobState"] == 7 and doc["BlocksSent"] == 8
        assert doc["BandwidthLimit"] == 262144
        assert 0 < doc["RateBytesPerSecond"] <= 1.5 * 262144
        write_blocks(vm["DiskPaths"][0], range(20, 21), seed=6)
        text = ok(run("replicate", "web01", uri=a, options=A_OPTIONS))
        assert re.search(r"^\s+BandwidthLimit\s+262144$", text, re.M)

        assert ok(run("limit", "web01", "--set", "unlimited", uri=a, options=A_OPTIONS)) == "unlimited\n"
        assert as_json(run("--json", "limit", "web01", uri=a, options=A_OPTIONS))["BandwidthLimit"] == 0


# ---- recovery server ------------------------------------------------------------------------


def test_auth_and_server_settings_on_one_root(root: str, tmp_path: Path) -> None:
    store = str(tmp_path / "replicas")
    p = run("server", "enable", uri=root)
    assert re.search(r"JobState 7 Completed", ok(p))
    info = as_json(run("--json", "server", "show", uri=root))
    assert info["RecoveryServerEnabled"] is True and info["AllowedAuthenticationType"] == 1

    assert as_json(run("--json", "auth", "add", "hv-a", "--location", store, uri=root))["JobState"] == 7
    ok(run("auth", "add", "*.example.com", "--location", store + "2", "--trust-group", "G1", uri=root))
    table = ok(run("auth", "list", uri=root)).splitlines()
    assert table[0].split() == ["PRIMARY", "TRUST", "GROUP", "STORAGE", "LOCATION"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["hv-a"] == ["hv-a", "DEFAULT", store]
    assert rows["*.example.com"] == ["*.example.com", "G1", store + "2"]
    entries = as_json(run("auth", "list", "--json", uri=root))
    assert sorted(e["AllowedPrimaryHostSystem"] for e in entries) == ["*.example.com", "hv-a"]

    ok(run("auth", "remove", "hv-a", uri=root))
    entries = as_json(run("auth", "list", "--json", uri=root))
    assert [e["AllowedPrimaryHostSystem"] for e in entries] == ["*.example.com"]
    p = run("auth", "remove", "hv-a", uri=root)
    assert p.returncode in (1, 3) and re.search(r"^error 327\d\d ", p.stderr, re.M)

    # Certificates (type 3 = both) need the listener's thumbprint: refused at once without it.
    p = run("server", "enable", "--auth", "3", uri=root)
    assert p.returncode == 3 and p.stderr.startswith("error 32773 InvalidParameter: ") and "CertificateThumbPrint" in p.stderr
    # ...and it must be this host's own certificate, which the certificate listener presents.
    foreign = "0123456789ABCDEF0123456789ABCDEF01234567"
    p = run("server", "enable", "--auth", "3", "--thumbprint", foreign, uri=root)
    assert p.returncode == 3 and p.stderr.startswith("error 32773 InvalidParameter: "), p.stderr
    assert "needs this service's TLS certificate" in p.stderr, p.stderr
    certs = tmp_path / "certs"
    subprocess.run(["sh", str(Path(__file__).resolve().parents[2] / "tools" / "mkcerts.sh"), str(certs), "hv-b"],
                   check=True, capture_output=True, timeout=120)
    tls = json.dumps({"host_name": "hv-b", "tls_certificate": str(certs / "hv-b.pem"),
                      "tls_key": str(certs / "hv-b.key"), "tls_ca": str(certs / "ca.pem"),
                      "tls_listen": "127.0.0.1:0"})
    p = run("server", "enable", "--auth", "3", "--thumbprint", foreign, uri=root, options=tls)
    assert p.returncode == 3 and f"CertificateThumbPrint {foreign} is not this host's certificate" in p.stderr, p.stderr
    own = as_json(run("server", "show", "--json", uri=root, options=tls))["HostCertificateThumbPrint"]
    assert own == (certs / "hv-b.thumbprint").read_text().split()[1]  # its "sha1 HEX" line
    ok(run("server", "enable", "--auth", "3", "--thumbprint", own, uri=root, options=tls))
    info = as_json(run("server", "show", "--json", uri=root, options=tls))
    assert info["AllowedAuthenticationType"] == 3
    assert info["CertificateThumbPrint"] == own
    assert info["TlsListenPort"] > 0 and info["ListenPort"] == 0
    assert re.search(r"^MonitoringStartTime\s+09:00:00\.000 UTC$", ok(run("server", "show", uri=root)), re.M)
    ok(run("server", "disable", uri=root))
    assert as_json(run("server", "show", "--json", uri=root))["RecoveryServerEnabled"] is False
    assert as_json(run("jobs", "--json", uri=root)) == []  # a local: root's jobs end with the process
    assert ok(run("jobs", uri=root)).split() == ["ID", "TYPE", "STATE", "PCT", "ERROR", "NAME"]


# ---- two hosts ------------------------------------------------------------------------------


def test_two_hosts_enable_start_replicate_status_stats(tmp_path: Path) -> None:
    a = f"local:{tmp_path / 'hv-a'}"
    with recovery_host(tmp_path, "hv-b", primary="hv-a") as port:
        vm = as_json(run("--json", "vm", "create", "web01", "--disk", "16M", uri=a, options=A_OPTIONS))
        disk = vm["DiskPaths"][0]
        write_blocks(disk, range(0, 40), seed=1)

        out = ok(run("enable", "web01", "--recovery-server", "hv-b", "--port", str(port), "--interval", "30",
                     "--history", "2", "--compression", uri=a, options=A_OPTIONS))
        assert "web01: ReplicationMode 1 Primary, ReplicationState 1 ReadyForReplication" in out
        settings = as_json(run("--json", "settings", "web01", uri=a, options=A_OPTIONS))
        assert settings["RecoveryConnectionPoint"] == "hv-b" and settings["RecoveryServerPortNumber"] == port
        assert settings["ReplicationInterval"] == 30 and settings["RecoveryHistory"] == 2
        assert settings["CompressionEnabled"] is True

        doc = as_json(run("--json", "start", "web01", "--type", "network", uri=a, options=A_OPTIONS))
        assert doc["JobState"] == 7 and doc["BlocksSent"] == 40 and doc["DataBytesSent"] == 40 * 65536

        write_blocks(disk, range(100, 105), seed=2)
        out = ok(run("replicate", "web01", uri=a, options=A_OPTIONS))
        assert re.search(r"JobState 7 Completed", out)
        assert re.search(r"^\s+BlocksSent\s+5$", out, re.M)
        assert re.search(r"^\s+DataBytesSent\s+327680 \(320\.0 KiB\)$", out, re.M)
        assert re.search(r"^\s+ChangeSource\s+\S+$", out, re.M)
        assert "web01: ReplicationMode 1 Primary, ReplicationState 3 Replicating, ReplicationHealth 1 Ok" in out

        status = as_json(run("--json", "status", "web01", uri=a, options=A_OPTIONS))
        assert status["ReplicationMode"] == 1 and status["ReplicationState"] == 3
        assert status["ReplicationHealth"] == 1 and status["ReplicationPeer"] == f"hv-b:{port}"
        text = ok(run("status", "web01", uri=a, options=A_OPTIONS))
        assert re.search(r"^ReplicationMode\s+1 Primary$", text, re.M)
        assert re.search(r"^ReplicationState\s+3 Replicating$", text, re.M)
        assert re.search(r"^LastReplicationTime\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$", text, re.M)

        stats = as_json(run("--json", "stats", "web01", uri=a, options=A_OPTIONS))
        assert stats["ReplicationSuccessCount"] == 2 and stats["ReplicationFailureCount"] == 0
        assert re.search(r"^ReplicationSuccessCount\s+2$", ok(run("stats", "web01", uri=a, options=A_OPTIONS)), re.M)

        listed = ok(run("vm", "list", uri=a, options=A_OPTIONS))
        assert re.search(r"^web01\s+\S+\s+3 Off\s+1 Primary\s+3 Replicating\s+1 Ok\s+16\.0 MiB$", listed, re.M)

        ok(run("suspend", "web01", uri=a, options=A_OPTIONS))
        assert as_json(run("--json", "status", "web01", uri=a, options=A_OPTIONS))["ReplicationState"] == 7
        ok(run("resume", "web01", uri=a, options=A_OPTIONS))
        assert as_json(run("--json", "status", "web01", uri=a, options=A_OPTIONS))["ReplicationState"] == 3

    # hv-b is gone: the next cycle's job fails (exit 1), its error on stderr and in the JSON.
    p = run("--json", "replicate", "web01", uri=a, options=A_OPTIONS)
    assert p.returncode == 1
    doc = as_json(p)
    assert doc["JobState"] == 10 and doc["error"]["code"] == 32777
    assert re.search(r"^error 32777 SystemNotAvailable: ", p.stderr, re.M)


def test_two_hosts_planned_failover_and_reverse(tmp_path: Path) -> None:
    """The planned runbook through vmreplctl: prepare on hv-a, fail over on hv-b, reverse."""
    a, b = f"local:{tmp_path / 'hv-a'}", f"local:{tmp_path / 'hv-b'}"
    with recovery_host(tmp_path, "hv-b", primary="hv-a") as port_b:
        vm = as_json(run("--json", "vm", "create", "web01", "--disk", "8M", uri=a, options=A_OPTIONS))
        write_blocks(vm["DiskPaths"][0], range(0, 16), seed=3)
        ok(run("enable", "web01", "--recovery-server", "hv-b", "--port", str(port_b), uri=a, options=A_OPTIONS))
        ok(run("start", "web01", uri=a, options=A_OPTIONS))
        out = ok(run("failover", "web01", "--prepare", uri=a, options=A_OPTIONS))
        assert "ReplicationState 4 SyncedReplicationComplete" in out

    # hv-b's root is free again: its replica VM, its recovery points, the failover.
    replica = as_json(run("--json", "vm", "show", "web01", uri=b, options=B_OPTIONS))
    assert replica["ReplicationMode"] == 2
    points = as_json(run("--json", "points", "web01", uri=b, options=B_OPTIONS))
    assert points and points[-1]["VirtualSystemType"].endswith("PlannedFailover")
    table = ok(run("points", "web01", uri=b, options=B_OPTIONS)).splitlines()
    assert table[0].split() == ["SEQ", "TYPE", "CREATED", "INSTANCEID"] and "PlannedFailover" in table[-1]
    out = ok(run("failover", "web01", uri=b, options=B_OPTIONS))
    assert "ReplicationMode 2 Replica, ReplicationState 5 Recovered" in out

    # hv-a becomes a recovery server admitting hv-b; the reverse makes it the replica.
    with recovery_host(tmp_path, "hv-a", primary="hv-b") as port_a:
        p = run("--json", "reverse", "web01", "--recovery-server", "hv-a", "--port", str(port_a),
                "--verify", "full", uri=b, options=B_OPTIONS)
        doc = as_json(p)
        assert p.returncode == 0 and doc["JobState"] == 7, p.stderr
        assert doc["BlocksSent"] == 0 and "ChangeSource" in doc
        status = as_json(run("--json", "status", "web01", uri=b, options=B_OPTIONS))
        assert status["ReplicationMode"] == 1 and status["ReplicationState"] == 3
        # A second reverse is refused at once: the VM is a primary now.
        p = run("reverse", "web01", "--recovery-server", "hv-a", "--port", str(port_a), uri=b, options=B_OPTIONS)
        assert p.returncode == 3 and p.stderr.startswith("error 32775 InvalidState: ")
