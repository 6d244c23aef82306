#!/usr/bin/python
# -*- coding: utf-8 -*-
# vmrepl.replication.vmrepl_reverse: reverse the replication of a failed-over VM.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmrepl_reverse
short_description: Reverse the replication of a failed-over VM
version_added: 0.1.0
description:
  - On the host where a VM was failed over (the replica, ReplicationState 5 after a planned
    failover or 6 after a committed unplanned one), makes the old primary its replica and this
    VM the primary (ReverseReplicationRelationship, PowerShell's C(Set-VMReplication
    -Reverse)). Only the blocks either side changed since their common point travel.
  - The old primary must be a recovery server admitting this host (see
    M(vmrepl.replication.vmrepl_server)), its VM off, and either prepared (planned failover,
    state 4) or made a replica (unplanned - M(vmrepl.replication.vmrepl_relationship) with
    C(state=replica)).
  - After a planned failover replication goes on at once. After an unplanned one the
    relationship is ready (state 1) and I(start_replication) runs the initial replication back,
    which sends what differs.
  - Idempotent - a VM already primary here, replicating to I(recovery_server), reports
    C(changed=false) (after starting its replication if it was left ready). A VM in another
    state fails with the engine's refusal (code 32775, the message naming the state).
options:
  vm:
    description: The VM - its name, GUID or object path.
    type: str
    required: true
    aliases: [name]
  recovery_server:
    description:
      - The old primary, which becomes the recovery server (RecoveryConnectionPoint).
      - Default - the relationship's primary (PrimaryConnectionPoint), as C(Set-VMReplication
        -Reverse) does.
    type: str
  recovery_port:
    description:
      - The old primary's replication listener port (RecoveryServerPortNumber; its
        C(service.ListenPort) in M(vmrepl.replication.vmrepl_info)).
      - Default - the port the replica learned from the old primary when it connected (the
        VM's C(ReplicationPeer)), else the relationship's port (hosts of a pair usually listen
        on the same port).
    type: int
  authentication_type:
    description: AuthenticationType of the reversed relationship (1 CA / loopback plaintext, 2
      certificate); default - the relationship's.
    type: int
    choices: [1, 2]
  certificate_thumbprint:
    description: CertificateThumbPrint for I(authentication_type=2); default - the
      relationship's.
    type: str
  replication_interval:
    description: ReplicationInterval of the reversed relationship; default - the relationship's.
    type: int
    choices: [30, 300, 900]
  recovery_history:
    description: RecoveryHistory of the reversed relationship (0 to 24); default - the
      relationship's.
    type: int
  compression:
    description: CompressionEnabled of the reversed relationship; default - the relationship's.
    type: bool
  verify:
    description: Re-read and re-hash both sides' disks before the reverse commits (slower; for
      an old primary that may hold writes this side never saw).
    type: bool
    default: false
  start_replication:
    description:
      - What to do when the reverse leaves the relationship ready (state 1, after an unplanned
        failover), and for a VM found reversed but not started.
      - C(auto) and C(network) start it with a network initial replication (it sends only the
        blocks that differ between the two sides); C(seeded) starts it as seeded (the old
        primary's disks are the seed); C(none) leaves it ready.
      - After a planned failover replication goes on by itself and nothing is started.
    type: str
    choices: [auto, network, seeded, none]
    default: auto
  start_vm:
    description: Start the VM (now the primary) when it is off, once the reverse is done.
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
  - module: vmrepl.replication.vmrepl_failover
  - module: vmrepl.replication.vmrepl_relationship
author:
  - vmrepl developers
"""

EXAMPLES = r"""
- name: Planned failover done on hv-b - replicate back to hv-a and run web01 here
  vmrepl.replication.vmrepl_reverse:
    vm: web01
    recovery_server: hv-a
    recovery_port: 8080
    start_vm: true

- name: Unplanned - hv-a is back and its web01 a replica; reverse, verified, and resync
  vmrepl.replication.vmrepl_reverse:
    vm: web01
    recovery_server: hv-a
    recovery_port: 8080
    verify: true
    start_replication: auto
    timeout: 7200
"""

RETURN = r"""
changed:
  description: Whether the reverse, the start of replication or the start of the VM was done
    (or, in check mode, would be).
  returned: always
  type: bool
vm:
  description: The VM's replication fields after the task (Msvm_ComputerSystem -
    ReplicationMode 1 and ReplicationState 3 once replicating to the old primary).
  returned: success
  type: dict
  sample:
    ElementName: web01
    ReplicationMode: 1
    ReplicationState: 3
