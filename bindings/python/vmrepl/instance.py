"""Instance: a read-only property bag (a WMI instance) as a Python mapping.

Values are read once, when the Instance is built, through the typed getters of the C ABI
(``vmr_instance_count`` / ``vmr_instance_name_at`` / ``vmr_instance_type`` and
``vmr_instance_get_u64 / _i64 / _bool / _string / _string_array``); the C ABI has no getter for
arrays of numbers or booleans nor for reals, so those are read from ``vmr_instance_to_json``.
The C handle is kept for the serialisations the engine owns (:meth:`Instance.to_json`,
:meth:`Instance.to_cim_xml`, :meth:`Instance.to_mof`) until :meth:`Instance.close` or garbage
collection. Reading properties keeps working after close().
"""

from __future__ import annotations

import ctypes
import json
from ctypes import byref, c_char_p, c_int, c_int64, c_size_t, c_uint16, c_uint64
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from . import _ffi
from ._handle import Handle
from .enums import (
    AuthenticationType,
    CimType,
    EnabledState,
    JobState,
    JobType,
    ReplicationHealth,
    ReplicationMode,
    ReplicationState,
    ReplicationType,
    Status,
)
from .errors import InvalidState

__all__ = ["Instance"]

#: Integer properties shown as the model's IntEnums (a number outside the enum stays an int).
ENUM_PROPERTIES: Dict[str, Any] = {
    "ReplicationState": ReplicationState,
    "ReplicationMode": ReplicationMode,
    "ReplicationHealth": ReplicationHealth,
    "EnabledState": EnabledState,
    "JobState": JobState,
    "JobType": JobType,
    "ErrorCode": Status,
    "FailedOverReplicationType": ReplicationType,
    "LastReplicationType": ReplicationType,
    "ReplicationType": ReplicationType,  # of a recovery point
    "AuthenticationType": AuthenticationType,
}

_TEXT = (CimType.String, CimType.DateTime, CimType.Reference)
_UNSIGNED = (CimType.UInt8, CimType.UInt16, CimType.UInt32, CimType.UInt64)
_SIGNED = (CimType.SInt8, CimType.SInt16, CimType.SInt32, CimType.SInt64)


def _as_enum(name: str, value: Any) -> Any:
    enum = ENUM_PROPERTIES.get(name)
    if enum is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    try:
        return enum(value)
    except ValueError:
        return value


def _read(ptr: Any) -> Tuple[str, Dict[str, Any], Dict[str, Tuple[CimType, bool]]]:
    """Class name, values and (type, is_array) of every property of a C instance."""
    class_name = _ffi.decode(_ffi.vmr_instance_class(ptr))
    values: Dict[str, Any] = {}
    types: Dict[str, Tuple[CimType, bool]] = {}
    from_json: Optional[Dict[str, Any]] = None
    count = _ffi.vmr_instance_count(ptr)
    for i in range(count):
        raw = _ffi.vmr_instance_name_at(ptr, i)
        if raw is None:
            break
        name = _ffi.decode(raw)
        t, is_array, is_null = c_uint16(), c_int(), c_int()
        _ffi.vmr_instance_type(ptr, raw, byref(t), byref(is_array), byref(is_null))
        try:
            cim_type = CimType(t.value)
        except ValueError:  # a type newer than this binding: JSON still carries the value
            cim_type = t.value  # type: ignore[assignment]
        types[name] = (cim_type, bool(is_array.value))
        if is_null.value:
            values[name] = None
        elif is_array.value and cim_type in _TEXT:
            table, n = ctypes.POINTER(c_char_p)(), c_size_t()
            _ffi.vmr_instance_get_string_array(ptr, raw, byref(table), byref(n))
            values[name] = _ffi.take_string_array(table, n.value)
        elif is_array.value or cim_type not in (CimType.Boolean, *_TEXT, *_UNSIGNED, *_SIGNED):
            # Arrays of numbers / booleans and reals: no typed getter in the ABI.
            if from_json is None:
                out = _ffi.OwnedString()
                _ffi.vmr_instance_to_json(ptr, byref(out))
                from_json = json.loads(_ffi.take_string(out))
            values[name] = from_json.get(name)  # type: ignore[union-attr]
        elif cim_type == CimType.Boolean:
            b = c_int()
            _ffi.vmr_instance_get_bool(ptr, raw, byref(b))
            values[name] = bool(b.value)
        elif cim_type in _UNSIGNED:
            u = c_uint64()
            _ffi.vmr_instance_get_u64(ptr, raw, byref(u))
            values[name] = _as_enum(name, u.value)
        elif cim_type in _SIGNED:
            s = c_int64()
            _ffi.vmr_instance_get_i64(ptr, raw, byref(s))
            values[name] = _as_enum(name, s.value)
        else:
            out = _ffi.OwnedString()
            _ffi.vmr_instance_get_string(ptr, raw, byref(out))
            values[name] = _ffi.take_string(out)
    return class_name, values, types


