# -*- coding: utf-8 -*-
"""What every vmrepl.replication module shares.

* the options every module takes (``uri``, ``timeout``, ``service_options``) and their doc
  fragment text;
* opening the service (``vmrepl.open``) with a clean failure when the Python binding is missing;
* waiting for a job with ``timeout`` and turning its final properties into plain data;
* failures as ``fail_json(msg=..., code=<vmrepl status>, error_description=..., ...)``.

The modules talk to vmrepld through the vmrepl Python binding (bindings/python in the vmrepl
repository), which must be importable by the interpreter Ansible runs modules with (installed,
or on PYTHONPATH), and must find libvmrepl.so (next to the package, VMREPL_LIBRARY, or the
system library path).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import enum
import time
import traceback

from ansible.module_utils.basic import AnsibleModule

try:
    import vmrepl  # noqa: F401 - the binding, found on sys.path (PYTHONPATH or installed)

    VMREPL_IMPORT_ERROR = None
    VMREPL_IMPORT_TRACEBACK = None
except ImportError as e:  # the package, or its libvmrepl.so, is missing
    vmrepl = None
    VMREPL_IMPORT_ERROR = e
    VMREPL_IMPORT_TRACEBACK = traceback.format_exc()

#: Where vmrepld listens for local administration by default (tools/vmrepld, systemd unit).
DEFAULT_URI = "unix:/run/vmrepl/vmrepld.sock"
#: Default wait for one job, in seconds.
DEFAULT_TIMEOUT = 600

# The model's numbers used by the modules (spec: ReplicationMode / ReplicationState).
MODE_NONE, MODE_PRIMARY, MODE_REPLICA, MODE_TEST_REPLICA = 0, 1, 2, 3
STATE_DISABLED = 0
STATE_READY = 1
STATE_WAITING_IR = 2
STATE_REPLICATING = 3
STATE_PREPARED = 4
STATE_RECOVERED = 5
STATE_COMMITTED = 6
STATE_SUSPENDED = 7
STATE_FAILOVER_IN_PROGRESS = 12
ENABLED_RUNNING, ENABLED_OFF = 2, 3
INVALID_STATE = 32775
TIMEOUT = 32772


def common_argument_spec():
    """The options every module takes."""
    return dict(
        uri=dict(type="str", default=DEFAULT_URI),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        service_options=dict(type="dict"),
    )


def plain(value):
    """A value of an Instance as plain JSON data (IntEnums as their numbers)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return dict((k, plain(v)) for k, v in value.items())
    return value


def to_dict(instance):
    """An Instance (or None) as a plain dict of the model's property names."""
    if instance is None:
        return None
    try:
        return plain(instance.to_dict())
    finally:
        instance.close()


def to_dicts(instances):
    return [to_dict(i) for i in instances]


