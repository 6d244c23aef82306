"""Job: a long operation of the engine (Msvm_ConcreteJob), waited on, awaited or cancelled.

* ``job.wait(timeout=None)`` blocks (the GIL is released) and returns the final properties;
  a job that ends in Exception, Terminated or Killed raises the vmrepl.Error subclass of its
  ErrorCode with its ErrorDescription as the message (``err.job_state`` tells which end).
* ``await job`` does the same under asyncio without threads: the service's descriptor is
  registered with the running loop (``loop.add_reader``); when it becomes readable the loop
  calls ``vmr_service_dispatch``, which runs this job's ctypes callback
  (``vmr_job_set_callback``) on the loop's thread.
* ``job.on_progress(fn)`` calls ``fn(Progress)`` from those dispatches after each change.
"""

from __future__ import annotations

import asyncio
import itertools
import select
import time
import weakref
from ctypes import byref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional

from . import _ffi
from ._handle import Handle
from .enums import JobState, JobType, Status
from .errors import InvalidState, error_for
from .instance import Instance

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Job", "Progress"]

ProgressCallback = Callable[["Progress"], Any]

# Slices of a wait without timeout, so Ctrl-C is handled between them.
_WAIT_SLICE_S = 0.5


@dataclass(frozen=True)
class Progress:
    """Where a job is: vmrepl's own progress figures of the job instance."""

    phase: str
    """What the job is doing now (``"hashing disk 0"``, ``"done"``)."""
    bytes_done: int
    bytes_total: int
    rate: int
    """Bytes per second since the job started."""
    eta: Optional[int]
    """Seconds left, None while unknown."""
    percent: int = 0
    """PercentComplete, 0-100."""

    @classmethod
    def from_properties(cls, p: Any) -> "Progress":
        return cls(
            phase=p.get("Phase") or "",
            bytes_done=int(p.get("BytesDone") or 0),
            bytes_total=int(p.get("BytesTotal") or 0),
            rate=int(p.get("RateBytesPerSecond") or 0),
            eta=None if p.get("EtaSeconds") is None else int(p["EtaSeconds"]),
            percent=int(p.get("PercentComplete") or 0),
        )


# ---- the one C callback ----------------------------------------------------------------------
# A single CFUNCTYPE object for the whole process, alive as long as this module: the library
# may call it until vmr_job_set_callback(NULL) / vmr_job_release, whatever Python collects.
# userdata is a key into _REGISTRY (never a Python pointer), so a late call finds nothing
# instead of a freed object.

_REGISTRY: Dict[int, "weakref.ref[Job]"] = {}
_KEYS = itertools.count(1)


def _on_job_event(job_ptr: Any, userdata: Optional[int]) -> None:
    ref = _REGISTRY.get(userdata or 0)
    job = ref() if ref is not None else None
    if job is None:
        return
    try:
        job._on_event()
    except BaseException as e:  # never unwind through C: hand it to the dispatching caller
        job._service._callback_failed(e)


_JOB_CALLBACK = _ffi.JOB_CALLBACK(_on_job_event)


def _release_job(ptr: Any) -> None:
    _ffi.vmr_job_release(ptr)


