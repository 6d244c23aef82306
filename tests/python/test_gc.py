"""Handles released on garbage collection and at interpreter shutdown, never twice."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref

import vmrepl
from conftest import BINDING, MiB
from vmrepl.job import _REGISTRY


def test_many_jobs_and_instances_without_closing(svc: vmrepl.Service) -> None:
    vms = [svc.define_system(name=f"vm{i}", disks=[MiB]) for i in range(4)]
    refs = []
    for i in range(150):
        vm = vms[i % 4]
        job = svc.compute_digest(vm)
        if i % 3 == 0:
            job.on_progress(lambda p: None)  # registered callbacks too
        refs.append(weakref.ref(job))
        refs.append(weakref.ref(svc.get_system(vm)))
        refs.append(weakref.ref(svc.info()))
        for item in svc.list_systems():
            refs.append(weakref.ref(item))
        if i % 10 == 0:
            refs.append(weakref.ref(svc.list_jobs()[0]))
    del job, vm, item
    gc.collect()
    assert all(r() is None for r in refs)
    assert not any(r() for r in _REGISTRY.values())
    # Events of collected jobs find nobody; the service is fine.
    for vm in vms:
        assert svc.compute_digest(vm).wait().MerkleRoot
    svc.dispatch()
    assert len(svc.list_jobs()) == 154


def test_an_unclosed_service_is_released_when_collected(root: str) -> None:
    svc = vmrepl.open(f"local:{root}")
    vm = svc.define_system(name="vm", disks=[MiB])
    job = svc.compute_digest(vm)
    ref = weakref.ref(svc)
    del svc, job  # the job held the service; both go
    gc.collect()
    assert ref() is None
    with vmrepl.open(f"local:{root}") as again:  # the root's lock was released by vmr_close
        assert [v.ElementName for v in again.list_systems()] == ["vm"]


def test_objects_left_alive_at_interpreter_exit(tmp_path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, vmrepl
        svc = vmrepl.open("local:{tmp_path}/host")
        vm = svc.define_system(name="vm", disks=[64 << 30])
        jobs = [svc.compute_digest(vm) for _ in range(3)]
        jobs[0].on_progress(lambda p: None)
        items = svc.list_systems()
        info = svc.info()
        done = svc.compute_digest(vm)
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(BINDING))
    r = subprocess.run([sys.executable, "-X", "dev", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert r.stderr == ""  # no "Exception ignored in ... __del__"
