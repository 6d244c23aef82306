# -*- coding: utf-8 -*-
# The options every vmrepl.replication module takes (plugins/module_utils/vmrepl_common.py).

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - The vmrepl service to manage, as C(vmrepl.open) takes it.
      - C(unix:<path>) is the vmrepld of the managed host (its admin socket, mode 0600, so the
        task usually runs as root on that host).
      - C(vmrepl://<host>:<port>) is a remote vmrepld over mutual TLS (give the client
        certificate in I(service_options)).
      - C(local:<host root>) runs an engine inside the module process; only useful for reading
        a host root that no vmrepld serves, and for tests.
    type: str
    default: unix:/run/vmrepl/vmrepld.sock
  timeout:
    description:
      - Seconds to wait for each job the task starts (initial replication, failover, reverse...).
      - A job still running when it passes fails the task with code 32772 and its C(job_id);
        the job itself goes on (see M(vmrepl.replication.vmrepl_info) with C(gather=jobs)).
    type: int
    default: 600
  service_options:
    description:
      - "Options of C(vmrepl.open) (the engine's options JSON), for example
        C({tls: {cert: ..., key: ..., ca: ...}}) for a C(vmrepl://) URI or C(host_name) for a
        C(local:) one. Unknown options fail with code 32773."
    type: dict
requirements:
  - The vmrepl Python binding (C(bindings/python) of the vmrepl repository) importable by the
    Python interpreter that runs the module (installed, or on C(PYTHONPATH)).
  - libvmrepl.so found by the binding (next to the package, C(VMREPL_LIBRARY), or the system
    library path).
notes:
  - Failures from vmrepl set C(code) (the model's status number, e.g. 32775 for a wrong
    ReplicationState), C(status_name), C(error_description) (the engine's text, or the job's
    ErrorDescription) and, for a failed job, C(job) with its final properties.
  - Check mode is supported; it never starts a job.
"""
