#!/usr/bin/python
# -*- coding: utf-8 -*-
# vmrepl.replication.vmrepl_relationship: a VM's replication relationship.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmrepl_relationship
short_description: Enable, change or remove the replication of a VM
version_added: 0.1.0
description:
  - Makes a VM on this host (the primary) replicate to a recovery server
    (CreateReplicationRelationship), runs its initial replication (StartReplication) and waits
    for it; changes the settings of an existing relationship (ModifyReplicationSettings) when
    they differ from the options given; or removes the relationship
    (RemoveReplicationRelationship).
  - With I(state=replica), makes the VM of an old primary a replica waiting for the reverse
    replication of the new primary after an unplanned failover (RequestReplicationStateChange(2),
    PowerShell's C(Set-VMReplication -AsReplica)).
  - Idempotent - a relationship found as asked reports C(changed=false); an initial replication
    already done is not repeated.
options:
  vm:
    description: The VM - its name, GUID or object path.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - C(present) - the VM is the primary of a relationship to I(recovery_server) with the
        settings given (the other settings keep their values, or take the model's defaults when
        the relationship is created).
      - C(absent) - the VM has no relationship on this host (the replica VM on the other side is
        kept, as in Hyper-V).
      - C(replica) - the VM, primary of a relationship, becomes a replica waiting for the
        reverse replication from its peer (its disks are kept; the VM must be off, see
        I(power_off)).
    type: str
    choices: [present, absent, replica]
    default: present
  recovery_server:
    description:
      - The recovery server (RecoveryConnectionPoint) - the host name of its vmrepld, which its
        C(hosts) table or DNS resolves.
      - An existing relationship to another recovery server is not moved - the task fails;
        remove the relationship first.
      - Required with I(state=present).
    type: str
  recovery_port:
    description: The recovery server's replication listener port (RecoveryServerPortNumber; it
      is C(service.ListenPort) of M(vmrepl.replication.vmrepl_info) on that host). Required with
      I(state=present).
    type: int
  authentication_type:
    description:
      - AuthenticationType - 1 the recovery server is trusted through the configured CA
        (plaintext on loopback when both ends allow it), 2 its certificate is pinned by
        I(certificate_thumbprint).
      - 1 when a relationship is created without it.
    type: int
    choices: [1, 2]
  certificate_thumbprint:
    description: Thumbprint of the certificate (CertificateThumbPrint), required with
      I(authentication_type=2).
    type: str
  replication_interval:
    description: Seconds between replication cycles (ReplicationInterval).
    type: int
    choices: [30, 300, 900]
  recovery_history:
    description: Extra recovery points kept on the replica, 0 to 24 (RecoveryHistory).
    type: int
  compression:
    description: Compress the data sent (CompressionEnabled).
    type: bool
  initial_replication:
    description:
      - How the initial replication runs when the relationship is ready for it (state 1).
      - C(network) sends every non-zero block; C(seeded) starts from a copy already in the
        replica VM's disks and sends only what differs; C(none) leaves the relationship ready
        for a later StartReplication.
    type: str
    choices: [network, seeded, none]
    default: network
  wait:
    description:
      - Wait (up to I(timeout)) for the initial replication, including one found running.
      - With C(false) the task returns once the initial replication has started.
    type: bool
    default: true
  power_off:
    description: With I(state=replica), turn the VM off first when it runs (the VM must be off
      to become a replica).
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
  - module: vmrepl.replication.vmrepl_server
  - module: vmrepl.replication.vmrepl_failover
  - module: vmrepl.replication.vmrepl_reverse
author:
  - vmrepl developers
"""

EXAMPLES = r"""
- name: Replicate web01 to hv-b every 5 minutes, 3 extra recovery points, network initial copy
  vmrepl.replication.vmrepl_relationship:
    vm: web01
    recovery_server: hv-b
    recovery_port: 8080
    authentication_type: 1
    replication_interval: 300
    recovery_history: 3
    compression: true
    initial_replication: network
    timeout: 3600

- name: Keep 6 recovery points from now on (only that setting is changed)
  vmrepl.replication.vmrepl_relationship:
    vm: web01
    recovery_server: hv-b
    recovery_port: 8080
    recovery_history: 6

- name: After an unplanned failover, make the old primary's web01 a replica of the new primary
  vmrepl.replication.vmrepl_relationship:
    vm: web01
    state: replica
    power_off: true

