"""Fixtures of the Python binding's suite.

Run: VMREPL_LIBRARY=<build>/capi/libvmrepl.so PYTHONPATH=bindings/python python3 -m pytest -q tests/python
(ctest's python.pytest sets both). Every test opens its own service on its own tmp_path root.
"""

from __future__ import annotations

import collections
import os
import pathlib
import sys
from typing import Counter, Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINDING = REPO / "bindings" / "python"

try:
    import vmrepl  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(BINDING))  # used in place without PYTHONPATH
    try:
        import vmrepl  # noqa: F401
    except ImportError as e:
        pytest.exit(f"cannot import vmrepl: {e}", returncode=4)
except ImportError as e:
    pytest.exit(
        f"cannot import vmrepl: {e}\n(set VMREPL_LIBRARY to a libvmrepl.so built with "
        "`cmake --build <dir> --target vmrepl`)",
        returncode=4,
    )

from vmrepl import _ffi  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30

_CALLS: Counter[str] = collections.Counter()


@pytest.fixture(scope="session", autouse=True)
def ffi_calls() -> Iterator[Counter[str]]:
    """Counts the calls of every C function declared in _ffi (test_zz_ffi_coverage reads it).

    The package calls `_ffi.<name>` at call time, so wrapping the module attributes sees every
    call the binding makes."""
    originals = {}
    for name in _ffi.PROTOTYPES:
        f = getattr(_ffi, name)
        originals[name] = f

        def counted(*args, _f=f, _name=name):  # type: ignore[no-untyped-def]
            _CALLS[_name] += 1
            return _f(*args)

        counted.__name__ = name
        setattr(_ffi, name, counted)
    yield _CALLS
    for name, f in originals.items():
        setattr(_ffi, name, f)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> str:
    """A fresh host root for this test."""
    return str(tmp_path / "host")


@pytest.fixture
def svc(root: str) -> Iterator["vmrepl.Service"]:
    with vmrepl.open(f"local:{root}", host_name="hv-test") as s:
        yield s


@pytest.fixture
def vm(svc: "vmrepl.Service") -> "vmrepl.Instance":
    return svc.define_system(name="web01", disks=[16 * MiB])


def write(svc: "vmrepl.Service", vm: object, offset: int, data: bytes, disk: int = 0) -> None:
    """Writes into a VM's raw disk image, as its workload would."""
    with open(svc.disk_path(vm, disk), "r+b") as f:  # type: ignore[arg-type]
        f.seek(offset)
        f.write(data)


def long_digest_vm(svc: "vmrepl.Service", name: str = "big") -> "vmrepl.Instance":
    """A VM whose digest runs for about a second: a 64 GiB sparse disk (1 Mi blocks of 64 KiB)
    with data at several places."""
    vm = svc.define_system(name=name, disks=[64 * GiB])
    for off in (0, 7 * GiB + 12345, 33 * GiB, 64 * GiB - MiB):
        write(svc, vm, off, os.urandom(64 * 1024))
    return vm


def four_gib_vm(svc: "vmrepl.Service", name: str = "four") -> "vmrepl.Instance":
    """A 4 GiB sparse disk with data written at several places."""
    vm = svc.define_system(name=name, disks=[4 * GiB])
    for off in (0, GiB, 2 * GiB + 4096, 4 * GiB - MiB):
        write(svc, vm, off, os.urandom(MiB))
    return vm