settings:
  description: The relationship's Msvm_ReplicationSettingData after the task (in check mode,
    the settings the reverse would pass).
  returned: success
  type: dict
reverse:
  description: Final properties of the reverse job (ChangeSource, CommonPoint, BlocksSent,
    DataBytesSent, WireBytesSent, DiskMerkleRoots...).
  returned: when the reverse ran outside check mode
  type: dict
start_replication:
  description: Final properties of the initial replication after an unplanned reverse
    (BlocksSent...).
  returned: when replication was started outside check mode
  type: dict
actions:
  description: What the task did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["reverse_replication_relationship(hv-a:8080)", "start_replication(network)"]
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
  description: The vmrepl status number of a failure - 32775 when the VM (or the old primary)
    is not in a state that allows the reverse, 32769 when the old primary does not admit this
    host, 32777 when it cannot be reached.
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

import dataclasses

from ansible_collections.vmrepl.replication.plugins.module_utils.vmrepl_common import (
    ENABLED_RUNNING,
    INVALID_STATE,
    MODE_PRIMARY,
    MODE_REPLICA,
    STATE_COMMITTED,
    STATE_READY,
    STATE_RECOVERED,
    VmreplModule,
    relationship_summary,
    state_text,
    vmrepl,
)

OVERRIDES = (
    ("recovery_server", "RecoveryConnectionPoint"),
    ("recovery_port", "RecoveryServerPortNumber"),
    ("authentication_type", "AuthenticationType"),
    ("certificate_thumbprint", "CertificateThumbPrint"),
    ("replication_interval", "ReplicationInterval"),
    ("recovery_history", "RecoveryHistory"),
    ("compression", "CompressionEnabled"),
)
START_TYPES = {"auto": 1, "network": 1, "seeded": 3}
# Read-only and identity members the reverse does not take from the caller.
READ_ONLY = ("RootCertificateThumbPrint", "RecoveryHostSystem", "PrimaryConnectionPoint", "PrimaryHostSystem")


def peer_port(system, host):
    """The old primary's listener port as the replica learned it (its ReplicationPeer,
    ``host:port``), when it names ``host``; else None."""
    peer = system.get("ReplicationPeer") or ""
    name, sep, port = peer.rpartition(":")
    if sep and port.isdigit() and host and name.lower() == host.lower():
        return int(port)
    return None


def reverse_settings(m, system, current):
    """The settings of the reverse - the relationship's own, the old primary as the recovery
    server (at the port the replica learned from it), and the options given."""
    p = m.params
    # The properties the binding's dataclass knows (a newer engine may report more).
    known = set(f.name for f in dataclasses.fields(vmrepl.ReplicationSettingData))
    data = dict((k, v) for k, v in current.items() if k in known and k not in READ_ONLY and v is not None)
    data["RecoveryConnectionPoint"] = current.get("PrimaryConnectionPoint") or current.get("PrimaryHostSystem")
    port = peer_port(system, p["recovery_server"] or data["RecoveryConnectionPoint"])
    if port:
        data["RecoveryServerPortNumber"] = port
    for option, prop in OVERRIDES:
        if p[option] is not None:
            data[prop] = p[option]
    return data


