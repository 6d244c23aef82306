"""VMs (Msvm_ComputerSystem): define, get, list, state, disks, destroy, and their errors."""

from __future__ import annotations

import os
import uuid

import pytest

import vmrepl
from conftest import MiB

GUID = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"


def test_define_get_list_destroy(svc: vmrepl.Service) -> None:
    vm = svc.define_system(name="web01", disks=[16 * MiB, 4 * MiB])
    assert vm.class_name == "Msvm_ComputerSystem"
    assert vm.ElementName == "web01"
    assert uuid.UUID(vm.Name)  # a GUID
    assert vm.EnabledState == vmrepl.EnabledState.Off
    assert vm.ReplicationState == vmrepl.ReplicationState.Disabled
    assert vm.ReplicationMode == vmrepl.ReplicationMode.None_
    assert vm.DiskSizes == [16 * MiB, 4 * MiB]
    assert [os.path.getsize(p) for p in vm.DiskPaths] == [16 * MiB, 4 * MiB]

    other = svc.define_system(name="db01", disks=(4 * MiB,))
    listed = svc.list_systems()
    assert sorted(i.ElementName for i in listed) == ["db01", "web01"]
    assert all(isinstance(i, vmrepl.Instance) for i in listed)

    svc.destroy_system(other)
    assert [i.ElementName for i in svc.list_systems()] == ["web01"]
    with pytest.raises(vmrepl.FileNotFound):
        svc.get_system("db01")


def test_computer_system_by_name_guid_path_instance_uuid(svc: vmrepl.Service) -> None:
    vm = svc.define_system(name="web01", disks=[MiB], id=uuid.UUID(GUID))
    assert vm.Name == GUID
    for cs in ("web01", GUID, GUID.lower(), vm.Path, vm, uuid.UUID(GUID)):
        assert svc.get_system(cs).Name == GUID  # type: ignore[arg-type]
    relative = vm.Path.split(":", 1)[1]  # Msvm_ComputerSystem.CreationClassName=...,Name=...
    assert svc.get_system(relative).Name == GUID
    assert svc.define_system(name="b", disks=[MiB], id="7A1B2C3D-0000-4000-8000-000000000001").Name.startswith("7A1B")


def test_computer_system_of_another_class_or_type_is_refused(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    with pytest.raises(TypeError, match="Msvm_ComputerSystem"):
        svc.get_system(svc.info())
    with pytest.raises(TypeError):
        svc.get_system(42)  # type: ignore[arg-type]
    with pytest.raises(vmrepl.InvalidParameter, match="host"):
        svc.get_system(vm.Path.replace("hv-test", "other-host"))
    with pytest.raises(vmrepl.InvalidParameter):
        svc.get_system("")


def test_unicode_names_round_trip(svc: vmrepl.Service) -> None:
    vm = svc.define_system(name="café-✓", disks=[MiB])
    assert vm.ElementName == "café-✓"
    assert svc.get_system("café-✓").Name == vm.Name


@pytest.mark.parametrize("name", ["a/b", "..", "", "x" * 101, GUID, "tab\there"])
def test_bad_vm_name_is_invalid_parameter(svc: vmrepl.Service, name: str) -> None:
    with pytest.raises(vmrepl.InvalidParameter) as ei:
        svc.define_system(name=name, disks=[MiB])
    assert ei.value.code == vmrepl.Status.InvalidParameter and ei.value.message


def test_nul_in_a_name_never_reaches_c_truncated(svc: vmrepl.Service) -> None:
    with pytest.raises(vmrepl.InvalidParameter, match="NUL"):
        svc.get_system("web01\x00tail")


@pytest.mark.parametrize(
    "kwargs, what",
    [
        ({"name": 42, "disks": [MiB]}, "ElementName"),
        ({"name": "vm", "disks": ["4096"]}, r"disks\[0\]"),
        ({"name": "vm", "disks": 4096}, "disks"),
        ({"name": "vm", "disks": [MiB], "id": 7}, "Name"),
    ],
)
def test_wrong_typed_definition_is_incorrect_data_type(svc: vmrepl.Service, kwargs: dict, what: str) -> None:
    with pytest.raises(vmrepl.IncorrectDataType, match=what):
        svc.define_system(**kwargs)


@pytest.mark.parametrize("disks", [[5000], [], [0], [MiB] * 17])
def test_bad_disk_sizes_are_invalid_parameter(svc: vmrepl.Service, disks: list) -> None:
    with pytest.raises(vmrepl.InvalidParameter):
        svc.define_system(name="vm", disks=disks)


def test_unknown_vm_is_file_not_found(svc: vmrepl.Service) -> None:
    calls = [
        lambda: svc.get_system("ghost"),
        lambda: svc.get_system(GUID),
        lambda: svc.destroy_system("ghost"),
        lambda: svc.disk_path("ghost", 0),
        lambda: svc.compute_digest("ghost"),
        lambda: svc.request_state_change("ghost", vmrepl.EnabledState.Running),
    ]
    for call in calls:
        with pytest.raises(vmrepl.FileNotFound) as ei:
            call()
        assert ei.value.code == 32779 and "ghost" in ei.value.message or GUID in ei.value.message


def test_disk_path(svc: vmrepl.Service) -> None:
    vm = svc.define_system(name="vm", disks=[MiB, 2 * MiB])
    p0, p1 = svc.disk_path(vm, 0), svc.disk_path(vm, 1)
    assert [p0, p1] == vm.DiskPaths and os.path.getsize(p1) == 2 * MiB
    assert svc.disk_path(vm) == p0
    with pytest.raises(vmrepl.InvalidParameter, match="disk 2 does not exist"):
        svc.disk_path(vm, 2)
    with pytest.raises(vmrepl.InvalidParameter, match="out of range"):
        svc.disk_path(vm, -1)


def test_state_change_and_destroying_a_running_vm(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    assert svc.request_state_change(vm, vmrepl.EnabledState.Running) is None  # done at once
    assert svc.get_system(vm).EnabledState == vmrepl.EnabledState.Running == 2
    with pytest.raises(vmrepl.SystemInUse, match="running") as ei:
        svc.destroy_system(vm)
    assert ei.value.code == 32774
    svc.get_system(vm)  # still there
    assert svc.request_state_change(vm, 3) is None
    svc.destroy_system(vm)
    assert svc.list_systems() == []


def test_unsupported_requested_state_is_invalid_parameter(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    with pytest.raises(vmrepl.InvalidParameter, match="RequestedState 9"):
        svc.request_state_change(vm, vmrepl.EnabledState.Paused)
    with pytest.raises(vmrepl.InvalidParameter, match="out of range"):
        svc.request_state_change(vm, 70000)
