"""Instances: read-only mappings with attribute access, types, serialisations, lifetime."""

from __future__ import annotations

import datetime as dt
import gc
import json
import pickle
import weakref

import pytest

import vmrepl
from conftest import MiB
from vmrepl import CimType


def test_mapping_and_attribute_access(vm: vmrepl.Instance) -> None:
    assert vm["ElementName"] == vm.ElementName == vm.get("ElementName") == "web01"
    assert "ElementName" in vm and "Nope" not in vm
    assert len(vm) == len(list(vm)) == len(vm.keys()) >= 10
    assert list(vm)[:2] == ["Name", "ElementName"]  # the engine's order
    assert dict(vm.items())["Name"] == vm.Name
    assert vm.get("Nope", 5) == 5
    with pytest.raises(KeyError):
        vm["Nope"]
    with pytest.raises(AttributeError, match="Msvm_ComputerSystem has no property 'Nope'"):
        vm.Nope
    assert "ElementName" in dir(vm) and "to_json" in dir(vm)
    assert repr(vm).startswith("<vmrepl.Instance Msvm_ComputerSystem ElementName='web01'")


def test_instances_are_read_only(vm: vmrepl.Instance) -> None:
    with pytest.raises(AttributeError, match="read-only"):
        vm.ElementName = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del vm.ElementName
    with pytest.raises(TypeError):
        vm["ElementName"] = "x"  # type: ignore[index]
    d = vm.to_dict()
    d["DiskSizes"].append(1)  # a copy
    assert vm.DiskSizes == [16 * MiB]
    assert vm == vm.to_dict()


def test_types_of_every_kind(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    # string, datetime, reference-like path, uint16 enum, plain uint16, string array, uint64 array
    assert vm.cim_type("ElementName") == (CimType.String, False)
    assert vm.cim_type("InstallDate") == (CimType.DateTime, False)
    assert vm.cim_type("StatusDescriptions") == (CimType.String, True)
    assert vm.cim_type("DiskSizes") == (CimType.UInt64, True)  # no getter: read from JSON
    assert vm.cim_type("EnabledState") == (CimType.UInt16, False)
    assert isinstance(vm.EnabledState, vmrepl.EnabledState)
    assert type(vm.HealthState) is int and vm.HealthState == 5
    assert vm.StatusDescriptions == ["OK"] and vm.DiskSizes == [16 * MiB]
    created = vmrepl.from_cim_datetime(vm.InstallDate)
    assert isinstance(created, dt.datetime) and abs(created - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    with pytest.raises(KeyError):
        vm.cim_type("Nope")

    job = svc.compute_digest(vm)
    props = job.wait()
    assert props.cim_type("Cancellable") == (CimType.Boolean, False) and props.Cancellable is True
    assert props.DeleteOnCompletion is False
    assert props.cim_type("EtaSeconds") == (CimType.SInt64, False) and props.EtaSeconds == 0  # signed getter
    assert props.cim_type("ErrorDescription") == (CimType.String, False) and props.ErrorDescription is None  # null
    assert props.cim_type("BlockCount") == (CimType.UInt64, False) and props.BlockCount == 256
    assert props.ErrorCode == vmrepl.Status.OK and props.JobType == vmrepl.JobType.ConsistencyCheckerRun
    assert isinstance(vmrepl.from_cim_datetime(props.ElapsedTime), dt.timedelta)
    job.close()


def test_serialisations(vm: vmrepl.Instance) -> None:
    j = json.loads(vm.to_json())
    assert j.pop("__CLASS") == "Msvm_ComputerSystem"
    assert j == {k: (int(v) if isinstance(v, int) else v) for k, v in vm.to_dict().items()}
    xml = vm.to_cim_xml()
    assert xml.startswith('<INSTANCE CLASSNAME="Msvm_ComputerSystem">')
    assert '<PROPERTY NAME="ElementName" TYPE="string"><VALUE>web01</VALUE></PROPERTY>' in xml
    assert '<PROPERTY.ARRAY NAME="DiskSizes" TYPE="uint64">' in xml
    mof = vm.to_mof()
    assert mof.startswith("instance of Msvm_ComputerSystem") and 'ElementName = "web01";' in mof


def test_close_releases_the_handle_but_keeps_the_values(svc: vmrepl.Service) -> None:
    with svc.info() as info:
        assert not info.closed
        text = info.to_json()
    assert info.closed
    assert info.HostName == "hv-test" and json.loads(text)["HostName"] == "hv-test"
    for method in (info.to_json, info.to_cim_xml, info.to_mof):
        with pytest.raises(vmrepl.InvalidState, match="Instance is closed"):
            method()
    info.close()  # idempotent


def test_list_items_keep_their_list_alive(svc: vmrepl.Service) -> None:
    for n in ("a", "b", "c"):
        svc.define_system(name=n, disks=[MiB])
    items = svc.list_systems()
    owner = weakref.ref(items[0]._owner)
    keep = items[1]
    del items
    gc.collect()
    assert owner() is not None  # "keep" still holds the vmr_list
    assert keep.ElementName == "b" and "Msvm_ComputerSystem" in keep.to_cim_xml()
    keep.close()  # an item lets go of the list; the others would keep it
    with pytest.raises(vmrepl.InvalidState):
        keep.to_mof()
    del keep
    gc.collect()
    assert owner() is None  # vmr_list_release ran


def test_instances_do_not_pickle(vm: vmrepl.Instance) -> None:
    with pytest.raises(TypeError, match="to_dict"):
        pickle.dumps(vm)


def test_cim_datetime_helpers() -> None:
    t = vmrepl.from_cim_datetime("20260925101500.000000+060")
    assert t == dt.datetime(2026, 9, 25, 9, 15, tzinfo=dt.timezone.utc)
    assert vmrepl.to_cim_datetime(t.astimezone(dt.timezone.utc)) == "20260925091500.000000+000"
    assert vmrepl.to_cim_datetime(dt.datetime(2026, 1, 2, 3, 4, 5, 6)) == "20260102030405.000006+000"
    assert vmrepl.from_cim_datetime("00000001183000.000000:000") == dt.timedelta(days=1, hours=18, minutes=30)
    assert vmrepl.to_cim_interval(dt.time(18, 30)) == "00000000183000.000000:000"
    assert vmrepl.to_cim_interval(dt.timedelta(minutes=5)) == "00000000000500.000000:000"
    with pytest.raises(ValueError):
        vmrepl.from_cim_datetime("yesterday")
