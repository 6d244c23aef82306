"""Exceptions: one class per return code of the model (spec §1), chosen from a table.

Modelled on pyzmq's zmq/error.py: a base class carrying the number, and a table that maps
each number to its subclass, so ``except vmrepl.InvalidState`` reads like the scripts that
check ``32775``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
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
    "error_for",
]


class Error(Exception):
    """A vmrepl call or job failed.

    Attributes:
        code: the model's return code (a :class:`vmrepl.Status`, e.g. 32775).
        name: its name as ``vmr_status_name`` spells it (``"InvalidState"``).
        message: what went wrong, in words (``vmr_last_error_message`` or the job's
            ErrorDescription).
        job_id: InstanceID of the job that failed, when the error comes from a job.
        job_state: the final :class:`vmrepl.JobState` of that job (Exception, Terminated...).
    """

    #: The code of the subclass; the base class takes it from the constructor.
    default_code: int = 32768

    def __init__(
        self,
        message: str = "",
        code: Optional[int] = None,
        *,
        name: Optional[str] = None,
        job_id: Optional[str] = None,
        job_state: Optional[int] = None,
    ) -> None:
        from .enums import JobState, Status

        raw = self.default_code if code is None else int(code)
        try:
            self.code: int = Status(raw)
        except ValueError:
            self.code = raw
        self.name: str = name or _name_of(raw)
        self.message: str = message or self.name
        self.job_id: Optional[str] = job_id
        self.job_state: Optional[int] = None
        if job_state is not None:
            try:
                self.job_state = JobState(job_state)
            except ValueError:
                self.job_state = job_state
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.name}, {int(self.code)})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={int(self.code)})"

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (type(self), self.message, int(self.code), self.name, self.job_id, self.job_state),
        )


def _rebuild(cls: Type[Error], message: str, code: int, name: str, job_id: Any, job_state: Any) -> Error:
    return cls(message, code, name=name, job_id=job_id, job_state=job_state)


class Failed(Error):
    """32768 Failed."""

    default_code = 32768


class AccessDenied(Error):
    """32769 Access Denied."""

    default_code = 32769


class NotSupported(Error):
    """32770 Not Supported."""

    default_code = 32770


class Unknown(Error):
    """32771 Status is unknown."""

    default_code = 32771


class Timeout(Error):
    """32772 Timeout."""

    default_code = 32772


class InvalidParameter(Error):
    """32773 Invalid parameter."""

    default_code = 32773


class SystemInUse(Error):
    """32774 System is in use."""

    default_code = 32774


class InvalidState(Error):
    """32775 Invalid state for this operation (also: a vmrepl object used after close())."""

    default_code = 32775


class IncorrectDataType(Error):
    """32776 Incorrect data type."""

    default_code = 32776


class SystemNotAvailable(Error):
    """32777 System is not available."""

    default_code = 32777


class OutOfMemory(Error):
    """32778 Out of memory."""

    default_code = 32778


class FileNotFound(Error):
    """32779 File not found (the model's name; also: no such VM, job or authorization entry).

    Also exported as :data:`NotFound`, the same class."""

    default_code = 32779


#: 32779 under the name the binding's design uses: ``except vmrepl.NotFound`` is
#: ``except vmrepl.FileNotFound`` (one class, two names; ``type(e).__name__`` is FileNotFound).
NotFound = FileNotFound


#: code -> exception class (spec §1).
ERRORS: Dict[int, Type[Error]] = {
    cls.default_code: cls
    for cls in (
        Failed,
        AccessDenied,
        NotSupported,
        Unknown,
        Timeout,
        InvalidParameter,
        SystemInUse,
        InvalidState,
        IncorrectDataType,
        SystemNotAvailable,
        OutOfMemory,
        FileNotFound,
    )
}

_NAMES = {code: cls.__name__ for code, cls in ERRORS.items()}


def _name_of(code: int) -> str:
    if code in _NAMES:
        return _NAMES[code]
    try:
        from . import _ffi

        return _ffi.status_name(code)
    except Exception:  # during import of _ffi itself, or at interpreter shutdown
        return "Unknown"


def error_for(
    code: int,
    message: str = "",
    *,
    job_id: Optional[str] = None,
    job_state: Optional[int] = None,
) -> Error:
    """The exception for ``code``: its subclass from the table, else :class:`Error`."""
    cls = ERRORS.get(int(code), Error)
    return cls(message, int(code), job_id=job_id, job_state=job_state)
