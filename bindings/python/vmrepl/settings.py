"""Setting data as dataclasses, and the text the C ABI takes.

* :class:`ReplicationSettingData`: Msvm_ReplicationSettingData (spec §3), one relationship;
* :class:`ReplicationServiceSettingData`: Msvm_ReplicationServiceSettingData (spec §4), one
  host's recovery-server settings;
* :class:`AuthorizationSettingData`: Msvm_ReplicationAuthorizationSettingData (spec §4), one
  authorization entry of a recovery server.

The C ABI accepts setting data as a CIM-XML embedded instance, MOF instance text or a JSON
object; :func:`setting_data_text` turns whatever a caller holds (one of these dataclasses, any
dataclass, a dict, an :class:`vmrepl.Instance`, or text / bytes in one of the three forms) into
that text. Validation is the engine's: a bad value comes back as InvalidParameter naming the
property.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Type, TypeVar, Union

from .cimtime import to_cim_datetime, to_cim_interval

__all__ = [
    "SettingData",
    "ReplicationSettingData",
    "ReplicationServiceSettingData",
    "AuthorizationSettingData",
    "setting_data_text",
    "REPLICATION_SETTING_DATA_CLASS",
    "REPLICATION_SERVICE_SETTING_DATA_CLASS",
    "AUTHORIZATION_SETTING_DATA_CLASS",
]

REPLICATION_SETTING_DATA_CLASS = "Msvm_ReplicationSettingData"
REPLICATION_SERVICE_SETTING_DATA_CLASS = "Msvm_ReplicationServiceSettingData"
AUTHORIZATION_SETTING_DATA_CLASS = "Msvm_ReplicationAuthorizationSettingData"

Datetime = Union[str, _dt.timedelta, _dt.time, _dt.datetime]

_S = TypeVar("_S", bound="SettingData")


class SettingData:
    """What the setting-data dataclasses share: conversions to and from the three text forms.

    A subclass is a dataclass whose fields are the model's property names (None = not set) and
    whose ``CIM_CLASS`` is the class it stands for.
    """

    CIM_CLASS: ClassVar[str] = ""
    #: Properties whose datetime.time value is a time of day (``00000000HHMMSS.mmmmmm+000``)
    #: rather than an interval since 00:00 (``...:000``, the default for a time).
    TIME_OF_DAY: ClassVar[frozenset] = frozenset()

    def to_dict(self) -> Dict[str, Any]:
        """The properties that are set, by their spec names (datetimes as CIM text)."""
        out: Dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None:
                continue
            if f.name in self.TIME_OF_DAY and isinstance(v, _dt.time):
                out[f.name] = _time_of_day(v)
            else:
                out[f.name] = _plain(v)
        return out

    def to_json(self) -> str:
        """The JSON setting data the C ABI takes: ``{"__CLASS": "<CIM_CLASS>", ...}`` with the
        properties that are set."""
        return json.dumps({"__CLASS": self.CIM_CLASS, **self.to_dict()})

    def replace(self: _S, **properties: Any) -> _S:
        """A copy with ``properties`` changed (None unsets one); TypeError for an unknown name."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        _check_names(type(self), properties)
        data.update(properties)
        return type(self)(**data)

    @classmethod
    def from_dict(cls: Type[_S], data: Mapping[str, Any]) -> _S:
        """From a mapping of spec names (an Instance works too). ``__*`` keys are ignored, as
        are the inherited members the model leaves unused; another unknown name raises
        TypeError."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kwargs: Dict[str, Any] = {}
        for k, v in data.items():
            if k.startswith("__") or k in _IGNORED:
                continue
            kwargs[k] = list(v) if isinstance(v, (list, tuple)) else v
        _check_names(cls, kwargs)
        return cls(**{k: v for k, v in kwargs.items() if k in names})

    @classmethod
    def from_json(cls: Type[_S], text: str) -> _S:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("setting data JSON must be an object")
        _check_class(cls, data.get("__CLASS"))
        return cls.from_dict(data)

    @classmethod
    def from_cim_xml(cls: Type[_S], text: str) -> _S:
        """From a CIM-XML embedded instance (WMI's GetText(1) / the engine's to_cim_xml())."""
        root = ET.fromstring(text)
        if root.tag != "INSTANCE":
            raise ValueError(f"CIM-XML: expected <INSTANCE>, got <{root.tag}>")
        _check_class(cls, root.get("CLASSNAME"))
        data: Dict[str, Any] = {}
        for prop in root:
            name = prop.get("NAME") or ""
            typ = (prop.get("TYPE") or "string").lower()
            if prop.tag == "PROPERTY":
                v = prop.find("VALUE")
                data[name] = None if v is None else _xml_scalar(v.text or "", typ)
            elif prop.tag == "PROPERTY.ARRAY":
                arr = prop.find("VALUE.ARRAY")
                items = [] if arr is None else arr.findall("VALUE")
                data[name] = None if arr is None else [_xml_scalar(x.text or "", typ) for x in items]
        return cls.from_dict(data)


@dataclass
class ReplicationSettingData(SettingData):
    """Msvm_ReplicationSettingData (spec §3). Field names are the model's property names;
    None means "not set" (the engine applies the spec's default: RecoveryServerPortNumber 0,
    ReplicateHostKvpItems TRUE, RecoveryHistory 0, AutoResynchronizeEnabled FALSE, the 18:30 to
    06:00 resync window, ReplicationInterval 300)."""

    # Identity; the server sets these (read-only).
    InstanceID: Optional[str] = None
    """``Microsoft:<VM GUID>\\HVR\\0`` (primary) or ``...\\1`` (extended)."""
    ElementName: Optional[str] = None
    """The VM's display name."""
    VirtualSystemIdentifier: Optional[str] = None
    """The VM's GUID."""
    VirtualSystemType: Optional[str] = None
    """``Microsoft:Hyper-V:Replica``."""
    # Settings of the relationship, in the spec table's order.
    AuthenticationType: Optional[int] = None
    """1 = trusted through the CA (Kerberos in Hyper-V), 2 = certificate thumbprint."""
    CertificateThumbPrint: Optional[str] = None
    RootCertificateThumbPrint: Optional[str] = None
    """Read-only: the root of CertificateThumbPrint."""
    CompressionEnabled: Optional[bool] = None
    BypassProxyServer: Optional[bool] = None
    RecoveryConnectionPoint: Optional[str] = None
    """The recovery server (host name)."""
    RecoveryHostSystem: Optional[str] = None
    """Read-only: the host that holds the replica."""
    PrimaryConnectionPoint: Optional[str] = None
    """Read-only."""
    PrimaryHostSystem: Optional[str] = None
    """Read-only."""
    RecoveryServerPortNumber: Optional[int] = None
    """Listener port of the recovery server; 0 is refused."""
    ReplicateHostKvpItems: Optional[bool] = None
    ApplicationConsistentSnapshotInterval: Optional[int] = None
    """Hours between application-consistent points, 0 = disabled."""
    RecoveryHistory: Optional[int] = None
    """Extra recovery points kept, 0-24."""
    IncludedDisks: Optional[List[str]] = None
    """Disks to replicate: object paths or InstanceIDs."""
    AutoResynchronizeEnabled: Optional[bool] = None
    AutoResynchronizeIntervalStart: Optional[Datetime] = None
    """CIM interval text, or a datetime.time / timedelta (18:30 = ``time(18, 30)``)."""
    AutoResynchronizeIntervalEnd: Optional[Datetime] = None
    EnableWriteOrderPreservationAcrossDisks: Optional[bool] = None
    ReplicationInterval: Optional[int] = None
    """Seconds: 30, 300 or 900."""
    ReplicationProvider: Optional[str] = None
    AdditionalSettings: Optional[str] = None

    CIM_CLASS: ClassVar[str] = REPLICATION_SETTING_DATA_CLASS


