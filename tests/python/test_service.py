"""Opening a service, its options, info, the descriptor, close and use after close."""

from __future__ import annotations

import select
import socket

import pytest

import vmrepl
from conftest import MiB


def test_open_gives_the_service_instance(root: str) -> None:
    with vmrepl.open(f"local:{root}", host_name="hv-a") as svc:
        assert isinstance(svc, vmrepl.Service) and not svc.closed and svc.uri == f"local:{root}"
        info = svc.info()
        assert info.class_name == "Msvm_ReplicationService"
        assert info.Name == "replicasvc"
        assert info.HostName == "hv-a"
        assert info.HostRoot == root
        assert info.Version == vmrepl.library_version()
        assert info.BlockSize == 65536 and info.HashAlgorithm == "xxh3-128"
        assert info.OperationalStatus == [2]
    assert svc.closed


def test_options_become_the_options_json(root: str) -> None:
    with vmrepl.open(f"local:{root}", block_size=1 * MiB, hash="sha256", job_retention_s=60, host_name=None) as svc:
        info = svc.info()
        assert info.BlockSize == MiB
        assert info.HashAlgorithm == "sha256"
        assert info.JobRetentionSeconds == 60
        assert info.HostName == socket.gethostname()  # None = the default


def test_unknown_option_is_invalid_parameter(root: str) -> None:
    with pytest.raises(vmrepl.InvalidParameter, match="listen_on"):
        vmrepl.open(f"local:{root}", listen_on="x")


def test_bad_option_value_is_invalid_parameter(root: str) -> None:
    with pytest.raises(vmrepl.InvalidParameter, match="block_size"):
        vmrepl.open(f"local:{root}", block_size=1000)


def test_wrong_typed_option_is_incorrect_data_type(root: str) -> None:
    with pytest.raises(vmrepl.IncorrectDataType, match="block_size") as ei:
        vmrepl.open(f"local:{root}", block_size="big")
    assert ei.value.code == 32776 and ei.value.name == "IncorrectDataType"


def test_bad_uris(root: str) -> None:
    with pytest.raises(vmrepl.InvalidParameter, match="bogus"):
        vmrepl.open("bogus:/x")
    with pytest.raises(vmrepl.InvalidParameter, match="absolute"):
        vmrepl.open("local:relative/root")
    with pytest.raises(vmrepl.SystemNotAvailable, match="no such file"):
        vmrepl.open("unix:/run/vmrepl-none.sock")  # no vmrepld there
    with pytest.raises(vmrepl.InvalidParameter, match="NUL"):
        vmrepl.open(f"local:{root}\x00x")


def test_one_service_per_root_and_close_releases_it(root: str) -> None:
    a = vmrepl.open(f"local:{root}")
    with pytest.raises(vmrepl.SystemInUse, match="in use"):
        vmrepl.open(f"local:{root}")
    a.close()
    with vmrepl.open(f"local:{root}") as b:  # the lock went with close()
        assert b.info().HostRoot == root


def test_use_after_close_raises_a_clear_error(root: str) -> None:
    with vmrepl.open(f"local:{root}") as svc:
        vm = svc.define_system(name="vm", disks=[MiB])
    svc.close()  # idempotent
    assert "closed" in repr(svc)
    calls = [
        lambda: svc.info(),
        lambda: svc.fileno(),
        lambda: svc.dispatch(),
        lambda: svc.define_system(name="x", disks=[MiB]),
        lambda: svc.get_system(vm),
        lambda: svc.list_systems(),
        lambda: svc.destroy_system(vm),
        lambda: svc.request_state_change(vm, vmrepl.EnabledState.Running),
        lambda: svc.disk_path(vm, 0),
        lambda: svc.compute_digest(vm),
        lambda: svc.get_job("3F2504E0-4F89-11D3-9A0C-0305E82C3301"),
        lambda: svc.list_jobs(),
    ]
    for call in calls:
        with pytest.raises(vmrepl.InvalidState, match="Service.*is closed") as ei:
            call()
        assert isinstance(ei.value, vmrepl.Error) and ei.value.code == 32775
    # What was read before close stays readable (instances do not depend on the service).
    assert vm.ElementName == "vm" and '"vm"' in vm.to_json()


def test_descriptor_becomes_readable_on_job_events(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    fd = svc.fileno()
    assert fd >= 0
    svc.dispatch()  # nothing pending: a no-op
    assert select.select([fd], [], [], 0)[0] == []
    job = svc.compute_digest(vm)
    job.wait()
    assert select.select([fd], [], [], 5)[0] == [fd]
    svc.dispatch()  # consumes the events
    assert select.select([fd], [], [], 0)[0] == []
    job.close()
