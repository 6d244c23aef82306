#!/usr/bin/python
# -*- coding: utf-8 -*-
# vmrepl.replication.vmrepl_server: recovery-server settings and authorization entries.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmrepl_server
short_description: Configure a vmrepl host as a recovery server
version_added: 0.1.0
description:
  - Sets the host's recovery-server settings (Msvm_ReplicationServiceSettingData, changed with
    ModifyServiceSettings) - whether it accepts replication, the authentication it allows, its
    listener ports - and its authorization entries (Msvm_ReplicationAuthorizationSettingData)
    - which primaries it admits and where their replicas are stored.
  - Only the settings given are compared and changed; the others keep their values.
  - Both hosts of a pair are usually recovery servers admitting each other, since a reverse
    replication makes the old primary a replica.
  - Like Set-VMReplicationServer, but idempotent - a task that finds everything as asked
    reports C(changed=false).
options:
  recovery_server_enabled:
    description: Whether this host accepts replication (RecoveryServerEnabled).
    type: bool
  allowed_authentication_type:
    description:
      - AllowedAuthenticationType - 0 undefined, 1 peers trusted through the configured CA
        (Kerberos in Hyper-V; plaintext on loopback when both ends allow it), 2 certificate
        pinned by thumbprint, 3 both.
    type: int
    choices: [0, 1, 2, 3]
  certificate_thumbprint:
    description: Thumbprint of the listener certificate, for authentication types 2 and 3
      (CertificateThumbPrint).
    type: str
  http_port:
    description: Listener port for authentication type 1 (HttpPort, PowerShell's
      KerberosAuthenticationPort).
    type: int
    aliases: [kerberos_authentication_port]
  https_port:
    description: Listener port for authentication type 2 (HttpsPort, PowerShell's
      CertificateAuthenticationPort).
    type: int
    aliases: [certificate_authentication_port]
  monitoring_interval:
    description: Statistics period in seconds, 3600 to 604800 (MonitoringInterval).
    type: int
  monitoring_start_time:
    description: Start of the statistics period, a CIM time of day such as
      C(00000000090000.000000+000) (MonitoringStartTime).
    type: str
  authorization_entries:
    description:
      - Authorization entries, each keyed by I(allowed_primary_host_system). An entry found
        with other values is modified; one with I(state=absent) is removed when present.
    type: list
    elements: dict
    default: []
    suboptions:
      allowed_primary_host_system:
        description: The primary host admitted - a host name, C(*.domain) or C(*).
        type: str
        required: true
      trust_group:
        description: Trust group of the entry; entries of one group admit each other's
          primaries.
        type: str
        default: DEFAULT
      replica_storage_location:
        description: Absolute folder where replicas arriving through this entry are stored.
          Required for I(state=present).
        type: path
      state:
        description: Whether the entry should exist.
        type: str
        choices: [present, absent]
        default: present
  purge_authorization_entries:
    description:
      - Remove the entries that I(authorization_entries) does not list (as
        C(Set-VMReplicationServer -ReplicationAllowedFromAnyServer) does).
    type: bool
    default: false
extends_documentation_fragment:
  - vmrepl.replication.service
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
seealso:
  - module: vmrepl.replication.vmrepl_relationship
  - module: vmrepl.replication.vmrepl_info
author:
  - vmrepl developers
"""

EXAMPLES = r"""
- name: hv-b accepts replication from hv-a, replicas under /srv/replicas
  vmrepl.replication.vmrepl_server:
    recovery_server_enabled: true
    allowed_authentication_type: 1
    authorization_entries:
      - allowed_primary_host_system: hv-a
        replica_storage_location: /srv/replicas

- name: Admit any primary, and only that (the other entries are removed)
  vmrepl.replication.vmrepl_server:
    recovery_server_enabled: true
    allowed_authentication_type: 3
    authorization_entries:
      - allowed_primary_host_system: "*"
        trust_group: DEFAULT
        replica_storage_location: /srv/replicas
    purge_authorization_entries: true

- name: Stop admitting hv-c
  vmrepl.replication.vmrepl_server:
    authorization_entries:
      - allowed_primary_host_system: hv-c
        state: absent
"""

RETURN = r"""
changed:
  description: Whether a setting or an entry was (or, in check mode, would be) changed.
  returned: always
  type: bool
settings:
  description: The recovery-server settings after the task (Msvm_ReplicationServiceSettingData);
    in check mode, the settings found with the requested changes applied.
  returned: success
  type: dict
  sample:
    RecoveryServerEnabled: true
    AllowedAuthenticationType: 1
    HttpPort: 80
    HttpsPort: 443
authorization_entries:
  description: The authorization entries after the task (in check mode, as they would be).
  returned: success
  type: list
  elements: dict
  sample:
    - AllowedPrimaryHostSystem: hv-a
      TrustGroup: DEFAULT
      ReplicaStorageLocation: /srv/replicas
actions:
  description: What the task did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["modify_service_settings(RecoveryServerEnabled)", "add_authorization_entry(hv-a)"]
jobs:
  description: Final properties of the jobs the task waited for.
  returned: success
  type: list
  elements: dict
diff:
  description: Settings and entries before and after, with C(--diff).
  returned: success, in diff mode
  type: dict
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
code:
  description: The vmrepl status number of a failure (32773 InvalidParameter for a bad value...).
  returned: failed, on an error from vmrepl
  type: int
  sample: 32773
error_description:
  description: The engine's text of the failure (the job's ErrorDescription for a failed job).
  returned: failed, on an error from vmrepl
  type: str
rc:
  description: The same number as C(code), under the name Ansible's command modules use.
  returned: failed, on an error from vmrepl
  type: int
  sample: 32775