def _set_done(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class Job:
    """A job of the engine. Context manager; released on close() or garbage collection.

    The job keeps running when its Python object is closed or collected; closing only drops
    this handle on it (``service.get_job(instance_id)`` finds it again).
    """

    def __init__(self, service: "Service", ptr: Any) -> None:
        # Internal: Service methods build Jobs from the vmr_job * they return.
        self._handle = Handle(ptr, _release_job, "vmrepl.Job")
        self._service = service
        self._key = next(_KEYS)
        self._progress_callbacks: List[ProgressCallback] = []
        self._futures: List["asyncio.Future[None]"] = []
        self._registered = False
        self._last_progress: Optional[Progress] = None
        with self.properties as p:
            self._instance_id: str = p.get("InstanceID") or ""
            self._name: str = p.get("Name") or ""
            jt = p.get("JobType")
            self._job_type = jt if jt is not None else 0
        service._jobs.add(self)

    # ---- identity ----------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        """The job's InstanceID (a GUID): ``service.get_job(instance_id)`` finds it."""
        return self._instance_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def job_type(self) -> "JobType | int":
        return self._job_type

    @property
    def service(self) -> "Service":
        return self._service

    # ---- state -------------------------------------------------------------------------------

    @property
    def state(self) -> "JobState | int":
        """JobState now (vmr_job_state)."""
        with self._handle.use() as ptr:
            raw = _ffi.vmr_job_state(ptr)
        try:
            return JobState(raw)
        except ValueError:
            return raw

    @property
    def done(self) -> bool:
        """True once the job is final (Completed, Terminated, Killed or Exception)."""
        return _is_final(self.state)

    @property
    def error_code(self) -> "Status | int":
        """0 until final and on success; the failure's code afterwards (vmr_job_error_code)."""
        with self._handle.use() as ptr:
            raw = _ffi.vmr_job_error_code(ptr)
        try:
            return Status(raw)
        except ValueError:
            return raw

    @property
    def properties(self) -> Instance:
        """A snapshot of the Msvm_ConcreteJob instance (JobState, PercentComplete, ErrorCode,
        ErrorDescription, the times, Phase, BytesDone... and, once done, the job's results)."""
        with self._handle.use() as ptr:
            out = _ffi.InstanceP()
            _ffi.vmr_job_get(ptr, byref(out))
        return Instance._own(out)

    @property
    def percent_complete(self) -> int:
        with self.properties as p:
            return int(p.get("PercentComplete") or 0)

    @property
    def progress(self) -> Progress:
        with self.properties as p:
            return Progress.from_properties(p)

    # ---- control -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Asks the job to stop (RequestStateChange(4)); it then ends in Terminated unless it
        completes first. InvalidState when the job is already final."""
        with self._handle.use() as ptr:
            _ffi.vmr_job_cancel(ptr)

    def on_progress(self, fn: ProgressCallback) -> ProgressCallback:
        """Calls ``fn(progress)`` after each change of the job, from ``service.dispatch()``: the
        asyncio loop while the job is awaited, or :meth:`wait`. Usable as a decorator."""
        if not callable(fn):
            raise TypeError("on_progress needs a callable")
        self._progress_callbacks.append(fn)
        self._register()
        return fn

    # ---- waiting -----------------------------------------------------------------------------

    def wait(self, timeout: Optional[float] = None) -> Instance:
        """Waits until the job is final and returns its final properties.

        ``timeout`` in seconds (None = forever, 0 = just check); vmrepl.Timeout when it passes
        first. A job ending in Exception, Terminated or Killed raises the vmrepl.Error of its
        ErrorCode, with ErrorDescription as the message.
        """
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0 or None")
        if self._progress_callbacks and not self._service.closed:
            self._wait_dispatching(timeout)
        elif timeout is None:
            while not self._wait_ms(int(_WAIT_SLICE_S * 1000)):
                pass
        else:
            self._wait_ms(int(timeout * 1000), raise_timeout=True)
        return self._outcome()

    def _wait_ms(self, ms: int, raise_timeout: bool = False) -> bool:
        """vmr_job_wait; True when final. The engine's own Timeout propagates if asked."""
        from .errors import Timeout

        try:
            with self._handle.use() as ptr:
                _ffi.vmr_job_wait(ptr, ms)
            return True
        except Timeout:
            if raise_timeout:
                raise
            return False

    def _wait_dispatching(self, timeout: Optional[float]) -> None:
        # Progress callbacks run only in vmr_service_dispatch: wait on the service descriptor
        # and dispatch its events on this thread, like an event loop would.
        service = self._service
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()  # not select(): descriptors above FD_SETSIZE are fine
        poller.register(service._fd, select.POLLIN)
        while not self.done and not service.closed:
            left = _WAIT_SLICE_S if deadline is None else min(_WAIT_SLICE_S, deadline - time.monotonic())
            if left <= 0:
                self._wait_ms(0, raise_timeout=True)  # the engine's Timeout, unless final now
                break
            ready = poller.poll(max(1, int(left * 1000)))
            if ready and not self._dispatch():
                break
        if not self.done:  # the service was closed meanwhile: it stops its jobs
            left_ms = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            self._wait_ms(left_ms, raise_timeout=True)
        # Final: once settled, the final event is queued; deliver it.
        self._wait_ms(-1)
        self._dispatch()

    def _dispatch(self) -> bool:
        """service.dispatch(); False when the service is (being) closed."""
        try:
            self._service.dispatch()
            return True
        except InvalidState:
            if not self._service.closed:
                raise  # from a progress callback
            return False

    async def wait_async(self, timeout: Optional[float] = None) -> Instance:
        """``await job`` with an optional timeout (vmrepl.Timeout when it passes first).

        Cancelling the awaiting task leaves the job running; call :meth:`cancel` to stop it.
        """
        loop = asyncio.get_running_loop()
        service = self._service
        deadline = None if timeout is None else loop.time() + timeout
        registered = False
        try:
            if not service.closed:
                self._register()
                service._add_reader(loop)
                registered = True
        except InvalidState:
            if not service.closed:
                raise
        try:
            while registered and not service.closed:
                fut: "asyncio.Future[None]" = loop.create_future()
                self._futures.append(fut)  # before looking, so no final event is missed
                try:
                    # A final event dispatched before the callback was set is not repeated.
                    if self.done:
                        break
                    if deadline is None:
                        await fut
                    else:
                        try:
                            await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - loop.time()))
                        except asyncio.TimeoutError:
                            self._wait_ms(0, raise_timeout=True)  # the engine's Timeout
                            break  # final just now
                finally:
                    self._futures.remove(fut)
        finally:
            if registered:
                service._remove_reader(loop)
        if not self.done:
            # The service was closed: close() stops its jobs, so this returns promptly.
            left = None if deadline is None else max(0.0, deadline - loop.time())
            return self.wait(left)
        return self._outcome()

    def __await__(self) -> Generator[Any, None, Instance]:
        return self.wait_async().__await__()

    def _outcome(self) -> Instance:
        props = self.properties
        state = props.get("JobState")
        if state == JobState.Completed:
            return props
        try:
            code = int(props.get("ErrorCode") or 0) or int(self.error_code) or 32768
            message = props.get("ErrorDescription") or f"job {self._name} ended in JobState {state}"
        finally:
            props.close()
        raise error_for(code, message, job_id=self._instance_id, job_state=state)

    # ---- events ------------------------------------------------------------------------------

    def _register(self) -> None:
        if self._registered:
            return
        _REGISTRY[self._key] = weakref.ref(self, _forget(self._key))
        with self._handle.use() as ptr:
            _ffi.vmr_job_set_callback(ptr, _JOB_CALLBACK, self._key)
        self._registered = True

    def _on_event(self) -> None:
        """Runs inside vmr_service_dispatch, on the dispatching thread."""
        if self._handle.closed:
            return
        final = False
        try:
            if self._progress_callbacks:
                with self.properties as p:
                    progress = Progress.from_properties(p)
                    final = _is_final(p.get("JobState"))
                if progress != self._last_progress:
                    self._last_progress = progress
                    for fn in list(self._progress_callbacks):
                        fn(progress)
            else:
                final = self.done
        finally:
            if final:
                self._resolve_futures()

    def _resolve_futures(self) -> None:
        for fut in list(self._futures):
            fut_loop = fut.get_loop()
            if not fut_loop.is_closed():
                fut_loop.call_soon_threadsafe(_set_done, fut)

    # ---- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        """Releases this handle (the job itself keeps running). Idempotent."""
        self._handle.close()  # vmr_job_release also removes the C callback
        _REGISTRY.pop(self._key, None)
        self._service._jobs.discard(self)

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._handle.closed:
            return f"<vmrepl.Job {self._instance_id} (closed)>"
        try:
            state = self.state
            state_name = state.name if isinstance(state, JobState) else str(state)
        except Exception:
            state_name = "?"
        return f"<vmrepl.Job {self._instance_id} {self._name!r} {state_name}>"


def _forget(key: int) -> Callable[[Any], None]:
    def drop(_ref: Any) -> None:
        try:
            _REGISTRY.pop(key, None)
        except Exception:  # interpreter shutdown
            pass

    return drop


def _is_final(state: Any) -> bool:
    return state in (JobState.Completed, JobState.Terminated, JobState.Killed, JobState.Exception)