@dataclass
class ReplicationServiceSettingData(SettingData):
    """Msvm_ReplicationServiceSettingData (spec §4): this host's recovery-server settings, changed
    with ``service.modify_service_settings()``. None means "not set": the engine applies the
    spec's default (RecoveryServerEnabled FALSE, AllowedAuthenticationType 0, HttpPort 80,
    HttpsPort 443, MonitoringInterval 43200, MonitoringStartTime 09:00 UTC)."""

    InstanceID: Optional[str] = None
    ElementName: Optional[str] = None
    RecoveryServerEnabled: Optional[bool] = None
    """This host accepts replication."""
    AllowedAuthenticationType: Optional[int] = None
    """0 undefined, 1 Kerberos (vmrepl: trusted through the CA / plaintext on loopback),
    2 certificate, 3 both."""
    CertificateThumbPrint: Optional[str] = None
    """Listener certificate, for AllowedAuthenticationType 2 and 3."""
    HttpPort: Optional[int] = None
    """Kerberos listener port (PowerShell's KerberosAuthenticationPort)."""
    HttpsPort: Optional[int] = None
    """Certificate listener port (PowerShell's CertificateAuthenticationPort)."""
    MonitoringInterval: Optional[int] = None
    """Statistics period in seconds, 3600-604800."""
    MonitoringStartTime: Optional[Union[str, _dt.time]] = None
    """A time of day with zero date fields (``00000000090000.000000+000``), or a
    ``datetime.time`` (naive = UTC)."""

    CIM_CLASS: ClassVar[str] = REPLICATION_SERVICE_SETTING_DATA_CLASS
    TIME_OF_DAY: ClassVar[frozenset] = frozenset({"MonitoringStartTime"})