status_name:
  description: The name of C(code) (C(InvalidState), C(SystemInUse), C(Timeout)...).
  returned: failed, on an error from vmrepl
  type: str
  sample: InvalidState
job_id:
  description: InstanceID of the job that failed, or that was still running when I(timeout)
    passed (it goes on).
  returned: failed, when a job failed or outlived I(timeout)
  type: str
"""

import copy

from ansible_collections.vmrepl.replication.plugins.module_utils.vmrepl_common import (
    VmreplModule,
    to_dict,
    to_dicts,
)

# option -> Msvm_ReplicationServiceSettingData property
SETTINGS = (
    ("recovery_server_enabled", "RecoveryServerEnabled"),
    ("allowed_authentication_type", "AllowedAuthenticationType"),
    ("certificate_thumbprint", "CertificateThumbPrint"),
    ("http_port", "HttpPort"),
    ("https_port", "HttpsPort"),
    ("monitoring_interval", "MonitoringInterval"),
    ("monitoring_start_time", "MonitoringStartTime"),
)

ENTRY_KEYS = ("AllowedPrimaryHostSystem", "TrustGroup", "ReplicaStorageLocation")


def _same_text(a, b):
    return (a or "") == (b or "")


def _same_path(a, b):
    if a is None or b is None:
        return a == b
    return a.rstrip("/") == b.rstrip("/")


def _entry_view(e):
    return dict((k, e.get(k)) for k in ENTRY_KEYS)


def main():
    m = VmreplModule(
        argument_spec=dict(
            recovery_server_enabled=dict(type="bool"),
            allowed_authentication_type=dict(type="int", choices=[0, 1, 2, 3]),
            certificate_thumbprint=dict(type="str"),
            http_port=dict(type="int", aliases=["kerberos_authentication_port"]),
            https_port=dict(type="int", aliases=["certificate_authentication_port"]),
            monitoring_interval=dict(type="int"),
            monitoring_start_time=dict(type="str"),
            authorization_entries=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    allowed_primary_host_system=dict(type="str", required=True),
                    trust_group=dict(type="str", default="DEFAULT"),
                    replica_storage_location=dict(type="path"),
                    state=dict(type="str", choices=["present", "absent"], default="present"),
                ),
                required_if=[("state", "present", ["replica_storage_location"])],
            ),
            purge_authorization_entries=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = m.params
    changed = False
    with m:
        svc = m.service
        before = to_dict(svc.get_service_settings())
        after = copy.deepcopy(before)

        # ---- ModifyServiceSettings: only what differs --------------------------------------
        wanted = {}
        for option, prop in SETTINGS:
            value = p[option]
            if value is None:
                continue
            current = before.get(prop)
            same = _same_text(current, value) if isinstance(value, str) else current == value
            if not same:
                wanted[prop] = value
        if wanted:
            changed = True
            m.run_job(
                "modify_service_settings(%s)" % ", ".join(sorted(wanted)),
                svc.modify_service_settings,
                **wanted
            )
            after.update(wanted)
            if not m.check_mode:
                after = to_dict(svc.get_service_settings())

        # ---- authorization entries -----------------------------------------------------------
        entries_before = [_entry_view(e) for e in to_dicts(svc.list_authorization_entries())]
        by_host = dict((e["AllowedPrimaryHostSystem"].lower(), e) for e in entries_before)
        entries_after = dict(by_host)
        listed = set()
        for want in p["authorization_entries"]:
            host = want["allowed_primary_host_system"]
            key = host.lower()
            listed.add(key)
            found = by_host.get(key)
            if want["state"] == "absent":
                if found is not None:
                    changed = True
                    m.run_job("remove_authorization_entry(%s)" % host, svc.remove_authorization_entry, found["AllowedPrimaryHostSystem"])
                    entries_after.pop(key, None)
                continue
            entry = dict(
                AllowedPrimaryHostSystem=host,
                TrustGroup=want["trust_group"],
                ReplicaStorageLocation=want["replica_storage_location"],
            )
            if found is None:
                changed = True
                m.run_job("add_authorization_entry(%s)" % host, svc.add_authorization_entry, **entry)
                entries_after[key] = entry
            elif not (
                _same_text(found.get("TrustGroup"), entry["TrustGroup"])
                and _same_path(found.get("ReplicaStorageLocation"), entry["ReplicaStorageLocation"])
            ):
                changed = True
                entry["AllowedPrimaryHostSystem"] = found["AllowedPrimaryHostSystem"]
                m.run_job("modify_authorization_entry(%s)" % host, svc.modify_authorization_entry, **entry)
                entries_after[key] = entry
        if p["purge_authorization_entries"]:
            for key, found in sorted(by_host.items()):
                if key not in listed:
                    changed = True
                    name = found["AllowedPrimaryHostSystem"]
                    m.run_job("remove_authorization_entry(%s)" % name, svc.remove_authorization_entry, name)
                    entries_after.pop(key, None)
        if m.check_mode:
            entries = sorted(entries_after.values(), key=lambda e: e["AllowedPrimaryHostSystem"].lower())
        else:
            entries = sorted(
                (_entry_view(e) for e in to_dicts(svc.list_authorization_entries())),
                key=lambda e: e["AllowedPrimaryHostSystem"].lower(),
            )
    result = dict(settings=after, authorization_entries=entries, jobs=m.jobs)
    if m.module._diff:
        result["diff"] = dict(
            before=dict(settings=before, authorization_entries=sorted(entries_before, key=lambda e: e["AllowedPrimaryHostSystem"].lower())),
            after=dict(settings=after, authorization_entries=entries),
        )
    m.exit(changed=changed, **result)


if __name__ == "__main__":
    main()
