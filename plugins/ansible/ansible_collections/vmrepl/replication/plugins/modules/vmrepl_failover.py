#!/usr/bin/python
# -*- coding: utf-8 -*-
# vmrepl.replication.vmrepl_failover: planned, unplanned and test failover.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmrepl_failover
short_description: Prepare, initiate, test, commit or revert the failover of a replicated VM
version_added: 0.1.0
description:
  - The failover steps of the Hyper-V Replica model, each idempotent - the task first reads the
    VM's ReplicationMode and ReplicationState, reports C(changed=false) when the step is already
    done, starts the step's job when the state allows it, and otherwise passes the engine's
    refusal through (code 32775, the message naming the state found).
  - C(prepare) - on the primary, a planned failover's first step (C(Start-VMFailover -Prepare))
    - the VM off, a final replication cycle, then ReplicationState 4. Done when the state is 4.
  - C(initiate) - on the replica, fail over to a recovery point (C(Start-VMFailover),
    InitiateFailover) - the point becomes the VM's disks, ReplicationState 5. After a prepare
    on the primary it is a planned failover (nothing lost); without one, an unplanned failover
    to the point chosen. Done when the state is 5 or 6.
  - C(commit) - on the replica, keep the failover (C(Complete-VMFailover), CommitFailover) -
    the other recovery points are dropped, ReplicationState 6. Done when the state is 6.
  - C(revert) - undo a failover (C(Stop-VMFailover), RevertFailover) - on a prepared primary
    (4) replication goes on (3); on a failed-over replica (5) the failover disks are dropped and
    replication goes on; on a replica with a test VM, the test VM is removed. Done when there
    is nothing to undo (state 3, and no test VM).
  - C(test) - on the replica, a test failover (C(Start-VMFailover -AsTest), TestReplicaSystem)
    - a separate VM C(<name> - Test) from a recovery point while replication goes on. Done when
    the replica has a test VM.
  - The steps that must run on the other host of the pair (prepare on the primary, the
    reverse replication afterwards) are separate tasks; see
    M(vmrepl.replication.vmrepl_reverse).
options:
  vm:
    description: The VM - its name, GUID or object path.
    type: str
    required: true
    aliases: [name]
  action:
    description: The failover step (see the description).
    type: str
    required: true
    choices: [prepare, initiate, test, commit, revert]
  recovery_point:
    description:
      - For I(action=initiate) and I(action=test) - the recovery point, C(latest), or a point's
        RecoveryPointSequence number or InstanceID (as M(vmrepl.replication.vmrepl_info) lists
        them under C(recovery_points)).
      - An initiate found already done is not checked against it.
    type: str
    default: latest
  power_off:
    description:
      - Turn the VM off first when it runs - the primary for I(action=prepare), the replica VM
        for I(action=initiate) and I(action=revert). Without it, a running VM makes the step fail
        with code 32774 (SystemInUse).
    type: bool
    default: false
  start_vm:
    description: After I(action=initiate) or I(action=commit), start the failed-over VM when it
      is off (the replica then runs the workload).
    type: bool
    default: false
extends_documentation_fragment:
  - vmrepl.replication.service
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: vmrepl.replication.vmrepl_reverse
  - module: vmrepl.replication.vmrepl_relationship
  - module: vmrepl.replication.vmrepl_info
author:
  - vmrepl developers
"""

EXAMPLES = r"""
# Planned failover of web01 from hv-a to hv-b (hv-a and hv-b are inventory hosts whose
# vmrepl_uri is the admin socket of their vmrepld).
- name: Prepare on the primary (web01 off, final cycle, state 4)
  vmrepl.replication.vmrepl_failover:
    uri: "{{ hostvars['hv-a'].vmrepl_uri }}"
    vm: web01
    action: prepare
    power_off: true
  delegate_to: hv-a

- name: Fail over on the replica to the latest point (state 5)
  vmrepl.replication.vmrepl_failover:
    uri: "{{ hostvars['hv-b'].vmrepl_uri }}"
    vm: web01
    action: initiate
  delegate_to: hv-b

# Unplanned: fail over to the point before the latest, keep it, start the VM.
- name: Recovery points of web01 on hv-b
  vmrepl.replication.vmrepl_info:
    vm: web01
    gather: [recovery_points]
  register: info

- name: Fail over to the previous point
  vmrepl.replication.vmrepl_failover:
    vm: web01
    action: initiate
    recovery_point: "{{ info.recovery_points.web01[-2].RecoveryPointSequence }}"

- name: Commit and start it
  vmrepl.replication.vmrepl_failover:
    vm: web01
    action: commit
    start_vm: true

# Test failover, then clean up.
- name: Test VM from the latest point
  vmrepl.replication.vmrepl_failover:
    vm: web01
    action: test
  register: test

- name: Remove the test VM
  vmrepl.replication.vmrepl_failover:
    vm: web01
    action: revert
"""

RETURN = r"""
changed:
  description: Whether the step (or turning the VM off or on) was done, or in check mode would
    be; false when the step was found done.
  returned: always
  type: bool
vm:
  description: The VM's replication fields after the task (Msvm_ComputerSystem - Name,
    ElementName, EnabledState, ReplicationMode, ReplicationState, ReplicationHealth,
    FailedOverReplicationType...).
  returned: success
  type: dict
  sample:
    Name: 3F2504E0-4F89-11D3-9A0C-0305E82C3301
    ElementName: web01
    ReplicationMode: 2
    ReplicationState: 5
    FailedOverReplicationType: 3