- name: Stop replicating web01
  vmrepl.replication.vmrepl_relationship:
    vm: web01
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the relationship was (or, in check mode, would be) created, changed,
    started, made a replica or removed.
  returned: always
  type: bool
vm:
  description: The VM's replication fields after the task (Msvm_ComputerSystem - Name,
    ElementName, EnabledState, ReplicationMode, ReplicationState, ReplicationHealth...).
  returned: success
  type: dict
  sample:
    Name: 3F2504E0-4F89-11D3-9A0C-0305E82C3301
    ElementName: web01
    ReplicationMode: 1
    ReplicationState: 3
settings:
  description: The relationship's Msvm_ReplicationSettingData after the task (in check mode,
    the settings found with the requested changes).
  returned: success, when the VM has a relationship
  type: dict
  sample:
    RecoveryConnectionPoint: hv-b
    RecoveryServerPortNumber: 8080
    AuthenticationType: 1
    ReplicationInterval: 300
    RecoveryHistory: 3
    CompressionEnabled: true
initial_replication:
  description: Final properties of the initial replication job (BlocksSent, DataBytesSent,
    WireBytesSent...), when the task ran or waited for one.
  returned: when an initial replication ran
  type: dict
actions:
  description: What the task did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["create_replication_relationship(hv-b:8080)", "start_replication(network)"]
jobs:
  description: Final properties of every job the task waited for.
  returned: success
  type: list
  elements: dict
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
code:
  description: The vmrepl status number of a failure (32775 for a relationship in a state that
    does not allow the change, 32769 when the recovery server does not admit this host...).
  returned: failed, on an error from vmrepl
  type: int
  sample: 32775
error_description:
  description: The engine's text of the failure (the job's ErrorDescription for a failed job).
  returned: failed, on an error from vmrepl
  type: str
job:
  description: Final properties of the job that failed.
  returned: failed, when a job failed
  type: dict
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
    ENABLED_OFF,
    INVALID_STATE,
    MODE_NONE,
    MODE_PRIMARY,
    MODE_REPLICA,
    STATE_READY,
    STATE_WAITING_IR,
    VmreplModule,
    relationship_summary,
    state_text,
    to_dicts,
    vmrepl,
)

# option -> Msvm_ReplicationSettingData property
SETTINGS = (
    ("recovery_server", "RecoveryConnectionPoint"),
    ("recovery_port", "RecoveryServerPortNumber"),
    ("authentication_type", "AuthenticationType"),
    ("certificate_thumbprint", "CertificateThumbPrint"),
    ("replication_interval", "ReplicationInterval"),
    ("recovery_history", "RecoveryHistory"),
    ("compression", "CompressionEnabled"),
)
CASELESS = ("RecoveryConnectionPoint", "CertificateThumbPrint")
IR_TYPES = {"network": 1, "seeded": 3}
# JobType of initial replications (StartInbandInitialReplication, StartResyncInitialReplication).
IR_JOB_TYPES = (94, 117)
JOB_RUNNING = (2, 3, 4)


def wanted_settings(p):
    return dict((prop, p[opt]) for opt, prop in SETTINGS if p[opt] is not None)


def differences(current, wanted):
    out = {}
    for prop, value in wanted.items():
        have = current.get(prop)
        if prop in CASELESS:
            same = (have or "").lower() == (value or "").lower()
        else:
            same = have == value
        if not same:
            out[prop] = value
    return out


def running_ir_job(m, system):
    """The InstanceID of the initial replication running for the VM, if the service lists it."""
    guid = (system.get("Name") or "").upper()
    name = system.get("ElementName") or ""
    for job in to_dicts(m.service.list_jobs()):
        if job.get("JobType") not in IR_JOB_TYPES or job.get("JobState") not in JOB_RUNNING:
            continue
        vsi = (job.get("VirtualSystemIdentifier") or "").upper()
        # Jobs name their VM: "<what> <VM name>"; VirtualSystemIdentifier when they carry it.
        if (vsi and vsi == guid) or (not vsi and name and (job.get("Name") or "").endswith(" " + name)):
            return job.get("InstanceID")
    return None


