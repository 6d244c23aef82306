"""Jobs (Msvm_ConcreteJob): ComputeDigest waited on, cancelled, timed out, found again."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

import vmrepl
from conftest import GiB, MiB, four_gib_vm, long_digest_vm, write
from vmrepl import JobState


def test_digest_completes_with_its_results(svc: vmrepl.Service) -> None:
    vm = svc.define_system(name="vm", disks=[8 * MiB, 4 * MiB])
    write(svc, vm, 3 * MiB, b"x" * 100_000)
    with svc.compute_digest(vm) as job:
        assert isinstance(job, vmrepl.Job) and job.service is svc
        assert uuid.UUID(job.instance_id) and job.name == "ComputeDigest vm"
        assert job.job_type == vmrepl.JobType.ConsistencyCheckerRun == 113
        result = job.wait()
        assert job.state == JobState.Completed and job.done and job.state.is_final
        assert job.error_code == vmrepl.Status.OK
        assert job.percent_complete == 100
        assert job.progress == vmrepl.Progress("done", 12 * MiB, 12 * MiB, job.progress.rate, 0, 100)
        assert result.class_name == "Msvm_ConcreteJob" and result.JobState == JobState.Completed
        assert re.fullmatch(r"[0-9a-f]{32}", result.MerkleRoot)
        assert len(result.DiskMerkleRoots) == 2 and result.HashAlgorithm == "xxh3-128"
        assert result.BlockSize == 65536 and result.BlockCount == 192
        assert result.ZeroBlocks == 192 - 2 and result.VirtualSystemIdentifier == vm.Name
        assert job.wait(timeout=0).MerkleRoot == result.MerkleRoot  # final: returns at once
    assert "closed" in repr(job)


def test_digest_follows_the_content(svc: vmrepl.Service) -> None:
    a = svc.define_system(name="a", disks=[4 * MiB])
    b = svc.define_system(name="b", disks=[4 * MiB])
    for vm in (a, b):
        write(svc, vm, MiB, b"same")
    ra, rb = (svc.compute_digest(v).wait().MerkleRoot for v in (a, b))
    assert ra == rb
    write(svc, b, 2 * MiB, b"different")
    assert svc.compute_digest(b).wait().MerkleRoot != ra


def test_sha256_service(root: str) -> None:
    with vmrepl.open(f"local:{root}", hash="sha256") as svc:
        vm = svc.define_system(name="vm", disks=[MiB])
        r = svc.compute_digest(vm).wait()
        assert r.HashAlgorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", r.MerkleRoot)


def test_wait_timeout_zero_on_a_long_digest_is_timeout(svc: vmrepl.Service) -> None:
    vm = four_gib_vm(svc)
    job = svc.compute_digest(vm)
    with pytest.raises(vmrepl.Timeout, match="still") as ei:
        job.wait(timeout=0)
    assert ei.value.code == 32772 and ei.value.job_state is None  # the wait timed out, not the job
    assert job.wait(timeout=60).BlockCount == 4 * GiB // 65536
    with pytest.raises(ValueError):
        job.wait(timeout=-1)


def test_cancel_mid_way_ends_terminated_and_wait_raises(svc: vmrepl.Service) -> None:
    vm = long_digest_vm(svc)
    job = svc.compute_digest(vm)
    seen = []

    def cancel_once_started(p: vmrepl.Progress) -> None:
        seen.append(p)
        if len(seen) == 1:
            job.cancel()

    job.on_progress(cancel_once_started)
    with pytest.raises(vmrepl.Failed, match="cancelled") as ei:
        job.wait(timeout=60)
    e = ei.value
    assert e.job_state == JobState.Terminated and e.job_id == job.instance_id and e.code == 32768
    assert job.state == JobState.Terminated and job.error_code == vmrepl.Status.Failed
    props = job.properties
    assert props.JobState == 8 and props.ErrorCode == 32768 and "cancelled" in props.ErrorDescription
    assert props.PercentComplete < 100 and "MerkleRoot" not in props
    # A final job refuses a cancel: InvalidState from the engine.
    with pytest.raises(vmrepl.InvalidState, match="already ended"):
        job.cancel()


def test_cancel_a_finished_job_is_invalid_state(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    job = svc.compute_digest(vm)
    job.wait()
    with pytest.raises(vmrepl.InvalidState) as ei:
        job.cancel()
    assert ei.value.code == 32775 and "Completed" in ei.value.message


def test_progress_callbacks_during_a_blocking_wait(svc: vmrepl.Service) -> None:
    vm = four_gib_vm(svc)
    job = svc.compute_digest(vm)
    seen: list = []
    assert job.on_progress(seen.append) is not None
    result = job.wait(timeout=60)
    assert seen and all(isinstance(p, vmrepl.Progress) for p in seen)
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
    assert seen[-1].percent == 100 and seen[-1].bytes_done == 4 * GiB and seen[-1].phase == "done"
    assert result.MerkleRoot
    with pytest.raises(TypeError):
        job.on_progress(42)  # type: ignore[arg-type]


def test_a_failing_progress_callback_surfaces_from_wait(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    job = svc.compute_digest(vm)

    calls: list = []

    @job.on_progress
    def boom(p: vmrepl.Progress) -> None:
        calls.append(p)
        if len(calls) == 1:
            raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        job.wait(timeout=60)
    assert job.wait().MerkleRoot  # the job itself was not affected; later events still delivered
    assert calls[-1].phase == "done"


def test_get_job_and_list_jobs(svc: vmrepl.Service, vm: vmrepl.Instance) -> None:
    job = svc.compute_digest(vm)
    root = job.wait().MerkleRoot
    again = svc.get_job(job.instance_id)
    assert again.instance_id == job.instance_id and again.state == JobState.Completed
    assert again.wait().MerkleRoot == root
    jobs = svc.list_jobs()
    assert [j.InstanceID for j in jobs] == [job.instance_id]
    assert jobs[0].class_name == "Msvm_ConcreteJob" and jobs[0].JobState == JobState.Completed
    with pytest.raises(vmrepl.FileNotFound, match="no job"):
        svc.get_job(str(uuid.uuid4()))
    with pytest.raises(vmrepl.InvalidParameter):
        svc.get_job("not-a-guid")


def test_closing_a_job_handle_does_not_stop_the_job(svc: vmrepl.Service) -> None:
    vm = four_gib_vm(svc)
    job = svc.compute_digest(vm)
    job.close()
    job.close()
    assert job.closed and "closed" in repr(job)
    for call in (lambda: job.state, lambda: job.wait(), job.cancel, lambda: job.properties, lambda: job.error_code):
        with pytest.raises(vmrepl.InvalidState, match="Job is closed"):
            call()
    assert svc.get_job(job.instance_id).wait(timeout=60).JobState == JobState.Completed


def test_close_racing_a_blocking_wait_is_deferred(svc: vmrepl.Service) -> None:
    vm = long_digest_vm(svc)
    job = svc.compute_digest(vm)
    outcome: list = []

    def waiter() -> None:
        try:
            outcome.append(job.wait(timeout=60).JobState)
        except BaseException as e:  # pragma: no cover - reported below
            outcome.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    job.close()  # the waiting call still holds the handle: it is released when it returns
    with pytest.raises(vmrepl.InvalidState):
        job.state
    t.join(60)
    assert outcome in ([JobState.Completed], [JobState.Terminated]) or isinstance(outcome[0], vmrepl.Error)


def test_closing_the_service_stops_its_jobs_which_stay_readable(root: str) -> None:
    svc = vmrepl.open(f"local:{root}")
    vm = long_digest_vm(svc)
    job = svc.compute_digest(vm)
    svc.close()  # cancels the job and waits for it
    assert job.state == JobState.Terminated
    with pytest.raises(vmrepl.Failed) as ei:
        job.wait()
    assert ei.value.job_state == JobState.Terminated
    seen: list = []
    job.on_progress(seen.append)  # no service to dispatch any more: wait() does not need it
    with pytest.raises(vmrepl.Failed):
        job.wait(timeout=1)
    job.close()


def test_closing_the_service_from_a_progress_callback_during_wait(root: str) -> None:
    svc = vmrepl.open(f"local:{root}")
    vm = long_digest_vm(svc)
    job = svc.compute_digest(vm)
    job.on_progress(lambda p: svc.close())
    with pytest.raises(vmrepl.Failed) as ei:
        job.wait(timeout=30)
    assert ei.value.job_state == JobState.Terminated and svc.closed


def test_job_state_is_final() -> None:
    final = {JobState.Completed, JobState.Terminated, JobState.Killed, JobState.Exception}
    assert {s for s in JobState if s.is_final} == final
    assert not JobState.Running.is_final and not JobState.New.is_final
