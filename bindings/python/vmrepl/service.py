"""Service: one host's replication service (Msvm_ReplicationService) over the C ABI.

Methods mirror the C ABI in snake_case, one C function each. A method answers at once: it
returns its value, returns a :class:`vmrepl.Job` for long work (status 4096), or raises the
vmrepl.Error subclass of the status. "computer_system" arguments take a VM's object path,
GUID or name (str or uuid.UUID), or an :class:`vmrepl.Instance` of the VM (its Name is used).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import threading
import uuid
import weakref
from ctypes import byref, c_uint64
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Type, Union

from . import _ffi
from ._handle import Handle
from .cimtime import to_cim_datetime
from .enums import AuthenticationType, InitialReplicationType
from .errors import InvalidParameter, InvalidState
from .instance import Instance, instances_from_list
from .job import Job
from .settings import (
    AuthorizationSettingData,
    ReplicationServiceSettingData,
    ReplicationSettingData,
    SettingData,
    setting_data_text,
)

__all__ = ["Service", "open", "ComputerSystem", "Snapshot"]

#: What a "computer_system" argument accepts.
ComputerSystem = Union[str, uuid.UUID, Instance]

_VM_CLASSES = ("Msvm_ComputerSystem", "CIM_ComputerSystem")


def _computer_system(cs: ComputerSystem) -> bytes:
    if isinstance(cs, Instance):
        name = cs.get("Name")
        if cs.class_name not in _VM_CLASSES or not isinstance(name, str):
            raise TypeError(
                f"computer_system: an Instance of Msvm_ComputerSystem is needed, not {cs.class_name}"
            )
        return _ffi.encode(name)
    if isinstance(cs, uuid.UUID):
        return _ffi.encode(str(cs).upper())
    if isinstance(cs, str):
        return _ffi.encode(cs)
    raise TypeError(
        "computer_system must be an object path, GUID or name (str), a uuid.UUID or a VM "
        f"Instance, not {type(cs).__name__}"
    )


def _optional_text(value: Any, what: str) -> Optional[bytes]:
    """None stays NULL; a str or path becomes a UTF-8 C string."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str or None, not {type(value).__name__}")
    return _ffi.encode(value)


def _start_time(value: Union[None, str, _dt.datetime]) -> Optional[bytes]:
    """A StartTime: None (NULL: start now), a CIM datetime string or a datetime (naive = UTC)."""
    if isinstance(value, _dt.datetime):
        value = to_cim_datetime(value)
    return _optional_text(value, "start_time")


def _setting_text(
    cls: Type[SettingData],
    settings: Any,
    properties: Dict[str, Any],
    current: Optional[Callable[[], Optional[Mapping[str, Any]]]] = None,
) -> bytes:
    """The setting-data text of a method that takes ``settings`` and/or keyword ``properties``.

    * ``settings`` alone (a dataclass, dict, Instance or CIM-XML / MOF / JSON text) is passed as
      it is: what it leaves unset takes the spec's default in the engine;
    * keyword properties alone change those properties of ``current()`` (the settings in force,
      for the modify methods) or of an empty instance;
    * both: the properties override those of ``settings`` (a dataclass, dict or Instance).
    """
    if settings is None:
        if not properties:
            raise TypeError(f"{cls.CIM_CLASS}: pass the setting data or keyword properties")
        base = current() if current is not None else None
        try:
            data = cls.from_dict(base) if base is not None else cls()
        finally:
            if isinstance(base, Instance):
                base.close()
        return _ffi.encode(data.replace(**properties).to_json())
    if properties:
        if isinstance(settings, cls):
            return _ffi.encode(settings.replace(**properties).to_json())
        if isinstance(settings, Mapping):
            return _ffi.encode(cls.from_dict(settings).replace(**properties).to_json())
        raise TypeError(
            "keyword properties can be combined only with a dataclass, a dict or an Instance, "
            f"not {type(settings).__name__}"
        )
    return _ffi.encode(setting_data_text(settings))


#: What a "snapshot" argument accepts: a recovery point Instance, its InstanceID (or bare
#: RecoveryPointSequence), or None / "" for the latest point.
Snapshot = Union[None, str, int, Instance]

_POINT_CLASSES = ("Msvm_VirtualSystemSettingData", "CIM_VirtualSystemSettingData")

