"""Loading the library, versions, status names, the error table."""

from __future__ import annotations

import ctypes.util
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys

import pytest

import vmrepl
from conftest import BINDING

ERROR_CLASSES = {
    32768: vmrepl.Failed,
    32769: vmrepl.AccessDenied,
    32770: vmrepl.NotSupported,
    32771: vmrepl.Unknown,
    32772: vmrepl.Timeout,
    32773: vmrepl.InvalidParameter,
    32774: vmrepl.SystemInUse,
    32775: vmrepl.InvalidState,
    32776: vmrepl.IncorrectDataType,
    32777: vmrepl.SystemNotAvailable,
    32778: vmrepl.OutOfMemory,
    32779: vmrepl.FileNotFound,
}


def test_versions_and_library_path() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", vmrepl.library_version())
    assert vmrepl.abi_version() >= vmrepl.ABI_VERSION == 1
    assert os.path.exists(vmrepl.library_path)


def test_status_names_come_from_the_library() -> None:
    assert vmrepl.status_name(0) == "Completed"
    assert vmrepl.status_name(4096) == "JobStarted"
    assert vmrepl.status_name(32775) == "InvalidState"
    assert vmrepl.status_name(1234) == "Unknown"


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
def test_error_table_matches_the_library(code: int) -> None:
    from vmrepl.errors import error_for

    cls = ERROR_CLASSES[code]
    e = error_for(code, "why")
    assert type(e) is cls and isinstance(e, vmrepl.Error)
    assert e.code == code == vmrepl.Status[cls.__name__]
    assert e.name == cls.__name__ == vmrepl.status_name(code)
    assert e.message == "why"
    assert str(e) == f"why ({cls.__name__}, {code})"
    # Subclasses can be raised by name; the code is implied.
    assert cls("x").code == code


def test_unknown_code_gives_the_base_class() -> None:
    from vmrepl.errors import error_for

    e = error_for(40000, "odd")
    assert type(e) is vmrepl.Error and e.code == 40000 and e.name == "Unknown"


def test_engine_errors_pickle(svc: vmrepl.Service) -> None:
    with pytest.raises(vmrepl.FileNotFound) as ei:
        svc.get_system("no-such-vm")
    again = pickle.loads(pickle.dumps(ei.value))
    assert type(again) is vmrepl.FileNotFound
    assert (again.code, again.name, again.message) == (32779, "FileNotFound", ei.value.message)


def _import_in_subprocess(env_updates: dict, package_dir: pathlib.Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VMREPL_LIBRARY", "PYTHONPATH")}
    env.update(env_updates)
    env["PYTHONPATH"] = str(package_dir)
    code = "import vmrepl; print(vmrepl.library_path)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_bad_vmrepl_library_is_a_clear_import_error() -> None:
    r = _import_in_subprocess({"VMREPL_LIBRARY": "/nonexistent/libvmrepl.so"}, BINDING)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "VMREPL_LIBRARY" in r.stderr and "/nonexistent" in r.stderr


@pytest.mark.skipif(bool(ctypes.util.find_library("vmrepl")), reason="a libvmrepl is installed system-wide")
def test_no_library_anywhere_is_a_clear_import_error() -> None:
    r = _import_in_subprocess({}, BINDING)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "libvmrepl.so not found" in r.stderr and "VMREPL_LIBRARY" in r.stderr


def test_library_next_to_the_package_comes_first(tmp_path: pathlib.Path) -> None:
    copy = tmp_path / "site"
    shutil.copytree(BINDING / "vmrepl", copy / "vmrepl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.realpath(vmrepl.library_path), copy / "vmrepl" / "libvmrepl.so.1")
    # Even a wrong VMREPL_LIBRARY is not looked at: the package's own library wins.
    r = _import_in_subprocess({"VMREPL_LIBRARY": "/nonexistent/libvmrepl.so"}, copy)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy / "vmrepl" / "libvmrepl.so.1")


def test_a_function_newer_than_the_library_is_not_supported() -> None:
    from vmrepl import _ffi

    name = "vmr_not_in_this_library"
    try:
        f = _ffi.ffi(name, [], None, optional=True)  # how the next ABI's functions are declared
        with pytest.raises(vmrepl.NotSupported, match="newer library"):
            f()
    finally:
        _ffi.PROTOTYPES.pop(name, None)
    with pytest.raises(ImportError, match=name):
        _ffi.ffi(name, [], None)  # a required one is an ImportError at import time
    assert name not in _ffi.PROTOTYPES


def test_not_found_is_file_not_found_and_raised_by_the_engine(svc: vmrepl.Service) -> None:
    """32779 under the issue's name: vmrepl.NotFound is vmrepl.FileNotFound (one class)."""
    assert vmrepl.NotFound is vmrepl.FileNotFound
    assert "NotFound" in vmrepl.__all__ and "FileNotFound" in vmrepl.__all__
    caught = None
    try:
        svc.get_system("no-such-vm")  # a real unknown VM, not a constructed error
    except vmrepl.NotFound as e:
        caught = e
    assert caught is not None and caught.code == 32779 == vmrepl.Status.FileNotFound
    assert type(caught) is vmrepl.FileNotFound and isinstance(caught, vmrepl.Error)
    assert caught.message and caught.job_id is None
    with pytest.raises(vmrepl.NotFound):
        svc.destroy_system("ghost")
