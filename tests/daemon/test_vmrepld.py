"""vmrepld: its config checks (one line naming the key, exit 2), its log format, the management
socket, and its signals (SIGTERM/SIGINT clean exit 0, SIGHUP reload).

Run by ctest as daemon.vmrepld, which sets VMREPLD (and VMREPLCTL, for the job-log test) to
the binaries of the build tree. Each daemon gets its own host root and socket under tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

VMREPLD = os.environ.get("VMREPLD", "")
VMREPLCTL = os.environ.get("VMREPLCTL", "")
SRC = Path(__file__).resolve().parents[2] / "tools" / "vmrepld"

pytestmark = pytest.mark.skipif(not VMREPLD, reason="VMREPLD is not set (run through ctest)")

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) [a-z]+: \S.*$")
THUMB = "AB" * 20


def config_text(tmp_path: Path, extra_top: str = "", replication: str = "", management: Optional[str] = None,
                rest: str = "", log_level: str = "info") -> str:
    sock = tmp_path / "run" / "vmrepld.sock"
    if management is None:
        management = f'socket = "{sock}"'
    return (f'host_name = "hv-a"\nhost_root = "{tmp_path / "host"}"\nlog_level = "{log_level}"\n{extra_top}\n'
            f'[replication]\nlisten = "127.0.0.1:0"\nhosts = {{ "hv-b" = "127.0.0.1" }}\n{replication}\n'
            f'[management]\n{management}\n{rest}')


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([VMREPLD, *args], capture_output=True, text=True, timeout=timeout)


def check(cfg: Path) -> subprocess.CompletedProcess:
    return run("--config", str(cfg), "--check-config")


class Daemon:
    """One vmrepld in the foreground, its stderr in a file."""

    def __init__(self, cfg: Path, log: Path, preexec: Optional[Callable[[], None]] = None):
        self.cfg = cfg
        self.log = log
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen([VMREPLD, "--config", str(cfg), "--foreground"], stdout=subprocess.PIPE,
                                     stderr=self._log_file, text=True, preexec_fn=preexec)

    def lines(self) -> List[str]:
        return self.log.read_text().splitlines()

    def wait_for(self, pattern: str, timeout: float = 10, after: int = 0) -> str:
        """The first log line from index `after` on that matches `pattern` (a regex)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines()[after:]:
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}; log:\n" + self.log.read_text())
            if self.proc.poll() is not None and not any(rx.search(x) for x in self.lines()[after:]):
                raise AssertionError(f"vmrepld exited ({self.proc.returncode}) before {pattern!r}; log:\n" +
                                     self.log.read_text())
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._log_file.close()
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


@pytest.fixture
def start(tmp_path: Path):
    started: List[Daemon] = []

    def _start(cfg: Path, name: str = "vmrepld", ready: bool = True,
               preexec: Optional[Callable[[], None]] = None) -> Daemon:
        d = Daemon(cfg, tmp_path / f"{name}.log", preexec)
        started.append(d)
        if ready:
            d.wait_for(r" vmrepld: ready$")
        return d

    yield _start
    for d in started:
        d.close()


def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "vmrepld.sock"


# ---- command line ----

def test_version_prints_the_version_and_exits_0():
    p = run("--version")
    assert p.returncode == 0
    assert re.fullmatch(r"vmrepld \d+\.\d+\.\d+\n", p.stdout)


def test_help_lists_the_options():
    p = run("--help")
    assert p.returncode == 0
    for opt in ("--config", "--foreground", "--check-config", "--version"):
        assert opt in p.stdout


def test_missing_config_option_is_a_usage_error():
    p = run("--foreground")
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and "--config" in p.stderr


def test_check_config_prints_ok(tmp_path: Path):
    p = check(write(tmp_path / "c.toml", config_text(tmp_path)))
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")
    assert not (tmp_path / "host").exists(), "--check-config must not create the host root"


def test_minimal_config_needs_only_host_root(tmp_path: Path):
    p = check(write(tmp_path / "c.toml", f'host_root = "{tmp_path}/h"\n'))
    assert (p.returncode, p.stdout) == (0, "ok\n")


def test_example_config_passes_the_check():
    p = check(SRC / "vmrepld.toml.example")
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")


# ---- config errors: exit 2, one line "vmrepld: config FILE: <key>: <rule>" ----