def start_ir(m, vm, state):
    """Runs (or waits for) the initial replication of a primary in ``state``; its final job."""
    p = m.params
    if p["initial_replication"] == "none":
        return None, False
    if state == STATE_READY:
        ir_type = IR_TYPES[p["initial_replication"]]
        what = "start_replication(%s)" % p["initial_replication"]
        job = m.call(what, m.service.start_replication, vm, ir_type)
        if job is None:  # check mode
            return None, True
        if not p["wait"]:
            job.close()
            return None, True
        return m.wait(what, job), True
    if state == STATE_WAITING_IR and p["wait"] and not m.check_mode:
        system = m.system(vm)
        instance_id = running_ir_job(m, system)
        if instance_id is not None:
            try:
                job = m.service.get_job(instance_id)
            except vmrepl.FileNotFound:
                return None, False  # it ended meanwhile
            return m.wait("wait for the initial replication", job), False
    return None, False


def main():
    m = VmreplModule(
        argument_spec=dict(
            vm=dict(type="str", required=True, aliases=["name"]),
            state=dict(type="str", choices=["present", "absent", "replica"], default="present"),
            recovery_server=dict(type="str"),
            recovery_port=dict(type="int"),
            authentication_type=dict(type="int", choices=[1, 2]),
            certificate_thumbprint=dict(type="str"),
            replication_interval=dict(type="int", choices=[30, 300, 900]),
            recovery_history=dict(type="int"),
            compression=dict(type="bool"),
            initial_replication=dict(type="str", choices=["network", "seeded", "none"], default="network"),
            wait=dict(type="bool", default=True),
            power_off=dict(type="bool", default=False),
        ),
        required_if=[
            ("state", "present", ["recovery_server", "recovery_port"]),
            ("authentication_type", 2, ["certificate_thumbprint"]),
        ],
        supports_check_mode=True,
    )
    p = m.params
    vm = p["vm"]
    changed = False
    result = {}
    with m:
        svc = m.service
        system = m.system(vm)
        mode = system.get("ReplicationMode")
        state = system.get("ReplicationState")
        before = m.settings(vm) if mode in (MODE_PRIMARY, MODE_REPLICA) else None
        after = copy.deepcopy(before)

        if p["state"] == "absent":
            if mode != MODE_NONE:
                changed = True
                m.run_job("remove_replication_relationship", svc.remove_replication_relationship, vm)
                after = None

        elif p["state"] == "replica":
            if mode != MODE_REPLICA:
                if mode == MODE_PRIMARY and p["power_off"]:
                    m.power(vm, system, ENABLED_OFF)
                changed = True
                m.run_job("request_replication_state_change(2)", svc.request_replication_state_change, vm, 2)

        else:  # present
            wanted = wanted_settings(p)
            if mode == MODE_NONE:
                create = dict(wanted)
                create.setdefault("AuthenticationType", 1)
                changed = True
                m.run_job(
                    "create_replication_relationship(%s:%s)" % (p["recovery_server"], p["recovery_port"]),
                    svc.create_replication_relationship,
                    vm,
                    vmrepl.ReplicationSettingData(**create),
                )
                after = create
                state = STATE_READY
            elif mode == MODE_PRIMARY:
                current_server = before.get("RecoveryConnectionPoint") or ""
                if current_server.lower() != p["recovery_server"].lower():
                    m.refuse(
                        32773,
                        "InvalidParameter",
                        "VM %s already replicates to %s, not %s (%s): RecoveryConnectionPoint cannot change on an "
                        "existing relationship; remove it (state=absent) first" % (vm, current_server, p["recovery_server"], state_text(system)),
                    )
                diff = differences(before, wanted)
                if diff:
                    changed = True
                    m.run_job(
                        "modify_replication_settings(%s)" % ", ".join(sorted(diff)),
                        svc.modify_replication_settings,
                        vm,
                        **diff
                    )
                    after.update(diff)
            else:
                m.refuse(
                    INVALID_STATE,
                    "InvalidState",
                    "VM %s is not a primary here (%s): a replica's relationship is managed on its primary; "
                    "state=present needs ReplicationMode 0 or 1" % (vm, state_text(system)),
                )
            final_ir, started = start_ir(m, vm, state)
            changed = changed or started
            if final_ir is not None:
                result["initial_replication"] = final_ir

        if not m.check_mode:
            system = m.system(vm)
            if system.get("ReplicationMode") in (MODE_PRIMARY, MODE_REPLICA):
                after = m.settings(vm)
            else:
                after = None
    result["vm"] = relationship_summary(system)
    if after is not None:
        result["settings"] = after
    result["jobs"] = m.jobs
    if m.module._diff:
        result["diff"] = dict(before=dict(settings=before or {}), after=dict(settings=after or {}))
    m.exit(changed=changed, **result)


if __name__ == "__main__":
    main()