@dataclass
class AuthorizationSettingData(SettingData):
    """Msvm_ReplicationAuthorizationSettingData (spec §4): one authorization entry of a recovery
    server: which primaries it accepts and where their replicas go. The engine requires the
    three entry properties."""

    InstanceID: Optional[str] = None
    """Documented as always null."""
    ElementName: Optional[str] = None
    AllowedPrimaryHostSystem: Optional[str] = None
    """A host name, ``*.domain`` or ``*``; the entry's key (remove_authorization_entry)."""
    TrustGroup: Optional[str] = None
    """Entries of one group admit each other's primaries."""
    ReplicaStorageLocation: Optional[str] = None
    """Absolute folder where replicas arriving through this entry are stored."""

    CIM_CLASS: ClassVar[str] = AUTHORIZATION_SETTING_DATA_CLASS


# CIM_ManagedElement / CIM_VirtualSystemSettingData members that fetched instances carry and
# the model leaves unused (schema of core/settings): accepted by from_dict and dropped.
_IGNORED = frozenset(
    """Caption Description AutomaticRecoveryAction AutomaticShutdownAction AutomaticStartupAction
    AutomaticStartupActionDelay AutomaticStartupActionSequenceNumber ConfigurationDataRoot
    ConfigurationFile ConfigurationID CreationTime LogDataRoot Notes RecoveryFile SnapshotDataRoot
    SuspendDataRoot SwapFileDataRoot""".split()
)


def _check_class(cls: Type[SettingData], name: Optional[str]) -> None:
    if name and name.lower() != cls.CIM_CLASS.lower():
        raise ValueError(f"expected an instance of {cls.CIM_CLASS}, not {name}")


def _check_names(cls: Type[SettingData], data: Mapping[str, Any]) -> None:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        noun = "property" if len(unknown) == 1 else "properties"
        raise TypeError(f"{cls.CIM_CLASS} has no {noun} {', '.join(sorted(unknown))}")


def _xml_scalar(text: str, typ: str) -> Any:
    if typ == "boolean":
        return text.strip().upper() == "TRUE"
    if typ.startswith(("uint", "sint")):
        return int(text.strip())
    if typ.startswith("real"):
        return float(text.strip())
    return text


def _time_of_day(t: _dt.time) -> str:
    """A time of day as CIM writes it: zero date fields, the offset from UTC in minutes."""
    off = t.utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"00000000{t.hour:02d}{t.minute:02d}{t.second:02d}.{t.microsecond:06d}{sign}{abs(minutes):03d}"


def _plain(v: Any) -> Any:
    """A value as JSON writes it: enums as numbers, datetimes as CIM text, tuples as lists."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, _dt.datetime):
        return to_cim_datetime(v)
    if isinstance(v, (_dt.timedelta, _dt.time)):
        return to_cim_interval(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _decode_bytes(data: bytes) -> str:
    # CimSerializer output is UTF-16LE; GetText and files are usually UTF-8 (maybe with a BOM).
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if len(data) >= 2 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
        return data.decode("utf-16-le")
    return data.decode("utf-8-sig")


def setting_data_text(value: Any) -> str:
    """The setting-data text the C ABI takes, from:

    * a :class:`ReplicationSettingData`, :class:`ReplicationServiceSettingData`,
      :class:`AuthorizationSettingData` (or any dataclass): JSON of the fields that are set;
    * a :class:`vmrepl.Instance` (e.g. settings read back from the engine): its JSON;
    * a dict / mapping of property names (``__CLASS`` optional): JSON;
    * CIM-XML, MOF or JSON text (str, or bytes in UTF-8 / UTF-16): passed through as text.
    """
    from .instance import Instance

    if isinstance(value, SettingData):
        return value.to_json()
    if isinstance(value, Instance):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.dumps({k: _plain(v) for k, v in dataclasses.asdict(value).items() if v is not None})
    if isinstance(value, Mapping):
        return json.dumps({str(k): _plain(v) for k, v in value.items()})
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = _decode_bytes(bytes(value))
    if isinstance(value, str):
        text = value.lstrip("\ufeff").strip()
        if not text:
            raise ValueError("setting data text is empty")
        return text
    raise TypeError(
        "setting data must be a SettingData dataclass (ReplicationSettingData...), a dataclass, "
        "a dict, an Instance, or "
        f"CIM-XML / MOF / JSON text, not {type(value).__name__}"
    )