def _cert(tmp_path: Path) -> Path:
    return write(tmp_path / "host.pem", "-----BEGIN CERTIFICATE-----\n")


BAD_CONFIGS = {
    # id: (function tmp_path -> config text, expected text after "config FILE: ")
    "missing_host_root": (lambda t: 'log_level = "info"\n', "host_root: is required"),
    "relative_host_root": (lambda t: 'host_root = "var/lib/vmrepl"\n',
                           'host_root: must be an absolute path (got "var/lib/vmrepl")'),
    "host_root_wrong_type": (lambda t: "host_root = 5\n", "host_root: must be a string (got an integer)"),
    "unknown_top_key": (lambda t: config_text(t, extra_top='hostname = "x"'),
                        "hostname: unknown key (did you mean host_name?)"),
    "unknown_section_key": (lambda t: config_text(t, replication="listn = 5"),
                            "replication.listn: unknown key (did you mean listen?)"),
    "unknown_section": (lambda t: config_text(t, rest="[replicaton]\n"),
                        "replicaton: unknown key (did you mean replication?)"),
    "section_wrong_type": (lambda t: f'host_root = "{t}/h"\nlimits = 5\n', "limits: must be a table (got an integer)"),
    "wrong_type_string_for_int": (lambda t: config_text(t, replication='zstd_level = "3"'),
                                  "replication.zstd_level: must be an integer (got a string)"),
    "wrong_type_float": (lambda t: config_text(t, replication="io_timeout_ms = 1.5"),
                         "replication.io_timeout_ms: must be an integer of milliseconds (got a float)"),
    "out_of_range": (lambda t: config_text(t, replication="zstd_level = 99"),
                     "replication.zstd_level: must be -7..19 (got 99)"),
    "bad_listen": (lambda t: config_text(t).replace('listen = "127.0.0.1:0"', 'listen = "abc"'),
                   'replication.listen: must be host:port (got "abc")'),
    "bad_listen_port": (lambda t: config_text(t).replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:65536"'),
                        'replication.listen: must be host:port (got "0.0.0.0:65536")'),
    "bad_hosts_address": (lambda t: config_text(t).replace('"127.0.0.1" }', '7 }'),
                          "replication.hosts.hv-b: must be a string address (got an integer)"),
    "bad_log_level": (lambda t: config_text(t, log_level="verbose"),
                      'log_level: must be one of error, warn, info, debug (got "verbose")'),
    "bad_host_name": (lambda t: f'host_name = "a b"\nhost_root = "{t}/h"\n',
                      'host_name: must be a host name: 1-255 characters, no spaces, slashes or quotes (got "a b")'),
    "relative_socket": (lambda t: config_text(t, management='socket = "vmrepld.sock"'),
                        'management.socket: must be an absolute path (got "vmrepld.sock")'),
    "long_socket": (lambda t: config_text(t, management=f'socket = "/{"s" * 120}"'),
                    "management.socket: must be at most 107 bytes long, the limit of a unix socket path"),
    "management_listen_without_tls": (lambda t: config_text(t, management='listen = "0.0.0.0:6601"'),
                                      "management.listen: needs tls.certificate, tls.key and tls.ca"),
    "bad_management_listen": (lambda t: config_text(t, management='listen = "6601"'),
                              'management.listen: must be host:port (got "6601")'),
    "missing_tls_file": (lambda t: config_text(t, rest=f'[tls]\ncertificate = "{t}/nope.pem"\n'),
                         f'tls.certificate: cannot read "{{tmp}}/nope.pem": No such file or directory'),
    "tls_file_is_a_directory": (lambda t: config_text(t, rest=f'[tls]\nca = "{t}"\n'),
                                '"{tmp}" is not a regular file'),
    "tls_key_without_certificate": (lambda t: config_text(t, rest=f'[tls]\nkey = "{_cert(t)}"\n'),
                                    "tls.certificate: is required with tls.key"),
    "bad_thumbprint": (lambda t: config_text(t, rest=f'[tls]\npinned_thumbprints = ["{THUMB}", "abc"]\n'),
                       'tls.pinned_thumbprints[1]: must be 40 (SHA-1) or 64 (SHA-256) hex digits (got "abc")'),
    "thumbprint_not_hex": (lambda t: config_text(t, rest=f'[tls]\npinned_thumbprints = ["{"Z" * 40}"]\n'),
                           "tls.pinned_thumbprints[0]: must be 40 (SHA-1) or 64 (SHA-256) hex digits"),
    "tls_without_ca": (
        lambda t: config_text(t, rest=f'[tls]\ncertificate = "{_cert(t)}"\nkey = "{_cert(t)}"\n'),
        "tls.ca: is required with tls.certificate and tls.key"),
    "pins_without_management_listen": (
        lambda t: config_text(t, rest=f'[tls]\ncertificate = "{_cert(t)}"\nkey = "{_cert(t)}"\nca = "{_cert(t)}"\n'
                                      f'pinned_thumbprints = ["{"ab" * 32}"]\n'),
        "tls.pinned_thumbprints: pins management clients, and management.listen is not set"),
    "plaintext_listen_off_loopback": (
        lambda t: config_text(t).replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:6600"'),
        'replication.listen: is plaintext and listens on a loopback address only (got "0.0.0.0:6600"); '
        "between hosts use replication.tls_listen with [tls]"),
    "tls_listen_without_tls": (lambda t: config_text(t, replication='tls_listen = "0.0.0.0:6601"'),
                               "replication.tls_listen: needs tls.certificate, tls.key and tls.ca"),
    "bandwidth_below_one_block": (lambda t: config_text(t, rest="[limits]\nbandwidth_bytes_per_s = 1000\n"),
                                  "limits.bandwidth_bytes_per_s: must be 0 (unlimited) or at least 65536"),
    "syntax_error": (lambda t: f'host_root = "{t}/h"\nlog_level "info"\n', "line 2, column 11: "),
    "duplicate_key": (lambda t: f'host_name = "a"\nhost_name = "b"\n', "line 2, column 13: "),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_naming_the_key_and_exit_2(tmp_path: Path, case: str):
    make, expected = BAD_CONFIGS[case]
    cfg = write(tmp_path / "c.toml", make(tmp_path))
    expected = expected.replace("{tmp}", str(tmp_path))
    for args in (["--check-config"], ["--foreground"]):
        p = run("--config", str(cfg), *args)
        assert p.returncode == 2, p.stderr
        assert p.stdout == ""
        lines = p.stderr.splitlines()
        assert len(lines) == 1, p.stderr
        prefix = f"vmrepld: config {cfg}: "
        assert lines[0].startswith(prefix), lines[0]
        assert expected in lines[0], lines[0]
    assert not (tmp_path / "host").exists()


def test_unreadable_config_file(tmp_path: Path):
    p = check(tmp_path / "missing.toml")
    assert p.returncode == 2
    assert p.stderr == f"vmrepld: config {tmp_path}/missing.toml: cannot read: No such file or directory\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_tls_file_permission(tmp_path: Path):
    cert = _cert(tmp_path)
    cert.chmod(0)
    p = check(write(tmp_path / "c.toml", config_text(tmp_path, rest=f'[tls]\ncertificate = "{cert}"\n')))
    assert p.returncode == 2
    assert "tls.certificate: cannot read" in p.stderr and "Permission denied" in p.stderr


# ---- running ----

def test_start_creates_a_0600_socket_and_logs_in_format(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg)
    s = sock_path(tmp_path)
    st = os.stat(s)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(s.parent).st_mode) == 0o700  # created by the daemon
    lines = d.lines()
    assert lines and all(LOG_LINE.match(x) for x in lines), "\n".join(lines)
    assert any(x.endswith(f" info  vmrepld: listening on unix:{s}") for x in lines)
    port = re.search(r"replication listening on 127\.0\.0\.1:(\d+) \(plaintext, loopback\)$",
                     d.wait_for("replication listening"))
    assert port and int(port.group(1)) > 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(s))
    assert d.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_cleanly(tmp_path: Path, start, sig):
    d = start(write(tmp_path / "c.toml", config_text(tmp_path)))
    d.signal(sig)
    t0 = time.monotonic()
    assert d.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    assert not sock_path(tmp_path).exists()
    lines = d.lines()
    assert all(LOG_LINE.match(x) for x in lines), "\n".join(lines)
    assert any(f"{sig.name} from pid {os.getpid()}: shutting down" in x for x in lines)
    assert lines[-1].endswith(" info  vmrepld: stopped")
    assert d.proc.stdout.read() == ""  # nothing on stdout