def start(m, vm):
    """Starts the replication of a reversed relationship left ready (state 1)."""
    how = m.params["start_replication"]
    if how == "none":
        return None
    what = "start_replication(%s)" % ("network" if how == "auto" else how)
    return m.run_job(what, m.service.start_replication, vm, START_TYPES[how])


def main():
    m = VmreplModule(
        argument_spec=dict(
            vm=dict(type="str", required=True, aliases=["name"]),
            recovery_server=dict(type="str"),
            recovery_port=dict(type="int"),
            authentication_type=dict(type="int", choices=[1, 2]),
            certificate_thumbprint=dict(type="str"),
            replication_interval=dict(type="int", choices=[30, 300, 900]),
            recovery_history=dict(type="int"),
            compression=dict(type="bool"),
            verify=dict(type="bool", default=False),
            start_replication=dict(type="str", choices=["auto", "network", "seeded", "none"], default="auto"),
            start_vm=dict(type="bool", default=False),
        ),
        required_if=[("authentication_type", 2, ["certificate_thumbprint"])],
        supports_check_mode=True,
    )
    p = m.params
    vm = p["vm"]
    changed = False
    result = {}
    with m:
        svc = m.service
        system = m.system(vm)
        mode, state = system.get("ReplicationMode"), system.get("ReplicationState")
        current = m.settings(vm) if mode in (MODE_PRIMARY, MODE_REPLICA) else {}
        settings = current

        if mode == MODE_PRIMARY:
            # Reversed already (or an original primary): done when it replicates to the server asked.
            target = current.get("RecoveryConnectionPoint") or ""
            if p["recovery_server"] is not None and target.lower() != p["recovery_server"].lower():
                m.refuse(
                    INVALID_STATE,
                    "InvalidState",
                    "VM %s is a primary replicating to %s, not to %s (%s); the reverse needs a failed-over replica "
                    "(ReplicationMode 2, ReplicationState 5 or 6)" % (vm, target, p["recovery_server"], state_text(system)),
                )
            if state == STATE_READY and p["start_replication"] != "none":
                changed = True
                final = start(m, vm)
                if final is not None:
                    result["start_replication"] = final
        else:
            if mode == MODE_REPLICA and state in (STATE_RECOVERED, STATE_COMMITTED):
                settings = reverse_settings(m, system, current)
                what = "reverse_replication_relationship(%s:%s)" % (
                    settings.get("RecoveryConnectionPoint"),
                    settings.get("RecoveryServerPortNumber"),
                )
            else:
                # The engine refuses with the state it finds (InvalidState naming it).
                settings = reverse_settings(m, system, current) if current else dict(
                    (prop, p[opt]) for opt, prop in OVERRIDES if p[opt] is not None
                )
                what = "reverse_replication_relationship"
            changed = True
            final = m.run_job(
                what,
                svc.reverse_replication_relationship,
                vm,
                vmrepl.ReplicationSettingData.from_dict(settings),
                verify="full" if p["verify"] else None,
            )
            if final is not None:
                result["reverse"] = final
                now = m.system(vm)
                if now.get("ReplicationState") == STATE_READY:
                    final = start(m, vm)
                    if final is not None:
                        result["start_replication"] = final
            elif m.check_mode and p["start_replication"] != "none" and system.get("FailedOverReplicationType") != 3:
                m.actions.append("start_replication(%s) if the reverse leaves the relationship ready"
                                 % ("network" if p["start_replication"] == "auto" else p["start_replication"]))

        if p["start_vm"]:
            now = system if m.check_mode else m.system(vm)
            changed |= m.power(vm, now, ENABLED_RUNNING)

        if not m.check_mode:
            system = m.system(vm)
            settings = m.settings(vm)
    result["vm"] = relationship_summary(system)
    result["settings"] = settings
    result["jobs"] = m.jobs
    m.exit(changed=changed, **result)


if __name__ == "__main__":
    main()