class Instance(Mapping[str, Any]):
    """A read-only WMI-like instance: ``vm.ElementName``, ``vm["ElementName"]``, ``dict(vm)``.

    Integers of the model's enumerations come back as IntEnums (``vm.ReplicationState`` is a
    :class:`vmrepl.ReplicationState`), datetimes as their CIM strings (see
    :func:`vmrepl.from_cim_datetime`), arrays as lists, null as None.
    """

    __slots__ = ("_class_name", "_values", "_types", "_owner", "_ptr", "__weakref__")

    def __init__(self, owner: Handle, ptr: Any) -> None:
        # Internal: use Instance._own(ptr) or Instance._borrow(list_handle, ptr).
        with owner.use():
            class_name, values, types = _read(ptr)
        object.__setattr__(self, "_class_name", class_name)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_types", types)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_ptr", ptr)

    @classmethod
    def _own(cls, ptr: Any) -> "Instance":
        """Takes ownership of a ``vmr_instance *`` (released with vmr_instance_release)."""
        handle = Handle(ptr, _ffi.vmr_instance_release, "vmrepl.Instance")
        try:
            return cls(handle, ptr)
        except BaseException:
            handle.close()
            raise

    @classmethod
    def _borrow(cls, owner: Handle, ptr: Any) -> "Instance":
        """An item of a ``vmr_list``: keeps the list alive while the instance lives."""
        return cls(owner, ptr)

    # ---- identity ----------------------------------------------------------------------------

    @property
    def class_name(self) -> str:
        """The CIM class (``Msvm_ComputerSystem``, ``Msvm_ConcreteJob``...)."""
        return self._class_name

    def cim_type(self, name: str) -> Tuple[CimType, bool]:
        """``(CimType, is_array)`` of property ``name``; KeyError if it has none."""
        return self._types[name]

    # ---- mapping -----------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, so methods always win over properties.
        if name.startswith("_"):  # unset slots (copy, half-built object): no recursion
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._class_name} has no property {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._class_name} instances are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._class_name} instances are read-only")

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._values))

    def __repr__(self) -> str:
        keys = [k for k in ("ElementName", "Name", "InstanceID", "JobState") if k in self._values]
        shown = " ".join(f"{k}={self._values[k]!r}" for k in keys[:3])
        return f"<vmrepl.Instance {self._class_name}{' ' + shown if shown else ''}>"

    def to_dict(self) -> Dict[str, Any]:
        """The properties as a new dict (arrays as new lists)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}

    # ---- the engine's serialisations ---------------------------------------------------------

    def _text(self, fn: Any) -> str:
        owner = self._owner
        if owner is None:
            raise InvalidState("vmrepl.Instance is closed")
        with owner.use():
            out = _ffi.OwnedString()
            fn(self._ptr, byref(out))
            return _ffi.take_string(out)

    def to_json(self) -> str:
        """Canonical JSON text, ``__CLASS`` first (what the C ABI accepts as setting data)."""
        return self._text(_ffi.vmr_instance_to_json)

    def to_cim_xml(self) -> str:
        """CIM-XML embedded instance, as WMI's ``GetText(1)`` writes it."""
        return self._text(_ffi.vmr_instance_to_cim_xml)

    def to_mof(self) -> str:
        """MOF instance text (``instance of Msvm_X { ... };``)."""
        return self._text(_ffi.vmr_instance_to_mof)

    # ---- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        owner = self._owner
        return owner is None or owner.closed

    def close(self) -> None:
        """Releases the C instance now (an item of a list drops its hold on the list)."""
        owner = self._owner
        object.__setattr__(self, "_owner", None)
        object.__setattr__(self, "_ptr", None)
        if owner is not None and not isinstance(owner, _ListHandle):
            owner.close()

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError("vmrepl.Instance cannot be pickled; use to_dict() or to_json()")


class _ListHandle(Handle):
    """A ``vmr_list``: shared by its items, released when the last one goes."""

    __slots__ = ()


def instances_from_list(ptr: Any) -> List[Instance]:
    """Takes ownership of a ``vmr_list *`` and returns its items."""
    # The items hold the list; it is released when the last of them is closed or collected.
    handle = _ListHandle(ptr, _ffi.vmr_list_release, "vmrepl list")
    with handle.use():
        n = _ffi.vmr_list_size(ptr)
        items = [_ffi.vmr_list_get(ptr, i) for i in range(n)]
    return [Instance._borrow(handle, p) for p in items if p]
