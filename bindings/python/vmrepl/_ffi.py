"""The C ABI of libvmrepl (capi/include/vmrepl/vmrepl.h) declared for ctypes.

Every C function is declared exactly once, here, through :func:`ffi` (argtypes, restype and
errcheck), as python-libarchive-c does in libarchive/ffi.py. The rest of the package calls the
module attributes (``_ffi.vmr_open(...)``) and never touches ctypes prototypes itself.

Functions returning a ``vmr_status`` get :func:`check_status` as errcheck: 0 and 4096 pass,
any other number raises the matching :class:`vmrepl.Error` subclass with the thread-local
``vmr_last_error_message()``. ctypes runs the errcheck on the calling thread right after the
call, so the message is always the one of that call.

Library search order (DESIGN.md): a ``libvmrepl.so*`` inside the package directory, then the
path in ``VMREPL_LIBRARY``, then the system library path. A library whose
``vmr_abi_version()`` is older than :data:`ABI_VERSION` is refused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Callable, Dict, List, Optional, Sequence

from .errors import error_for

__all__ = ["ABI_VERSION", "LIBRARY_PATH", "PROTOTYPES", "ffi", "check_status", "take_string"]

#: The ABI (VMR_ABI_VERSION) this binding is written against.
ABI_VERSION = 1

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ENV = "VMREPL_LIBRARY"


def _load() -> "tuple[ctypes.CDLL, str]":
    """Finds and loads libvmrepl; ImportError naming every place tried otherwise."""
    tried: List[str] = []
    # 1. Next to the package (a wheel or an install that ships the library inside vmrepl/).
    for pattern in ("libvmrepl.so", "libvmrepl.so.*"):
        for path in sorted(glob.glob(os.path.join(_PACKAGE_DIR, pattern))):
            try:
                return ctypes.CDLL(path), path
            except OSError as e:
                tried.append(f"{path}: {e}")
    # 2. VMREPL_LIBRARY: when set, it is the caller's explicit choice; a wrong value is an
    #    error, never a silent fall-through to some other copy of the library.
    env = os.environ.get(_ENV)
    if env:
        try:
            return ctypes.CDLL(env), env
        except OSError as e:
            raise ImportError(
                f"vmrepl: cannot load the library named by {_ENV}={env!r}: {e}"
            ) from None
    # 3. The system library path.
    names = [n for n in (ctypes.util.find_library("vmrepl"), "libvmrepl.so.1", "libvmrepl.so") if n]
    for name in names:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            tried.append(f"{name}: {e}")
    detail = "; ".join(tried) if tried else "nothing found"
    raise ImportError(
        "vmrepl: libvmrepl.so not found. Put it next to the package "
        f"({_PACKAGE_DIR}), set {_ENV}=/path/to/libvmrepl.so, or install it on the system "
        f"library path (build it with `cmake --build <dir> --target vmrepl`). Tried: {detail}"
    )


_lib, LIBRARY_PATH = _load()


# ---- types -----------------------------------------------------------------------------------


class vmr_service(Structure):
    """Opaque ``vmr_service``."""


class vmr_job(Structure):
    """Opaque ``vmr_job``."""


class vmr_instance(Structure):
    """Opaque ``vmr_instance``."""


class vmr_list(Structure):
    """Opaque ``vmr_list``."""


ServiceP = POINTER(vmr_service)
JobP = POINTER(vmr_job)
InstanceP = POINTER(vmr_instance)
ListP = POINTER(vmr_list)
vmr_status = c_uint32
#: ``char *`` returned through an out-parameter, to be freed with vmr_free.
OwnedString = POINTER(c_char)
#: ``void (*vmr_job_callback)(vmr_job *job, void *userdata)``
JOB_CALLBACK = CFUNCTYPE(None, JobP, c_void_p)


# ---- the helper ------------------------------------------------------------------------------

#: name -> (argtypes, restype) of every declared function, for introspection and tests.
PROTOTYPES: Dict[str, "tuple[Sequence[Any], Any]"] = {}


def check_status(result: int, func: Any, args: Any) -> int:
    """errcheck of every ``vmr_status`` function: raises on a non-zero status other than 4096."""
    if result == 0 or result == 4096:
        return result
    raise error_for(result, _last_error_message())


def _missing(name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        raise error_for(
            32770,
            f"{name} is not in the loaded libvmrepl ({LIBRARY_PATH}, ABI {_abi}); "
            "a newer library is needed for this method",
        )

    call.__name__ = name
    return call


def ffi(
    name: str,
    argtypes: Sequence[Any],
    restype: Any,
    errcheck: Optional[Callable[..., Any]] = None,
    *,
    optional: bool = False,
) -> Any:
    """Declares C function ``name`` once: ``vmr_x = ffi("vmr_x", argtypes, restype, errcheck)``.

    ``optional=True`` is for functions newer than ABI_VERSION: when the loaded library lacks
    the symbol, calling it raises vmrepl.NotSupported instead of failing at import.
    """
    try:
        f = getattr(_lib, name)
    except AttributeError:
        if not optional:
            raise ImportError(f"vmrepl: {LIBRARY_PATH} has no symbol {name}") from None
        f = _missing(name)
    else:
        f.argtypes = list(argtypes)
        f.restype = restype
        if errcheck is not None:
            f.errcheck = errcheck
    PROTOTYPES[name] = (tuple(argtypes), restype)
    return f


# ---- library ---------------------------------------------------------------------------------

vmr_abi_version = ffi("vmr_abi_version", [], c_uint32)
vmr_version = ffi("vmr_version", [], c_char_p)
vmr_status_name = ffi("vmr_status_name", [vmr_status], c_char_p)
vmr_last_error_message = ffi("vmr_last_error_message", [], c_char_p)
vmr_free = ffi("vmr_free", [c_void_p], None)


def _last_error_message() -> str:
    return (vmr_last_error_message() or b"").decode("utf-8", "replace")


_abi = vmr_abi_version()
if _abi < ABI_VERSION:
    raise ImportError(
        f"vmrepl: {LIBRARY_PATH} has ABI {_abi}; this binding needs ABI {ABI_VERSION} or newer"
    )

# ---- service ---------------------------------------------------------------------------------

vmr_open = ffi("vmr_open", [c_char_p, c_char_p, POINTER(ServiceP)], vmr_status, check_status)
vmr_close = ffi("vmr_close", [ServiceP], None)
vmr_service_info = ffi("vmr_service_info", [ServiceP, POINTER(InstanceP)], vmr_status, check_status)
vmr_service_fd = ffi("vmr_service_fd", [ServiceP], c_int)
vmr_service_dispatch = ffi("vmr_service_dispatch", [ServiceP], vmr_status, check_status)

# ---- virtual machines ------------------------------------------------------------------------

vmr_define_system = ffi(
    "vmr_define_system", [ServiceP, c_char_p, POINTER(InstanceP)], vmr_status, check_status
)
vmr_get_system = ffi(
    "vmr_get_system", [ServiceP, c_char_p, POINTER(InstanceP)], vmr_status, check_status
)
vmr_list_systems = ffi("vmr_list_systems", [ServiceP, POINTER(ListP)], vmr_status, check_status)
vmr_destroy_system = ffi("vmr_destroy_system", [ServiceP, c_char_p], vmr_status, check_status)
vmr_request_state_change = ffi(
    "vmr_request_state_change", [ServiceP, c_char_p, c_uint16, POINTER(JobP)], vmr_status, check_status
)
vmr_disk_path = ffi(
    "vmr_disk_path", [ServiceP, c_char_p, c_uint32, POINTER(OwnedString)], vmr_status, check_status
)
vmr_disk_mark_dirty = ffi(
    "vmr_disk_mark_dirty", [ServiceP, c_char_p, c_uint32, c_uint64, c_uint64],
    vmr_status, check_status, optional=True,
)
vmr_compute_digest = ffi(
    "vmr_compute_digest", [ServiceP, c_char_p, POINTER(JobP)], vmr_status, check_status
)

# ---- replication (Msvm_ReplicationService methods) -------------------------------------------
# Newer than the first ABI: declared optional, so an older library still imports and these
# raise vmrepl.NotSupported when called.

vmr_create_replication_relationship = ffi(
    "vmr_create_replication_relationship",
    [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_start_replication = ffi(
    "vmr_start_replication",
    [ServiceP, c_char_p, c_uint16, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_modify_replication_settings = ffi(
    "vmr_modify_replication_settings",
    [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_remove_replication_relationship = ffi(
    "vmr_remove_replication_relationship",
    [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_request_replication_state_change = ffi(
    "vmr_request_replication_state_change",
    [ServiceP, c_char_p, c_uint16, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_resynchronize = ffi(
    "vmr_resynchronize", [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_replicate_now = ffi(
    "vmr_replicate_now", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_test_replication_connection = ffi(
    "vmr_test_replication_connection",
    [ServiceP, c_char_p, c_uint16, c_uint16, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_get_replication_statistics = ffi(
    "vmr_get_replication_statistics", [ServiceP, c_char_p, POINTER(InstanceP)],
    vmr_status, check_status, optional=True,
)
vmr_get_replication_settings = ffi(
    "vmr_get_replication_settings", [ServiceP, c_char_p, POINTER(InstanceP)],
    vmr_status, check_status, optional=True,
)
vmr_list_recovery_points = ffi(
    "vmr_list_recovery_points", [ServiceP, c_char_p, POINTER(ListP)],
    vmr_status, check_status, optional=True,
)

# Failover, test failover and reverse (ABI 3).
vmr_initiate_failover = ffi(
    "vmr_initiate_failover", [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_revert_failover = ffi(
    "vmr_revert_failover", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_commit_failover = ffi(
    "vmr_commit_failover", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_test_replica_system = ffi(
    "vmr_test_replica_system", [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_reverse_replication_relationship = ffi(
    "vmr_reverse_replication_relationship", [ServiceP, c_char_p, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
#: Flags of vmr_reverse_replication_relationship_ex.
VMR_REVERSE_VERIFY_FULL = 1
vmr_reverse_replication_relationship_ex = ffi(
    "vmr_reverse_replication_relationship_ex", [ServiceP, c_char_p, c_char_p, c_uint32, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)

# Bandwidth limits (ABI 4): bytes/s, 0 = none; a NULL computer_system is the whole service.
vmr_set_bandwidth_limit = ffi(
    "vmr_set_bandwidth_limit", [ServiceP, c_char_p, c_uint64],
    vmr_status, check_status, optional=True,
)
vmr_get_bandwidth_limit = ffi(
    "vmr_get_bandwidth_limit", [ServiceP, c_char_p, POINTER(c_uint64)],
    vmr_status, check_status, optional=True,
)

# Recovery-server settings and authorization entries.
vmr_modify_service_settings = ffi(
    "vmr_modify_service_settings", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_get_service_settings = ffi(
    "vmr_get_service_settings", [ServiceP, POINTER(InstanceP)],
    vmr_status, check_status, optional=True,
)
vmr_add_authorization_entry = ffi(
    "vmr_add_authorization_entry", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_modify_authorization_entry = ffi(
    "vmr_modify_authorization_entry", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_remove_authorization_entry = ffi(
    "vmr_remove_authorization_entry", [ServiceP, c_char_p, POINTER(JobP)],
    vmr_status, check_status, optional=True,
)
vmr_list_authorization_entries = ffi(
    "vmr_list_authorization_entries", [ServiceP, POINTER(ListP)],
    vmr_status, check_status, optional=True,
)

# ---- jobs ------------------------------------------------------------------------------------

vmr_job_get = ffi("vmr_job_get", [JobP, POINTER(InstanceP)], vmr_status, check_status)
vmr_job_wait = ffi("vmr_job_wait", [JobP, c_int64], vmr_status, check_status)
vmr_job_cancel = ffi("vmr_job_cancel", [JobP], vmr_status, check_status)
vmr_job_state = ffi("vmr_job_state", [JobP], c_uint16)
vmr_job_error_code = ffi("vmr_job_error_code", [JobP], vmr_status)  # a value: no errcheck
vmr_job_set_callback = ffi(
    "vmr_job_set_callback", [JobP, JOB_CALLBACK, c_void_p], vmr_status, check_status
)
vmr_get_job = ffi("vmr_get_job", [ServiceP, c_char_p, POINTER(JobP)], vmr_status, check_status)
vmr_list_jobs = ffi("vmr_list_jobs", [ServiceP, POINTER(ListP)], vmr_status, check_status)
vmr_job_release = ffi("vmr_job_release", [JobP], None)

# ---- instances -------------------------------------------------------------------------------

vmr_instance_class = ffi("vmr_instance_class", [InstanceP], c_char_p)
vmr_instance_count = ffi("vmr_instance_count", [InstanceP], c_size_t)
vmr_instance_name_at = ffi("vmr_instance_name_at", [InstanceP, c_size_t], c_char_p)
vmr_instance_type = ffi(
    "vmr_instance_type",
    [InstanceP, c_char_p, POINTER(c_uint16), POINTER(c_int), POINTER(c_int)],
    vmr_status,
    check_status,
)
vmr_instance_get_u64 = ffi(
    "vmr_instance_get_u64", [InstanceP, c_char_p, POINTER(c_uint64)], vmr_status, check_status
)
vmr_instance_get_i64 = ffi(
    "vmr_instance_get_i64", [InstanceP, c_char_p, POINTER(c_int64)], vmr_status, check_status
)
vmr_instance_get_bool = ffi(
    "vmr_instance_get_bool", [InstanceP, c_char_p, POINTER(c_int)], vmr_status, check_status
)
vmr_instance_get_string = ffi(
    "vmr_instance_get_string", [InstanceP, c_char_p, POINTER(OwnedString)], vmr_status, check_status
)
vmr_instance_get_string_array = ffi(
    "vmr_instance_get_string_array",
    [InstanceP, c_char_p, POINTER(POINTER(c_char_p)), POINTER(c_size_t)],
    vmr_status,
    check_status,
)
vmr_instance_to_json = ffi(
    "vmr_instance_to_json", [InstanceP, POINTER(OwnedString)], vmr_status, check_status
)
vmr_instance_to_cim_xml = ffi(
    "vmr_instance_to_cim_xml", [InstanceP, POINTER(OwnedString)], vmr_status, check_status
)
vmr_instance_to_mof = ffi(
    "vmr_instance_to_mof", [InstanceP, POINTER(OwnedString)], vmr_status, check_status
)
vmr_instance_release = ffi("vmr_instance_release", [InstanceP], None)

vmr_list_size = ffi("vmr_list_size", [ListP], c_size_t)
vmr_list_get = ffi("vmr_list_get", [ListP, c_size_t], InstanceP)
vmr_list_release = ffi("vmr_list_release", [ListP], None)


# ---- string helpers --------------------------------------------------------------------------


def encode(s: str) -> bytes:
    """A str argument as the UTF-8 ``const char *`` the ABI takes."""
    if not isinstance(s, str):
        raise TypeError(f"expected str, got {type(s).__name__}")
    if "\x00" in s:
        # A C string stops at NUL: passing it would silently truncate the argument.
        raise error_for(32773, "argument contains a NUL character")
    return s.encode("utf-8")


def decode(b: Optional[bytes]) -> str:
    return "" if b is None else b.decode("utf-8", "replace")


def take_string(p: Any) -> str:
    """Copies an out ``char *`` into a str and frees it with vmr_free (NULL gives "")."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        vmr_free(p)


def take_string_array(table: Any, count: int) -> List[str]:
    """Copies a NULL-terminated ``char **`` (one allocation) and frees it with one vmr_free."""
    if not table:
        return []
    try:
        return [decode(table[i]) for i in range(count)]
    finally:
        vmr_free(ctypes.cast(table, c_void_p))


def status_name(code: int) -> str:
    return decode(vmr_status_name(code))


def library_version() -> str:
    return decode(vmr_version())