def test_second_sigterm_during_shutdown_does_not_crash(tmp_path: Path, start):
    d = start(write(tmp_path / "c.toml", config_text(tmp_path)))
    d.signal(signal.SIGTERM)
    d.signal(signal.SIGTERM)
    d.signal(signal.SIGINT)
    assert d.wait(timeout=10) == 0
    assert d.lines()[-1].endswith(" vmrepld: stopped")


def test_restart_on_the_same_host_root(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg, "first")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    d2 = start(cfg, "second")
    d2.signal(signal.SIGTERM)
    assert d2.wait() == 0


def test_sighup_applies_log_level_and_debug_lines_appear(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg)
    assert not any(" debug " in x for x in d.lines())
    n = len(d.lines())
    write(cfg, config_text(tmp_path, log_level="debug"))
    d.signal(signal.SIGHUP)
    d.wait_for(r' info  config: log_level: "info" -> "debug"$', after=n)
    d.wait_for(r' debug config: host_root = ', after=n)
    assert d.proc.poll() is None
    # And back: debug lines stop.
    write(cfg, config_text(tmp_path, log_level="warn"))
    m = len(d.lines())
    d.signal(signal.SIGHUP)
    d.wait_for(r' config: log_level: "debug" -> "warn"$', after=m)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    tail = d.lines()[m:]
    assert not any(" info  vmrepld: stopped" in x for x in tail)  # info is below warn now
    assert all(LOG_LINE.match(x) for x in d.lines())


