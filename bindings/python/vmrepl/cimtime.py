"""CIM datetime strings (spec §11) to and from Python's datetime types.

* a point in time: ``yyyymmddHHMMSS.mmmmmmsUUU`` (``sUUU`` = ± minutes from UTC),
  e.g. ``20260925101500.000000+000``;
* an interval: ``ddddddddHHMMSS.mmmmmm:000`` (job times, the resync window).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Union

__all__ = ["from_cim_datetime", "to_cim_datetime", "to_cim_interval"]

_POINT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$")
_INTERVAL = re.compile(r"^(\d{8})(\d{2})(\d{2})(\d{2})\.(\d{6}):000$")


def from_cim_datetime(text: str) -> Union[_dt.datetime, _dt.timedelta]:
    """A timezone-aware datetime for a point in time, a timedelta for an interval."""
    m = _INTERVAL.match(text)
    if m:
        d, h, mi, s, us = (int(x) for x in m.groups())
        return _dt.timedelta(days=d, hours=h, minutes=mi, seconds=s, microseconds=us)
    m = _POINT.match(text)
    if not m:
        raise ValueError(f"not a CIM datetime: {text!r}")
    y, mo, d, h, mi, s, us = (int(x) for x in m.groups()[:7])
    offset = int(m.group(9)) * (-1 if m.group(8) == "-" else 1)
    tz = _dt.timezone(_dt.timedelta(minutes=offset))
    return _dt.datetime(y, mo, d, h, mi, s, us, tzinfo=tz)


def to_cim_datetime(value: _dt.datetime) -> str:
    """A point in time; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    off = value.utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return value.strftime("%Y%m%d%H%M%S.%f") + f"{sign}{abs(minutes):03d}"


def to_cim_interval(value: Union[_dt.timedelta, _dt.time]) -> str:
    """An interval; a time of day (the resync window's 18:30) becomes the interval since 00:00."""
    if isinstance(value, _dt.time):
        value = _dt.timedelta(
            hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
        )
    if value < _dt.timedelta(0):
        raise ValueError("a CIM interval cannot be negative")
    total_s = value.days * 86400 + value.seconds
    days, rest = divmod(total_s, 86400)
    h, rest = divmod(rest, 3600)
    mi, s = divmod(rest, 60)
    return f"{days:08d}{h:02d}{mi:02d}{s:02d}.{value.microseconds:06d}:000"
