"""Ownership of one C handle: released once, deterministically or on garbage collection.

A :class:`Handle` owns a pointer and its release function. Calls borrow the pointer through
:meth:`Handle.use`; :meth:`Handle.close` marks the handle closed and releases it at once, or,
when another thread is inside a call with it, as soon as that call returns. So a close() racing
a blocking call (a job wait, a dispatch) never frees memory under it, and any use after close
raises :class:`vmrepl.InvalidState` instead of touching freed memory.

``__del__`` is guarded for interpreter shutdown as python-magic does: the release function is
kept on the object itself, so it does not depend on module globals that shutdown may clear.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from .errors import InvalidState

__all__ = ["Handle"]


class Handle:
    __slots__ = ("_ptr", "_release", "_what", "_lock", "_users", "_closed", "__weakref__")

    def __init__(self, ptr: Any, release: Callable[[Any], None], what: str) -> None:
        self._ptr: Any = ptr
        self._release: Optional[Callable[[Any], None]] = release
        self._what = what
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @contextmanager
    def use(self) -> Iterator[Any]:
        """Borrows the pointer for one call; InvalidState once closed."""
        with self._lock:
            if self._closed:
                raise InvalidState(f"{self._what} is closed")
            self._users += 1
        try:
            yield self._ptr
        finally:
            with self._lock:
                self._users -= 1
                last = self._closed and self._users == 0
            if last:
                self._free()

    def close(self) -> None:
        """Releases the handle (idempotent); deferred while a call is using it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            busy = self._users > 0
        if not busy:
            self._free()

    def _free(self) -> None:
        with self._lock:
            ptr, release = self._ptr, self._release
            self._ptr, self._release = None, None
        if release is not None and ptr:
            release(ptr)

    def __del__(self) -> None:
        # Nobody else can hold a reference now. At interpreter shutdown the release function
        # (kept on the object) still exists; anything else failing must not print a traceback.
        try:
            if not self._closed or self._release is not None:
                self._closed = True
                ptr, release = self._ptr, self._release
                self._ptr, self._release = None, None
                if release is not None and ptr:
                    release(ptr)
        except Exception:
            pass
