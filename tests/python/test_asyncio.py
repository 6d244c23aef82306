"""`await job` under asyncio: the service descriptor on the running loop, callbacks on it."""

from __future__ import annotations

import asyncio
import threading

import pytest

import vmrepl
from conftest import GiB, MiB, four_gib_vm, long_digest_vm
from vmrepl import JobState


def _selector_fds(loop: asyncio.AbstractEventLoop) -> set:
    return set(loop._selector.get_map())  # type: ignore[attr-defined]


def test_await_a_digest_with_progress_callbacks(svc: vmrepl.Service) -> None:
    vm = four_gib_vm(svc)
    seen: list = []
    threads: set = set()

    async def main() -> vmrepl.Instance:
        loop = asyncio.get_running_loop()
        before = threading.active_count()
        job = svc.compute_digest(vm)

        def on_progress(p: vmrepl.Progress) -> None:
            threads.add(threading.get_ident())
            assert asyncio.get_running_loop() is loop  # called by the loop, on its thread
            seen.append(p)

        job.on_progress(on_progress)
        task = asyncio.ensure_future(job)
        await asyncio.sleep(0)
        assert svc.fileno() in _selector_fds(loop)  # registered with add_reader while awaited
        result = await task
        assert svc.fileno() not in _selector_fds(loop)  # and removed afterwards
        assert threading.active_count() == before  # no helper thread
        job.close()
        return result

    result = asyncio.run(main())
    assert result.JobState == JobState.Completed and result.BlockCount == 4 * GiB // 65536
    assert seen and threads == {threading.get_ident()}
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
    assert seen[-1].percent == 100 and seen[-1].phase == "done"


def test_gather_several_jobs(svc: vmrepl.Service) -> None:
    vms = [svc.define_system(name=f"vm{i}", disks=[(i + 1) * MiB]) for i in range(4)]

    async def main() -> list:
        jobs = [svc.compute_digest(vm) for vm in vms]
        results = await asyncio.gather(*jobs)
        again = await jobs[0]  # already final: returns at once
        assert again.MerkleRoot == results[0].MerkleRoot
        return results

    results = asyncio.run(main())
    assert [r.BlockCount for r in results] == [16, 32, 48, 64]


def test_await_a_job_cancelled_mid_way_raises(svc: vmrepl.Service) -> None:
    vm = long_digest_vm(svc)

    async def main() -> None:
        job = svc.compute_digest(vm)
        job.on_progress(lambda p: job.cancel() if not job.done and p.bytes_done < p.bytes_total else None)
        with pytest.raises(vmrepl.Failed, match="cancelled") as ei:
            await job
        assert ei.value.job_state == JobState.Terminated
        assert job.state == JobState.Terminated

    asyncio.run(main())


def test_wait_async_timeout_is_the_engines_timeout(svc: vmrepl.Service) -> None:
    vm = long_digest_vm(svc)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        job = svc.compute_digest(vm)
        with pytest.raises(vmrepl.Timeout, match="still"):
            await job.wait_async(timeout=0.01)
        assert svc.fileno() not in _selector_fds(loop)
        assert not job.done  # the job goes on
        # asyncio's own timeout around `await job` cancels only the await, never the job.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(job, 0.01)
        assert not job.done and svc.fileno() not in _selector_fds(loop)
        job.cancel()
        with pytest.raises(vmrepl.Failed):
            await job

    asyncio.run(main())


def test_closing_the_service_ends_pending_awaits(root: str) -> None:
    svc = vmrepl.open(f"local:{root}")
    vm = long_digest_vm(svc)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        job = svc.compute_digest(vm)
        task = asyncio.ensure_future(job)
        await asyncio.sleep(0.05)
        fd = svc.fileno()
        svc.close()  # from the loop's thread, while awaited
        with pytest.raises(vmrepl.Failed) as ei:
            await asyncio.wait_for(task, 30)
        assert ei.value.job_state == JobState.Terminated
        assert fd not in _selector_fds(loop)
        # Awaiting a job of a closed service gives its outcome at once.
        with pytest.raises(vmrepl.Failed):
            await job

    asyncio.run(main())


def test_a_failing_callback_goes_to_the_loops_exception_handler(svc: vmrepl.Service) -> None:
    errors: list = []
    # A digest long enough to report progress after the callback is set (a small one may end first).
    vm = long_digest_vm(svc)

    async def main() -> vmrepl.Instance:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx.get("exception")))
        job = svc.compute_digest(vm)
        job.on_progress(lambda p: 1 / 0)
        return await job  # the await itself still completes

    assert asyncio.run(main()).MerkleRoot
    assert errors and all(isinstance(e, ZeroDivisionError) for e in errors)


def test_closing_the_service_from_a_progress_callback(root: str) -> None:
    svc = vmrepl.open(f"local:{root}")
    vm = long_digest_vm(svc)

    async def main() -> None:
        job = svc.compute_digest(vm)
        job.on_progress(lambda p: svc.close())  # inside vmr_service_dispatch: close is deferred
        with pytest.raises(vmrepl.Failed) as ei:
            await asyncio.wait_for(job, 30)
        assert ei.value.job_state == JobState.Terminated and svc.closed

    asyncio.run(main())