class VmreplModule:
    """An AnsibleModule bound to one vmrepl service, with the waits and failures of the
    collection. Use it as a context manager around the work::

        m = VmreplModule(argument_spec=dict(...), supports_check_mode=True)
        with m:
            svc = m.service
            ...
        m.exit(changed=..., ...)
    """

    def __init__(self, argument_spec, **kwargs):
        spec = common_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.started = time.monotonic()
        self.actions = []  # what was done (or, in check mode, would be done), in order
        self.jobs = []  # final properties of the jobs waited for, in order
        self._service = None
        if vmrepl is None:
            reason = str(VMREPL_IMPORT_ERROR)
            if getattr(VMREPL_IMPORT_ERROR, "name", None) == "vmrepl":
                msg = "the vmrepl Python binding is not installed"
            else:
                msg = "the vmrepl Python binding is not installed or cannot load libvmrepl"
            self.module.fail_json(
                msg="%s (import vmrepl: %s); install bindings/python or put it on PYTHONPATH, and set "
                "VMREPL_LIBRARY to libvmrepl.so if the library is not found" % (msg, reason),
                exception=VMREPL_IMPORT_TRACEBACK,
                elapsed=self.elapsed(),
            )

    # ---- the service -----------------------------------------------------------------------

    @property
    def service(self):
        if self._service is None:
            options = self.params.get("service_options") or {}
            try:
                self._service = vmrepl.open(self.params["uri"], **options)
            except vmrepl.Error as e:
                self.fail_error(e, "cannot open %s" % self.params["uri"])
            except TypeError as e:
                self.fail(msg="cannot open %s: %s" % (self.params["uri"], e))
        return self._service

    def close(self):
        svc, self._service = self._service, None
        if svc is not None:
            svc.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and vmrepl is not None and isinstance(exc, vmrepl.Error):
            self.fail_error(exc)  # exits; the service is closed by fail()
        if exc_type is not None and issubclass(exc_type, Exception):
            # A bug, or a binding newer or older than this collection: one failed task, not a
            # "MODULE FAILURE" without the results so far.
            self.fail(
                "unexpected %s: %s" % (exc_type.__name__, exc),
                exception="".join(traceback.format_exception(exc_type, exc, tb)),
            )
        self.close()
        return False

    # ---- results -----------------------------------------------------------------------------

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def exit(self, changed, **result):
        self.close()
        result.setdefault("actions", self.actions)
        self.module.exit_json(changed=changed, elapsed=self.elapsed(), **result)

    def fail(self, msg, **result):
        self.close()
        result.setdefault("actions", self.actions)
        self.module.fail_json(msg=msg, elapsed=self.elapsed(), **result)

    def fail_error(self, err, context=None, job=None):
        """Fails the task with a vmrepl.Error: msg names the status (``InvalidState (32775)``) and
        passes the engine's text through; code / status_name / error_description are set."""
        code = int(err.code)
        text = err.message
        msg = "%s (%d): %s" % (err.name, code, text)
        if context:
            msg = "%s: %s" % (context, msg)
        result = dict(code=code, rc=code, status_name=err.name, error_description=text)
        if err.job_id:
            result["job_id"] = err.job_id
        if job is not None:
            result["job"] = job
        self.fail(msg, **result)

    def refuse(self, code, name, text, context=None):
        """Fails the task for a refusal of the module itself (a change the engine cannot make
        on this relationship), in the same form as the engine's refusals."""
        msg = "%s (%d): %s" % (name, code, text)
        if context:
            msg = "%s: %s" % (context, msg)
        self.fail(msg, code=code, rc=code, status_name=name, error_description=text)

    # ---- jobs --------------------------------------------------------------------------------

    def call(self, what, fn, *args, **kwargs):
        """Runs a state-changing call (never in check mode) and records it in ``actions``. A
        vmrepl.Error (validation at once: InvalidState naming the state found...) fails the
        task with the engine's text."""
        self.actions.append(what)
        if self.check_mode:
            return None
        try:
            return fn(*args, **kwargs)
        except vmrepl.Error as e:
            self.fail_error(e, what)

    def run_job(self, what, fn, *args, **kwargs):
        """Starts a job with ``fn(*args)`` (unless in check mode), waits for it up to ``timeout``
        and returns its final properties as a dict (None in check mode)."""
        job = self.call(what, fn, *args, **kwargs)
        if job is None:
            return None
        return self.wait(what, job)

    def wait(self, what, job):
        """Waits for ``job`` up to ``timeout`` seconds; its final properties as a dict. A job that
        fails fails the task with its ErrorCode and ErrorDescription; a job still running after
        ``timeout`` fails it with code 32772 and the job's InstanceID (the job goes on)."""
        timeout = self.params["timeout"]
        try:
            try:
                final = to_dict(job.wait(timeout=timeout))
            except vmrepl.Timeout as e:
                if e.job_id is not None:  # the job itself ended with Timeout
                    self.fail_error(e, what, job=to_dict(job.properties))
                props = to_dict(job.properties)
                self.fail(
                    "%s: Timeout (%d): job %s still running after %s s (it goes on; vmrepl_info gather=jobs shows it)"
                    % (what, TIMEOUT, job.instance_id, timeout),
                    code=TIMEOUT,
                    rc=TIMEOUT,
                    status_name="Timeout",
                    error_description="timeout of %s s passed" % timeout,
                    job_id=job.instance_id,
                    job=props,
                )
            except vmrepl.Error as e:
                self.fail_error(e, what, job=to_dict(job.properties))
        finally:
            job.close()
        self.jobs.append(final)
        return final

    def power(self, vm, system, state):
        """Turns the VM (``system``: its dict) to EnabledState ``state`` (2 running, 3 off) when it
        is not there yet; True when it did (or, in check mode, would)."""
        if system.get("EnabledState") == state:
            return False
        what = "request_state_change(%s)%s" % (
            "running" if state == ENABLED_RUNNING else "off",
            "" if system.get("ElementName") in (None, vm) else " of %s" % system.get("ElementName"),
        )
        job = self.call(what, self.service.request_state_change, vm, state)
        if job is not None:  # today the engine changes it at once, without a job
            self.wait(what, job)
        return True

    # ---- lookups -----------------------------------------------------------------------------

    def system(self, vm, required=True):
        """The VM's Msvm_ComputerSystem as a dict; None when there is none and not required."""
        try:
            return to_dict(self.service.get_system(vm))
        except vmrepl.FileNotFound as e:
            if required:
                self.fail_error(e, "VM %s" % vm)
            return None

    def settings(self, vm):
        """The VM's Msvm_ReplicationSettingData as a dict."""
        return to_dict(self.service.get_replication_settings(vm))


def state_text(system):
    """``ReplicationMode 1, ReplicationState 3`` of a system dict, for messages."""
    return "ReplicationMode %s, ReplicationState %s" % (
        system.get("ReplicationMode"),
        system.get("ReplicationState"),
    )


def relationship_summary(system):
    """The replication fields of a VM worth returning from every module."""
    keys = (
        "Name",
        "ElementName",
        "EnabledState",
        "ReplicationMode",
        "ReplicationState",
        "ReplicationHealth",
        "ReplicationHealthDescription",
        "FailedOverReplicationType",
        "LastReplicationType",
        "LastReplicationTime",
    )
    return dict((k, system.get(k)) for k in keys if k in system)