def test_sighup_reloads_even_when_started_with_sighup_ignored(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # as under nohup
    write(cfg, config_text(tmp_path, log_level="debug"))
    d.signal(signal.SIGHUP)
    d.wait_for(r'log_level: "info" -> "debug"$')


def test_sighup_names_the_keys_that_need_a_restart(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg)
    n = len(d.lines())
    write(cfg, config_text(tmp_path, replication="zstd_level = 3").replace('"hv-a"', '"hv-z"'))
    d.signal(signal.SIGHUP)
    d.wait_for(r" warn  config: replication\.zstd_level changed \(1 -> 3\): needs a restart; still using 1$", after=n)
    d.wait_for(r' warn  config: host_name changed \("hv-a" -> "hv-z"\): needs a restart', after=n)
    # The running configuration is unchanged: the same reload again warns again.
    m = len(d.lines())
    d.signal(signal.SIGHUP)
    d.wait_for(r"replication\.zstd_level changed \(1 -> 3\)", after=m)


def test_sighup_applies_the_bandwidth_limit(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg)
    d.wait_for(r" vmrepld: bandwidth limit: unlimited$")
    n = len(d.lines())
    write(cfg, config_text(tmp_path, rest="[limits]\nbandwidth_bytes_per_s = 1048576\n"))
    d.signal(signal.SIGHUP)
    d.wait_for(r" info  config: limits\.bandwidth_bytes_per_s: unlimited -> 1048576 bytes/s$", after=n)
    assert not any("needs a restart" in x for x in d.lines()[n:])


def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path, start):
    cfg = write(tmp_path / "c.toml", config_text(tmp_path))
    d = start(cfg)
    n = len(d.lines())
    write(cfg, config_text(tmp_path, log_level="loud"))
    d.signal(signal.SIGHUP)
    line = d.wait_for(r" error config: ", after=n)
    assert f'config {cfg}: log_level: must be one of error, warn, info, debug (got "loud"); keeping the running ' \
           "configuration" in line
    time.sleep(0.2)
    assert d.proc.poll() is None
    assert sock_path(tmp_path).exists()
    # Still at info, and a later valid reload works.
    write(cfg, "this is = not toml [")
    d.signal(signal.SIGHUP)
    d.wait_for(r" error config: .*: line 1, column \d+: ", after=n)
    write(cfg, config_text(tmp_path, log_level="debug"))
    d.signal(signal.SIGHUP)
    d.wait_for(r'log_level: "info" -> "debug"', after=n)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


def test_second_daemon_on_the_same_host_root_exits_1(tmp_path: Path, start):
    start(write(tmp_path / "a.toml", config_text(tmp_path)), "first")
    other = config_text(tmp_path, management=f'socket = "{tmp_path}/other.sock"')
    d2 = start(write(tmp_path / "b.toml", other), "second", ready=False)
    assert d2.wait(timeout=10) == 1
    errors = [x for x in d2.lines() if " error " in x]
    assert len(errors) == 1, d2.lines()
    assert f"host root {tmp_path}/host is locked" in errors[0]
    assert not (tmp_path / "other.sock").exists()