test_vm:
  description: The test VM (Msvm_ComputerSystem) - for I(action=test), the one made or found.
  returned: when I(action=test) succeeds outside check mode
  type: dict
  sample:
    Name: 6B29FC40-CA47-1067-B31D-00DD010662DA
    ElementName: web01 - Test
    ReplicationMode: 3
job:
  description: Final properties of the step's job (Msvm_ConcreteJob - JobType, JobState,
    ElapsedTime, and the step's results such as ResultingSystem for a test failover).
  returned: when the step ran outside check mode; also on failure of a job
  type: dict
actions:
  description: What the task did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["request_state_change(off)", "request_replication_state_change(4)"]
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
  description: The vmrepl status number of a failure - 32775 InvalidState when the VM's state
    does not allow the step (the message names the ReplicationMode and ReplicationState found),
    32774 SystemInUse for a running VM, 32779 FileNotFound for an unknown VM or point.
  returned: failed, on an error from vmrepl
  type: int
  sample: 32775
error_description:
  description: The engine's text of the failure (the job's ErrorDescription for a failed job).
  returned: failed, on an error from vmrepl
  type: str
  sample: "VM web01 is in ReplicationState 3 (Replicating) (mode 2); CommitFailover needs state 5"
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

from ansible_collections.vmrepl.replication.plugins.module_utils.vmrepl_common import (
    ENABLED_OFF,
    ENABLED_RUNNING,
    MODE_PRIMARY,
    MODE_REPLICA,
    MODE_TEST_REPLICA,
    STATE_COMMITTED,
    STATE_PREPARED,
    STATE_RECOVERED,
    STATE_REPLICATING,
    STATE_SUSPENDED,
    VmreplModule,
    relationship_summary,
    to_dicts,
)


def recovery_point(text):
    """The snapshot argument of the binding: None (latest), a sequence number or an InstanceID."""
    if text is None or text.strip().lower() in ("", "latest"):
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    return text


def test_vm_of(m, system):
    """The test VM made from this replica (mode 3, ReplicationPeer naming the replica), or None."""
    for s in to_dicts(m.service.list_systems()):
        if s.get("ReplicationMode") != MODE_TEST_REPLICA:
            continue
        if (s.get("ReplicationPeer") or "").upper() == (system.get("Name") or "").upper():
            return s
    return None


def main():
    m = VmreplModule(
        argument_spec=dict(
            vm=dict(type="str", required=True, aliases=["name"]),
            action=dict(type="str", required=True, choices=["prepare", "initiate", "test", "commit", "revert"]),
            recovery_point=dict(type="str", default="latest"),
            power_off=dict(type="bool", default=False),
            start_vm=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = m.params
    vm, action = p["vm"], p["action"]
    changed = False
    result = {}
    job = None
    with m:
        svc = m.service
        system = m.system(vm)
        mode, state = system.get("ReplicationMode"), system.get("ReplicationState")

        if action == "prepare":
            if not (mode == MODE_PRIMARY and state == STATE_PREPARED):
                if p["power_off"] and mode == MODE_PRIMARY and state == STATE_REPLICATING:
                    changed |= m.power(vm, system, ENABLED_OFF)
                changed = True
                job = m.run_job("request_replication_state_change(4)", svc.request_replication_state_change, vm, 4)

        elif action == "initiate":
            if not (mode == MODE_REPLICA and state in (STATE_RECOVERED, STATE_COMMITTED)):
                if p["power_off"] and mode == MODE_REPLICA:
                    changed |= m.power(vm, system, ENABLED_OFF)
                changed = True
                point = recovery_point(p["recovery_point"])
                job = m.run_job(
                    "initiate_failover(%s)" % (p["recovery_point"] or "latest"), svc.initiate_failover, vm, point
                )

        elif action == "commit":
            if not (mode == MODE_REPLICA and state == STATE_COMMITTED):
                changed = True
                job = m.run_job("commit_failover", svc.commit_failover, vm)

        elif action == "revert":
            test_vm = test_vm_of(m, system) if mode == MODE_REPLICA else None
            if test_vm is not None:
                changed = True
                m.power(test_vm["Name"], test_vm, ENABLED_OFF)
                m.call("destroy_system(%s)" % test_vm.get("ElementName"), svc.destroy_system, test_vm["Name"])
            elif (mode == MODE_PRIMARY and state == STATE_REPLICATING) or (
                mode == MODE_REPLICA and state in (STATE_REPLICATING, STATE_SUSPENDED)
            ):
                pass  # nothing to revert
            else:
                if p["power_off"] and mode == MODE_REPLICA and state == STATE_RECOVERED:
                    changed |= m.power(vm, system, ENABLED_OFF)
                changed = True
                job = m.run_job("revert_failover", svc.revert_failover, vm)

        else:  # test
            test_vm = test_vm_of(m, system) if mode == MODE_REPLICA else None
            if test_vm is None:
                changed = True
                point = recovery_point(p["recovery_point"])
                job = m.run_job(
                    "test_replica_system(%s)" % (p["recovery_point"] or "latest"), svc.test_replica_system, vm, point
                )
                if job is not None:
                    test_vm = m.system(job["ResultingSystem"])
            if test_vm is not None:
                result["test_vm"] = relationship_summary(test_vm)

        if p["start_vm"] and action in ("initiate", "commit"):
            now = system if m.check_mode else m.system(vm)
            changed |= m.power(vm, now, ENABLED_RUNNING)

        if not m.check_mode:
            system = m.system(vm)
    result["vm"] = relationship_summary(system)
    if job is not None:
        result["job"] = job
    result["jobs"] = m.jobs
    m.exit(changed=changed, **result)


if __name__ == "__main__":
    main()
