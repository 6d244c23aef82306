#!/usr/bin/python
# -*- coding: utf-8 -*-
# vmrepl.replication.vmrepl_info: read-only state of a vmrepl host.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmrepl_info
short_description: Read the replication state of a vmrepl host
version_added: 0.1.0
description:
  - Reads, and never changes, what a vmrepl service (the host's vmrepld) knows - the service
    itself and its recovery-server settings, authorization entries, VMs, replication
    relationships, recovery points, statistics and jobs.
  - Property names and numbers are the model's (Hyper-V Replica WMI) - for example a VM's
    C(ReplicationMode) (0 none, 1 primary, 2 replica, 3 test replica) and C(ReplicationState)
    (1 ready, 2 waiting for initial replication, 3 replicating, 4 prepared for planned failover,
    5 failed over, 6 failover committed, 7 suspended...).
  - Playbooks use it to find the listener port of each host (C(service.ListenPort)) and to
    decide which steps of a runbook are still to do.
options:
  vm:
    description:
      - One VM (its name, GUID or object path). The result then has C(exists) and C(vm), and
        the per-VM facts (relationships, recovery points, statistics) cover only it.
      - A VM that is not on the host is not an error - C(exists) is false.
    type: str
    aliases: [name]
  gather:
    description:
      - What to read. C(service) is the service instance with its recovery-server settings,
        C(authorization) its authorization entries, C(vms) every VM, C(relationships) the
        replication settings of each VM that has a relationship, C(recovery_points) the points
        of each replica VM, C(statistics) the replication statistics of each VM with a
        relationship, C(jobs) the jobs the service keeps, C(all) everything.
    type: list
    elements: str
    choices: [all, service, authorization, vms, relationships, recovery_points, statistics, jobs]
    default: [service, vms, relationships]
extends_documentation_fragment:
  - vmrepl.replication.service
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: vmrepl.replication.vmrepl_relationship
  - module: vmrepl.replication.vmrepl_failover
author:
  - vmrepl developers
"""

EXAMPLES = r"""
- name: Read the service and web01 on this host
  vmrepl.replication.vmrepl_info:
    uri: unix:/run/vmrepl/vmrepld.sock
    vm: web01
    gather: [service, relationships]
  register: info

- name: Show where web01 replicates to, and this host's replication port
  ansible.builtin.debug:
    msg: >-
      web01 is mode {{ info.vm.ReplicationMode }} state {{ info.vm.ReplicationState }};
      this host listens on {{ info.service.ListenPort }}
  when: info.exists

- name: Recovery points of the replicas on this host, and the jobs of the last minutes
  vmrepl.replication.vmrepl_info:
    gather: [recovery_points, jobs]
  register: points
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
  sample: false
exists:
  description: Whether I(vm) is on this host.
  returned: when I(vm) is given
  type: bool
  sample: true
vm:
  description: The Msvm_ComputerSystem of I(vm) (Name is its GUID, ElementName its name).
  returned: when I(vm) is given and exists
  type: dict
  sample:
    Name: 3F2504E0-4F89-11D3-9A0C-0305E82C3301
    ElementName: web01
    EnabledState: 3
    ReplicationMode: 1
    ReplicationState: 3
    ReplicationHealth: 1
service:
  description:
    - The Msvm_ReplicationService instance - HostName, HostRoot, Version, ListenAddress,
      ListenPort... - and, under C(settings), the Msvm_ReplicationServiceSettingData
      (RecoveryServerEnabled, AllowedAuthenticationType, HttpPort, HttpsPort...).
  returned: when C(service) is gathered
  type: dict
  sample:
    HostName: hv-b
    ListenAddress: 127.0.0.1:0
    ListenPort: 40871
    settings:
      RecoveryServerEnabled: true
      AllowedAuthenticationType: 1
authorization_entries:
  description: The Msvm_ReplicationAuthorizationSettingData entries.
  returned: when C(authorization) is gathered
  type: list
  elements: dict
  sample:
    - AllowedPrimaryHostSystem: hv-a
      TrustGroup: DEFAULT
      ReplicaStorageLocation: /var/lib/vmrepl/replicas
vms:
  description: The Msvm_ComputerSystem of every VM (or of I(vm) only).
  returned: when C(vms) is gathered
  type: list
  elements: dict
relationships:
  description: VM name -> its Msvm_ReplicationSettingData, for the VMs with a relationship.
  returned: when C(relationships) is gathered
  type: dict
  sample:
    web01:
      RecoveryConnectionPoint: hv-b
      RecoveryServerPortNumber: 40871
      ReplicationInterval: 300
      RecoveryHistory: 3
      CompressionEnabled: true
      AuthenticationType: 1
recovery_points:
  description: VM name -> its recovery points (Msvm_VirtualSystemSettingData, oldest first; the
    latest has IsLatest true), for the replica VMs.
  returned: when C(recovery_points) is gathered
  type: dict
statistics:
  description: VM name -> its Msvm_ReplicationStatistics, for the VMs with a relationship.
  returned: when C(statistics) is gathered
  type: dict
jobs:
  description: The jobs the service keeps (Msvm_ConcreteJob), running or ended recently.
  returned: when C(jobs) is gathered
  type: list
  elements: dict
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 0.012
code:
  description: The vmrepl status number of a failure (32775 InvalidState, 32779 FileNotFound...).
  returned: failed, on an error from vmrepl
  type: int
  sample: 32777
error_description:
  description: The engine's text of the failure.
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
"""

from ansible_collections.vmrepl.replication.plugins.module_utils.vmrepl_common import (
    MODE_NONE,
    MODE_REPLICA,
    VmreplModule,
    to_dict,
    to_dicts,
)

GATHER = ["service", "authorization", "vms", "relationships", "recovery_points", "statistics", "jobs"]


def main():
    m = VmreplModule(
        argument_spec=dict(
            vm=dict(type="str", aliases=["name"]),
            gather=dict(
                type="list",
                elements="str",
                choices=["all"] + GATHER,
                default=["service", "vms", "relationships"],
            ),
        ),
        supports_check_mode=True,
    )
    gather = set(m.params["gather"])
    if "all" in gather:
        gather = set(GATHER)
    result = {}
    with m:
        svc = m.service
        if "service" in gather:
            service = to_dict(svc.info())
            service["settings"] = to_dict(svc.get_service_settings())
            result["service"] = service
        if "authorization" in gather:
            result["authorization_entries"] = to_dicts(svc.list_authorization_entries())
        if m.params["vm"] is not None:
            one = m.system(m.params["vm"], required=False)
            result["exists"] = one is not None
            if one is not None:
                result["vm"] = one
            systems = [one] if one is not None else []
        elif gather & {"vms", "relationships", "recovery_points", "statistics"}:
            systems = to_dicts(svc.list_systems())
        else:
            systems = []
        if "vms" in gather:
            result["vms"] = systems
        related = [s for s in systems if s.get("ReplicationMode", MODE_NONE) != MODE_NONE]
        if "relationships" in gather:
            result["relationships"] = dict(
                (s["ElementName"], to_dict(svc.get_replication_settings(s["Name"])))
                for s in related
                if s.get("ReplicationMode") != 3  # a test VM has no relationship of its own
            )
        if "recovery_points" in gather:
            result["recovery_points"] = dict(
                (s["ElementName"], to_dicts(svc.list_recovery_points(s["Name"])))
                for s in related
                if s.get("ReplicationMode") == MODE_REPLICA
            )
        if "statistics" in gather:
            result["statistics"] = dict(
                (s["ElementName"], to_dict(svc.get_replication_statistics(s["Name"])))
                for s in related
                if s.get("ReplicationMode") != 3
            )
        if "jobs" in gather:
            result["jobs"] = to_dicts(svc.list_jobs())
    m.exit(changed=False, **result)


if __name__ == "__main__":
    main()