def test_second_daemon_on_the_same_socket_exits_1(tmp_path: Path, start):
    first = start(write(tmp_path / "a.toml", config_text(tmp_path)), "first")
    other = config_text(tmp_path).replace(f'"{tmp_path / "host"}"', f'"{tmp_path / "host2"}"')
    d2 = start(write(tmp_path / "b.toml", other), "second", ready=False)
    assert d2.wait(timeout=10) == 1
    errors = [x for x in d2.lines() if " error " in x]
    assert len(errors) == 1 and "cannot start management" in errors[0], d2.lines()
    # The first one still owns its socket.
    assert sock_path(tmp_path).exists() and first.proc.poll() is None


def test_stale_socket_file_is_replaced(tmp_path: Path, start):
    s = sock_path(tmp_path)
    s.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(s))
    stale.close()  # the file stays, nobody listens: a killed daemon's leftover
    start(write(tmp_path / "c.toml", config_text(tmp_path)))
    assert stat.S_IMODE(os.stat(s).st_mode) == 0o600


def test_bad_replication_listen_address_exits_1(tmp_path: Path, start):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)  # the port is taken: binding it fails at start, after the config check
    cfg = config_text(tmp_path).replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{busy.getsockname()[1]}"')
    d = start(write(tmp_path / "c.toml", cfg), ready=False)
    assert d.wait(timeout=10) == 1
    errors = [x for x in d.lines() if " error " in x]
    assert len(errors) == 1 and "cannot start the service on host root" in errors[0], d.lines()


def test_job_outcomes_are_logged(tmp_path: Path, start):
    if not VMREPLCTL:
        pytest.skip("VMREPLCTL is not set")
    d = start(write(tmp_path / "c.toml", config_text(tmp_path)))
    uri = f"unix:{sock_path(tmp_path)}"

    def ctl(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VMREPL")}
        return subprocess.run([VMREPLCTL, "--uri", uri, "-q", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    p = ctl("vm", "create", "web01", "--disk", "1M")
    assert p.returncode == 0, p.stderr
    p = ctl("digest", "web01")
    assert p.returncode == 0, p.stderr
    line = d.wait_for(r" info  jobs: job .*\([0-9A-F-]{36}\) Completed in \d+\.\d{3} s$")
    assert LOG_LINE.match(line) and '"' in line
    # A job that fails is logged at warn with its code (nothing listens on port 1).
    p = ctl("enable", "web01", "--recovery-server", "127.0.0.1", "--port", "1")
    assert p.returncode == 1, p.stderr
    d.wait_for(r" warn  jobs: job .*\([0-9A-F-]{36}\) Exception after \d+\.\d{3} s: 32777 SystemNotAvailable: ")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


# ---- files shipped with the daemon ----

def test_unit_file_runs_the_daemon_in_the_foreground():
    unit = (SRC / "vmrepld.service").read_text()
    for want in ("ExecStart=/usr/bin/vmrepld --config /etc/vmrepl/vmrepld.toml --foreground",
                 "ExecReload=/bin/kill -HUP $MAINPID", "Type=notify", "Restart=on-failure", "RuntimeDirectory=vmrepl",
                 "RuntimeDirectoryMode=0700", "StateDirectory=vmrepl", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/vmrepl", "PrivateTmp=yes"):
        assert want in unit, want


def test_man_page_documents_every_config_key():
    man = (SRC / "vmrepld.8").read_text()
    example = (SRC / "vmrepld.toml.example").read_text()
    keys = set(re.findall(r"^#?\s*([a-z_]+)\s*=", example, re.M))
    assert {"host_root", "bandwidth_bytes_per_s", "pinned_thumbprints", "socket"} <= keys
    for k in keys:
        assert re.search(rf"^\.BR .*\b{k}\b", man, re.M), f"{k} is not a documented key in vmrepld.8"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_file_verifies(tmp_path: Path):
    unit = (SRC / "vmrepld.service").read_text().replace("/usr/bin/vmrepld", VMREPLD)
    path = write(tmp_path / "vmrepld.service", unit)
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