#: verify= of reverse_replication_relationship -> flags of vmr_reverse_replication_relationship_ex.
_REVERSE_VERIFY = {"full": _ffi.VMR_REVERSE_VERIFY_FULL}


def _snapshot(value: Snapshot) -> Optional[bytes]:
    """A recovery point: None (NULL: the latest), its InstanceID or sequence number, or an
    Instance from list_recovery_points (its InstanceID is used)."""
    if value is None:
        return None
    if isinstance(value, Instance):
        iid = value.get("InstanceID")
        if value.class_name not in _POINT_CLASSES or not isinstance(iid, str):
            raise TypeError(
                "snapshot: a recovery point (an Instance of Msvm_VirtualSystemSettingData from "
                f"list_recovery_points) is needed, not {value.class_name}"
            )
        return _ffi.encode(iid)
    if isinstance(value, str):
        return _ffi.encode(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _ffi.encode(str(_uint(value, 64, "snapshot")))
    raise TypeError(
        "snapshot must be a recovery point Instance, its InstanceID (str) or sequence number "
        f"(int), or None for the latest, not {type(value).__name__}"
    )


def _reverse_flags(verify: Optional[str]) -> int:
    """verify=None -> 0; "full" -> VMR_REVERSE_VERIFY_FULL; anything else InvalidParameter."""
    if verify is None:
        return 0
    flags = _REVERSE_VERIFY.get(verify) if isinstance(verify, str) else None
    if flags is None:
        raise InvalidParameter(f"verify {verify!r} is not supported (None or \"full\")")
    return flags


def _uint(value: int, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise InvalidParameter(f"{what} {value} is out of range (0..{(1 << bits) - 1})")
    return value


class Service:
    """An open replication service. Use :func:`vmrepl.open`; close with ``with`` or close().

    After close() every method raises vmrepl.InvalidState; jobs stay readable.
    """

    def __init__(self, uri: str, **options: Any) -> None:
        """Opens ``uri`` (``local:<absolute host root>``) with engine ``options`` (the options
        JSON of vmr_open; None means "default"):

        * ``host_name``: the name peers and connection points use (default: the machine's);
        * ``listen``: ``"127.0.0.1:0"`` starts the replication listener on any free port
          (``info().ListenPort`` tells which); absent = no listener;
        * ``hosts``: ``{"hv-b": "127.0.0.1"}``, connection point -> address, like /etc/hosts;
        * ``job_retention_s``, ``block_size``, ``hash`` ("xxh3-128" or "sha256"),
          ``zstd_level`` (-7..19), ``connect_timeout_ms``, ``io_timeout_ms``;
        * ``cycle_interval_override_s`` (tests): replaces every ReplicationInterval.
        """
        opts = {k: v for k, v in options.items() if v is not None}
        text = json.dumps(opts).encode("utf-8") if opts else None
        out = _ffi.ServiceP()
        _ffi.vmr_open(_ffi.encode(uri), text, byref(out))
        self._handle = Handle(out, _ffi.vmr_close, f"vmrepl.Service({uri})")
        self._uri = uri
        self._fd: int = _ffi.vmr_service_fd(out)
        self._lock = threading.Lock()
        self._readers: Dict[asyncio.AbstractEventLoop, int] = {}
        self._jobs: "weakref.WeakSet[Job]" = weakref.WeakSet()
        self._callback_errors: List[BaseException] = []

    # ---- service -----------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return self._uri

    def info(self) -> Instance:
        """The Msvm_ReplicationService instance: HostName, HostRoot, Version, BlockSize,
        HashAlgorithm, JobRetentionSeconds, ListenAddress, ListenPort and the
        Msvm_ReplicationServiceSettingData properties (RecoveryServerEnabled...)."""
        return self._instance(_ffi.vmr_service_info)

    def fileno(self) -> int:
        """The descriptor that becomes readable when job events are pending (for selectors and
        foreign event loops); call :meth:`dispatch` when it is."""
        with self._handle.use():
            return self._fd

    def dispatch(self) -> None:
        """Runs the pending job callbacks (progress callbacks, awaiting futures) on this thread.
        An exception raised by a progress callback is re-raised here."""
        with self._handle.use() as ptr:
            _ffi.vmr_service_dispatch(ptr)
        with self._lock:
            errors, self._callback_errors = self._callback_errors, []
        if errors:
            raise errors[0]

    # ---- virtual machines (Msvm_ComputerSystem) ----------------------------------------------

    def define_system(
        self, name: str, disks: Iterable[int], id: Optional[Union[str, uuid.UUID]] = None
    ) -> Instance:
        """Defines VM ``name`` with raw sparse disks of the given sizes in bytes (multiples of
        4096); ``id`` is its GUID (generated when None). Returns the Msvm_ComputerSystem."""
        definition: Dict[str, Any] = {"name": name}
        definition["disks"] = list(disks) if isinstance(disks, (list, tuple, range)) else disks
        if id is not None:
            definition["id"] = str(id).upper() if isinstance(id, uuid.UUID) else id
        text = json.dumps(definition).encode("utf-8")
        return self._instance(_ffi.vmr_define_system, text)

    def get_system(self, computer_system: ComputerSystem) -> Instance:
        """The Msvm_ComputerSystem of a VM; FileNotFound when there is none."""
        return self._instance(_ffi.vmr_get_system, _computer_system(computer_system))

    def list_systems(self) -> List[Instance]:
        """Every VM of this host."""
        return self._list(_ffi.vmr_list_systems)

    def destroy_system(self, computer_system: ComputerSystem) -> None:
        """Deletes the VM and its disks. The VM must be off (SystemInUse otherwise)."""
        with self._handle.use() as ptr:
            _ffi.vmr_destroy_system(ptr, _computer_system(computer_system))

    def request_state_change(self, computer_system: ComputerSystem, state: int) -> Optional[Job]:
        """RequestStateChange on the VM: :class:`vmrepl.EnabledState` Running (2) or Off (3).
        Returns None when the change is done at once (today always), else its Job."""
        return self._job(
            _ffi.vmr_request_state_change, _computer_system(computer_system), _uint(state, 16, "state")
        )

    def disk_path(self, computer_system: ComputerSystem, disk: int = 0) -> str:
        """Path of the raw image of disk ``disk`` (0-based): where the workload writes."""
        with self._handle.use() as ptr:
            out = _ffi.OwnedString()
            _ffi.vmr_disk_path(ptr, _computer_system(computer_system), _uint(disk, 32, "disk"), byref(out))
            return _ffi.take_string(out)

    def disk_mark_dirty(self, computer_system: ComputerSystem, disk: int, offset: int, length: int) -> None:
        """The change feed: reports that the workload wrote ``[offset, offset + length)`` of disk
        ``disk``. Returns once the report is durable. The first call attaches the feed to the
        VM: after one more scanning cycle, cycles send the reported blocks without scanning the
        disk, so every later write must be reported. InvalidParameter names a bad disk, offset
        or length."""
        with self._handle.use() as ptr:
            _ffi.vmr_disk_mark_dirty(
                ptr,
                _computer_system(computer_system),
                _uint(disk, 32, "disk"),
                _uint(offset, 64, "offset"),
                _uint(length, 64, "length"),
            )

    def compute_digest(self, computer_system: ComputerSystem) -> Job:
        """ComputeDigest: block index and Merkle root of every disk. The job's final properties
        carry MerkleRoot, DiskMerkleRoots, HashAlgorithm, BlockSize, BlockCount, ZeroBlocks,
        BytesRead."""
        return self._started(_ffi.vmr_compute_digest, _computer_system(computer_system))

    # ---- replication (Msvm_ReplicationService methods) ---------------------------------------
    # Each method validates at once (InvalidParameter naming the property, InvalidState naming
    # the state found, FileNotFound for an unknown VM) and returns the Job doing the work.

    def create_replication_relationship(self, computer_system: ComputerSystem, settings: Any) -> Job:
        """CreateReplicationRelationship: enables replication of the VM to the recovery server
        that ``settings`` names (a :class:`vmrepl.ReplicationSettingData`, a dict, an Instance,
        or CIM-XML / MOF / JSON text). The job contacts the recovery server, which creates the
        replica VM (ReplicationMode 2, state 2); here the VM becomes mode 1, state 1. A
        recovery server that does not admit this host makes the job fail with AccessDenied."""
        return self._started(
            _ffi.vmr_create_replication_relationship,
            _computer_system(computer_system),
            _setting_text(ReplicationSettingData, settings, {}),
        )

    def start_replication(
        self,
        computer_system: ComputerSystem,
        type: int = InitialReplicationType.Network,  # noqa: A002 - the model's parameter
        export_location: Optional[str] = None,
        start_time: Union[None, str, _dt.datetime] = None,
    ) -> Job:
        """StartReplication: the initial replication. ``type`` is a
        :class:`vmrepl.InitialReplicationType`: Network (1) sends every non-zero block; Seeded
        (3) starts from a copy already in the replica VM's disks and sends only what differs.
        ``start_time`` None (or a past time) means now. Both sides end in state 3."""
        return self._started(
            _ffi.vmr_start_replication,
            _computer_system(computer_system),
            _uint(type, 16, "type"),
            _optional_text(export_location, "export_location"),
            _start_time(start_time),
        )

    def modify_replication_settings(
        self, computer_system: ComputerSystem, settings: Any = None, **properties: Any
    ) -> Job:
        """ModifyReplicationSettings. ``settings`` replaces the relationship's settings as given
        (unset properties take the spec's defaults); keyword properties alone change just those
        properties of the settings in force: ``modify_replication_settings(vm,
        RecoveryHistory=4)`` (read, change, write: not atomic against another writer)."""
        cs = _computer_system(computer_system)
        return self._started(
            _ffi.vmr_modify_replication_settings,
            cs,
            _setting_text(
                ReplicationSettingData,
                settings,
                properties,
                lambda: self.get_replication_settings(cs.decode("utf-8")),
            ),
        )

    def remove_replication_relationship(self, computer_system: ComputerSystem) -> Job:
        """RemoveReplicationRelationship: this side forgets the relationship (a primary also
        tells its recovery server). The replica VM is kept."""
        return self._started(_ffi.vmr_remove_replication_relationship, _computer_system(computer_system))

    def request_replication_state_change(self, computer_system: ComputerSystem, state: int) -> Job:
        """RequestReplicationStateChange: :class:`vmrepl.RequestedState` Suspend (7),
        Replicating (3, resume), CancelResynchronize (9), and for failover (the VM off):
        4 (SyncedReplicationComplete) on a primary prepares a planned failover (a final cycle,
        then state 4 and the VM stays off), 2 (WaitingToCompleteInitialReplication) makes an
        old primary a replica after an unplanned failover (mode 2, state 2), ready for the new
        primary's :meth:`reverse_replication_relationship`. InvalidState at once when the
        state found does not allow it."""
        return self._started(
            _ffi.vmr_request_replication_state_change,
            _computer_system(computer_system),
            _uint(state, 16, "state"),
        )

    def resynchronize(
        self, computer_system: ComputerSystem, start_time: Union[None, str, _dt.datetime] = None
    ) -> Job:
        """Resynchronize (on the primary): compares both sides' disks and sends only the blocks
        that differ (state 9 -> 10 -> 3); the replica's older recovery points are dropped."""
        return self._started(
            _ffi.vmr_resynchronize, _computer_system(computer_system), _start_time(start_time)
        )

    def replicate_now(self, computer_system: ComputerSystem) -> Job:
        """One replication cycle now, besides the ReplicationInterval timer (primary, state 3).
        The job's final properties carry CycleId, BlocksSent, DataBytesSent, WireBytesSent,
        DiskMerkleRoots and ChangeSource ("scan" or "change-feed")."""
        return self._started(_ffi.vmr_replicate_now, _computer_system(computer_system))

    def test_replication_connection(
        self,
        recovery_connection_point: str,
        port: int,
        authentication_type: int = AuthenticationType.Kerberos,
        thumbprint: Optional[str] = None,
    ) -> Job:
        """TestReplicationConnection: whether replication to that recovery server could be
        enabled. The job fails with SystemNotAvailable when nothing answers, AccessDenied
        when the server does not admit this host."""
        return self._started(
            _ffi.vmr_test_replication_connection,
            _ffi.encode(recovery_connection_point),
            _uint(port, 16, "port"),
            _uint(authentication_type, 16, "authentication_type"),
            _optional_text(thumbprint, "thumbprint"),
        )

    def get_replication_statistics(self, computer_system: ComputerSystem) -> Instance:
        """The Msvm_ReplicationStatistics of the VM's relationship (this side's counters:
        ReplicationSuccessCount, ReplicationSize, MaxReplicationSize...)."""
        return self._instance(_ffi.vmr_get_replication_statistics, _computer_system(computer_system))

    def get_replication_settings(self, computer_system: ComputerSystem) -> Instance:
        """The VM's Msvm_ReplicationSettingData (InvalidState without a relationship)."""
        return self._instance(_ffi.vmr_get_replication_settings, _computer_system(computer_system))

    def list_recovery_points(self, computer_system: ComputerSystem) -> List[Instance]:
        """Replica side: the recovery points (Msvm_VirtualSystemSettingData), oldest first; the
        latest has IsLatest TRUE. InvalidState on a VM that is not a replica."""
        return self._list(_ffi.vmr_list_recovery_points, _computer_system(computer_system))

    # ---- failover, test failover and reverse (spec 8-10) -------------------------------------
    # "snapshot" arguments take a recovery point from list_recovery_points (the Instance or its
    # InstanceID) or None for the latest. Newer than ABI 2: NotSupported on an older library.

    def initiate_failover(self, computer_system: ComputerSystem, snapshot: Snapshot = None) -> Job:
        """InitiateFailover (replica, VM off): the recovery point becomes the VM's disks and the
        replica goes 12 -> 5 (Recovered); FailedOverReplicationType tells a planned failover (3)
        from an unplanned one. The job fails with SystemInUse while the primary is reachable
        and its VM runs."""
        return self._started(
            _ffi.vmr_initiate_failover, _computer_system(computer_system), _snapshot(snapshot)
        )

    def revert_failover(self, computer_system: ComputerSystem) -> Job:
        """RevertFailover: on a replica in 5 the failover disks are dropped and replication goes
        on (3); on a primary in 4 the prepared planned failover is cancelled (3)."""
        return self._started(_ffi.vmr_revert_failover, _computer_system(computer_system))

    def commit_failover(self, computer_system: ComputerSystem) -> Job:
        """CommitFailover (replica in 5): the failover point becomes the only one (6,
        Committed)."""
        return self._started(_ffi.vmr_commit_failover, _computer_system(computer_system))

    def test_replica_system(self, computer_system: ComputerSystem, snapshot: Snapshot = None) -> Job:
        """TestReplicaSystem (replica in 3 or 7): a separate VM "<name> - Test"
        (ReplicationMode 3) from a recovery point while replication goes on. Its GUID is the
        job's ResultingSystem property; remove it with :meth:`destroy_system`. One test VM at
        a time (InvalidState)."""
        return self._started(
            _ffi.vmr_test_replica_system, _computer_system(computer_system), _snapshot(snapshot)
        )

    def reverse_replication_relationship(
        self, computer_system: ComputerSystem, settings: Any, verify: Optional[str] = None
    ) -> Job:
        """ReverseReplicationRelationship, on the failed-over replica (mode 2, state 5 or 6):
        the old primary, named by ``settings``' RecoveryConnectionPoint and
        RecoveryServerPortNumber (a :class:`vmrepl.ReplicationSettingData`, a dict, an
        Instance, or CIM-XML / MOF / JSON text), becomes this VM's replica and is sent only the
        blocks either side changed since their common point. The old primary must be a
        recovery server admitting this host, its VM off, and prepared (planned: state 4) or
        made a replica (unplanned: ``request_replication_state_change(vm, 2)``). Planned: this
        VM ends mode 1 state 3; unplanned: state 1, and :meth:`start_replication` sends what
        changed since. ``verify="full"`` re-reads and re-hashes both sides' disks before the
        commit; any other value than None or "full" raises InvalidParameter at once. The job's
        final properties carry ChangeSource, CommonPoint, BlocksSent, DataBytesSent, WireBytes
        and DiskMerkleRoots."""
        flags = _reverse_flags(verify)
        cs = _computer_system(computer_system)
        text = _setting_text(ReplicationSettingData, settings, {})
        if flags == 0:
            return self._started(_ffi.vmr_reverse_replication_relationship, cs, text)
        return self._started(_ffi.vmr_reverse_replication_relationship_ex, cs, text, flags)

    # ---- bandwidth limits (ABI 4: NotSupported on an older library) ---------------------------

    def set_bandwidth_limit(self, bytes_per_s: int, vm: Optional[ComputerSystem] = None) -> None:
        """Caps the wire bytes per second of replication sends: of the relationship of ``vm``
        (a VM's name, GUID, object path or Instance), or of the whole service when ``vm`` is
        None. 0 removes the limit. A relationship's limit is kept with the relationship (it
        survives a restart); the service's lasts as long as this service. Both apply at once,
        to transfers in progress too, and the smaller non-zero one wins; a job's
        ``BandwidthLimit`` property shows the limit in force. TypeError for a non-int, ValueError
        for a negative value, at once; InvalidParameter for a limit under the block size (65536
        by default), InvalidState for a VM without a replication relationship, FileNotFound for
        an unknown VM."""
        if isinstance(bytes_per_s, bool) or not isinstance(bytes_per_s, int):
            raise TypeError(f"bytes_per_s must be an int, not {type(bytes_per_s).__name__}")
        if bytes_per_s < 0:
            raise ValueError(f"bytes_per_s must be >= 0 (0 = no limit), not {bytes_per_s}")
        if bytes_per_s >= 1 << 64:
            raise ValueError(f"bytes_per_s {bytes_per_s} is out of range (0..{(1 << 64) - 1})")
        cs = None if vm is None else _computer_system(vm)
        with self._handle.use() as ptr:
            _ffi.vmr_set_bandwidth_limit(ptr, cs, bytes_per_s)

    def bandwidth_limit(self, vm: Optional[ComputerSystem] = None) -> int:
        """The bandwidth limit in bytes per second (0 = none) of the relationship of ``vm``, or
        of the whole service when ``vm`` is None. A VM without a limit of its own gives 0 (the
        service's limit may still apply to it); FileNotFound for an unknown VM."""
        cs = None if vm is None else _computer_system(vm)
        with self._handle.use() as ptr:
            out = c_uint64()
            _ffi.vmr_get_bandwidth_limit(ptr, cs, byref(out))
            return out.value

    # ---- recovery server (Msvm_ReplicationServiceSettingData, authorization entries) ---------

    def modify_service_settings(self, settings: Any = None, **properties: Any) -> Job:
        """ModifyServiceSettings: this host's recovery-server settings. Keyword properties alone
        change just those of the settings in force: ``modify_service_settings(
        RecoveryServerEnabled=True, AllowedAuthenticationType=1)``; ``settings`` (a
        :class:`vmrepl.ReplicationServiceSettingData`, dict, Instance or text) is taken as given
        (unset properties take the spec's defaults)."""
        return self._started(
            _ffi.vmr_modify_service_settings,
            _setting_text(ReplicationServiceSettingData, settings, properties, self.get_service_settings),
        )

    def get_service_settings(self) -> Instance:
        """This host's Msvm_ReplicationServiceSettingData."""
        return self._instance(_ffi.vmr_get_service_settings)

    def add_authorization_entry(self, entry: Any = None, **properties: Any) -> Job:
        """AddAuthorizationEntry: admit primaries and say where their replicas go, from a
        :class:`vmrepl.AuthorizationSettingData`, dict, Instance or text, or keyword properties:
        ``add_authorization_entry(AllowedPrimaryHostSystem="hv-a", TrustGroup="DEFAULT",
        ReplicaStorageLocation="/srv/b/replicas")``. An entry for the same host makes the job
        fail with InvalidParameter."""
        return self._started(
            _ffi.vmr_add_authorization_entry, _setting_text(AuthorizationSettingData, entry, properties)
        )

    def modify_authorization_entry(self, entry: Any = None, **properties: Any) -> Job:
        """ModifyAuthorizationEntry: changes the entry whose AllowedPrimaryHostSystem ``entry``
        names. Keyword properties alone (AllowedPrimaryHostSystem among them) change just those
        of the entry in force: ``modify_authorization_entry(AllowedPrimaryHostSystem="hv-a",
        TrustGroup="GOLD")``."""
        current = None
        if entry is None:
            host = properties.get("AllowedPrimaryHostSystem")
            if not isinstance(host, str):
                raise TypeError("modify_authorization_entry: AllowedPrimaryHostSystem names the entry to modify")
            current = lambda: self._authorization_entry(host)  # noqa: E731
        return self._started(
            _ffi.vmr_modify_authorization_entry,
            _setting_text(AuthorizationSettingData, entry, properties, current),
        )

    def remove_authorization_entry(self, allowed_primary_host_system: str) -> Job:
        """RemoveAuthorizationEntry by its AllowedPrimaryHostSystem; FileNotFound at once when
        there is no such entry."""
        return self._started(_ffi.vmr_remove_authorization_entry, _ffi.encode(allowed_primary_host_system))

    def list_authorization_entries(self) -> List[Instance]:
        """The authorization entries (Msvm_ReplicationAuthorizationSettingData)."""
        return self._list(_ffi.vmr_list_authorization_entries)

    def _authorization_entry(self, host: str) -> Optional[Dict[str, Any]]:
        entries = self.list_authorization_entries()
        try:
            for e in entries:
                if str(e.get("AllowedPrimaryHostSystem") or "").lower() == host.lower():
                    return e.to_dict()
            return None
        finally:
            for e in entries:
                e.close()

    # ---- jobs (Msvm_ConcreteJob) -------------------------------------------------------------

    def get_job(self, instance_id: str) -> Job:
        """A new handle on a job of this service by InstanceID (kept job_retention_s after it
        ends); FileNotFound when there is none, InvalidParameter for a malformed id."""
        with self._handle.use() as ptr:
            out = _ffi.JobP()
            _ffi.vmr_get_job(ptr, _ffi.encode(str(instance_id)), byref(out))
        return Job(self, out)

    def list_jobs(self) -> List[Instance]:
        """A snapshot of every job the service keeps (Msvm_ConcreteJob instances)."""
        return self._list(_ffi.vmr_list_jobs)

    # ---- plumbing: each C function above goes through one of these ---------------------------

    def _instance(self, fn: Callable[..., int], *args: Any) -> Instance:
        with self._handle.use() as ptr:
            out = _ffi.InstanceP()
            fn(ptr, *args, byref(out))
        return Instance._own(out)

    def _list(self, fn: Callable[..., int], *args: Any) -> List[Instance]:
        with self._handle.use() as ptr:
            out = _ffi.ListP()
            fn(ptr, *args, byref(out))
        return instances_from_list(out)

    def _job(self, fn: Callable[..., int], *args: Any) -> Optional[Job]:
        with self._handle.use() as ptr:
            out = _ffi.JobP()
            fn(ptr, *args, byref(out))
        return Job(self, out) if out else None

    def _started(self, fn: Callable[..., int], *args: Any) -> Job:
        job = self._job(fn, *args)
        if job is None:  # 0 without a job: the C ABI promised 4096 for this method
            raise InvalidState(f"{getattr(fn, '__name__', 'call')} returned no job")
        return job

    # ---- asyncio -----------------------------------------------------------------------------

    def _add_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._handle.use():
            with self._lock:
                n = self._readers.get(loop, 0)
                self._readers[loop] = n + 1
            if n == 0:
                loop.add_reader(self._fd, self._on_readable)

    def _remove_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            n = self._readers.get(loop, 0)
            if n == 0:
                return  # close() already took it away
            if n > 1:
                self._readers[loop] = n - 1
                return
            del self._readers[loop]
        if not loop.is_closed():
            loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        if not self._handle.closed:
            self.dispatch()

    def _callback_failed(self, e: BaseException) -> None:
        with self._lock:
            self._callback_errors.append(e)

    # ---- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        """Cancels running jobs, waits for them to stop, and releases the service. Idempotent.
        Awaiting coroutines get their job's outcome."""
        if self._handle.closed:
            return
        with self._lock:
            readers, self._readers = self._readers, {}
        for loop in readers:
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.remove_reader(self._fd)
            else:
                loop.call_soon_threadsafe(loop.remove_reader, self._fd)
        self._handle.close()  # vmr_close: running jobs end (Terminated) before it returns
        for job in list(self._jobs):
            job._resolve_futures()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<vmrepl.Service {self._uri!r}{' (closed)' if self.closed else ''}>"


def open(uri: str, **options: Any) -> Service:  # noqa: A001 - the API's name
    """Opens a replication service: ``with vmrepl.open("local:/srv/a", host_name="hv-a",
    listen="127.0.0.1:0") as s:``.

    Options (the engine's options JSON, see :class:`Service`): host_name, listen, hosts,
    job_retention_s, block_size, hash, zstd_level, connect_timeout_ms, io_timeout_ms,
    cycle_interval_override_s. Unknown options raise InvalidParameter, wrong types
    IncorrectDataType.
    """
    return Service(uri, **options)
