"""vmrepl: VM disk replication on the Hyper-V Replica model (Python binding over libvmrepl).

::

    import vmrepl

    with vmrepl.open("local:/srv/a", host_name="hv-a") as svc:
        vm = svc.define_system(name="web01", disks=[256 << 20])
        with open(svc.disk_path(vm, 0), "r+b") as disk:
            disk.write(b"hello")
        root = svc.compute_digest(vm).wait().MerkleRoot

    # Replication: hv-b a recovery server admitting hv-a, hv-a replicating web01 to it.
    with vmrepl.open("local:/srv/b", host_name="hv-b", listen="127.0.0.1:0") as b, \
         vmrepl.open("local:/srv/a", host_name="hv-a", hosts={"hv-b": "127.0.0.1"}) as a:
        b.modify_service_settings(RecoveryServerEnabled=True, AllowedAuthenticationType=1).wait()
        b.add_authorization_entry(AllowedPrimaryHostSystem="hv-a", TrustGroup="DEFAULT",
                                  ReplicaStorageLocation="/srv/b/replicas").wait()
        settings = vmrepl.ReplicationSettingData(RecoveryConnectionPoint="hv-b",
                       RecoveryServerPortNumber=b.info().ListenPort, AuthenticationType=1)
        a.create_replication_relationship("web01", settings).wait()
        a.start_replication("web01", vmrepl.InitialReplicationType.Network).wait()
        a.replicate_now("web01").wait()

Everything goes through the stable C ABI (capi/include/vmrepl/vmrepl.h) with ctypes. Names,
numbers and return codes are the model's (Msvm_* classes, WMI numbers).
"""

from __future__ import annotations

from . import _ffi
from .cimtime import from_cim_datetime, to_cim_datetime, to_cim_interval
from .enums import (
    AuthenticationType,
    CimType,
    EnabledState,
    InitialReplicationType,
    JobRequestedState,
    JobState,
    JobType,
    ReplicationHealth,
    ReplicationMode,
    ReplicationState,
    ReplicationType,
    RequestedState,
    Status,
)
from .errors import (
    AccessDenied,
    Error,
    Failed,
    FileNotFound,
    IncorrectDataType,
    InvalidParameter,
    InvalidState,
    NotFound,
    NotSupported,
    OutOfMemory,
    SystemInUse,
    SystemNotAvailable,
    Timeout,
    Unknown,
)
from .instance import Instance
from .job import Job, Progress
from .service import ComputerSystem, Service, Snapshot, open
from .settings import (
    AuthorizationSettingData,
    ReplicationServiceSettingData,
    ReplicationSettingData,
    SettingData,
    setting_data_text,
)

__version__ = "0.1.0"

#: Path of the loaded libvmrepl.
library_path: str = _ffi.LIBRARY_PATH
#: The ABI this binding needs (VMR_ABI_VERSION).
ABI_VERSION: int = _ffi.ABI_VERSION


def library_version() -> str:
    """vmr_version() of the loaded library (``"0.1.0"``)."""
    return _ffi.library_version()


def abi_version() -> int:
    """vmr_abi_version() of the loaded library."""
    return int(_ffi.vmr_abi_version())


def status_name(code: int) -> str:
    """vmr_status_name(): ``status_name(32775) == "InvalidState"``."""
    return _ffi.status_name(int(code))


__all__ = [
    "open",
    "Service",
    "Job",
    "Progress",
    "Instance",
    "ComputerSystem",
    "Snapshot",
    "SettingData",
    "ReplicationSettingData",
    "ReplicationServiceSettingData",
    "AuthorizationSettingData",
    "setting_data_text",
    "from_cim_datetime",
    "to_cim_datetime",
    "to_cim_interval",
    "library_version",
    "abi_version",
    "status_name",
    "library_path",
    "ABI_VERSION",
    # enums
    "Status",
    "ReplicationState",
    "ReplicationMode",
    "ReplicationHealth",
    "JobState",
    "JobType",
    "RequestedState",
    "EnabledState",
    "InitialReplicationType",
    "ReplicationType",
    "AuthenticationType",
    "JobRequestedState",
    "CimType",
    # errors
    "Error",
    "Failed",
    "AccessDenied",
    "NotSupported",
    "Unknown",
    "Timeout",
    "InvalidParameter",
    "SystemInUse",
    "InvalidState",
    "IncorrectDataType",
    "SystemNotAvailable",
    "OutOfMemory",
    "FileNotFound",
    "NotFound",
]
