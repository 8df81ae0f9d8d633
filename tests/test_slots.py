"""Slots (grader/slots.py): disjoint cores, a memory share and at most one GPU or MIG instance each, and
the Docker options every sandbox of a run gets from its slot.

No GPU exists on CI machines: the GPU inventory here is a fake `nvidia-smi -L` listing (the format of the
real tool, with and without MIG), and the GPU request is checked in the options handed to the Docker
API. Everything else is real: the two concurrent CPU jobs are real containers, inspected with the
engine's own `docker inspect`, and the time-budget test measures real work in them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import docker
import pytest

from grader.sandbox.docker_backend import DockerBackend
from grader.sandbox.session import Limits
from grader.slots import (
    Inventory,
    Slot,
    SlotConfigError,
    format_cpus,
    parse_cpus,
    parse_nvidia_smi,
    plan,
    slot_of_this_process,
)

NVIDIA_SMI_PLAIN = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a8f1e2c-0d4b-4c55-9f3e-1a2b3c4d5e6f)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-6b9f2e3d-1e5c-4d66-8a4f-2b3c4d5e6f70)
"""
NVIDIA_SMI_MIG = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)
  MIG 3g.40gb     Device  0: (UUID: MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d)
  MIG 3g.40gb     Device  1: (UUID: MIG-2b3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9)
"""


# ---- the inventory and the plan (pure) --------------------------------------------------------------------

def test_nvidia_smi_listing_gives_gpus_or_their_mig_instances():
    assert parse_nvidia_smi(NVIDIA_SMI_PLAIN) == ("GPU-5a8f1e2c-0d4b-4c55-9f3e-1a2b3c4d5e6f",
                                                  "GPU-6b9f2e3d-1e5c-4d66-8a4f-2b3c4d5e6f70")
    # A partitioned GPU is handed out as its instances, never whole; the other GPU whole.
    assert parse_nvidia_smi(NVIDIA_SMI_MIG) == ("MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d",
                                                "MIG-2b3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e",
                                                "GPU-9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9")
    assert parse_nvidia_smi("No devices were found\n") == ()


def test_cpu_lists_read_and_write_like_docker_and_the_kernel():
    assert parse_cpus("0-3,8,10-11") == (0, 1, 2, 3, 8, 10, 11)
    assert format_cpus((11, 0, 1, 2, 3, 8, 10)) == "0-3,8,10-11"
    for bad in ("a", "3-1"):
        with pytest.raises(SlotConfigError):
            parse_cpus(bad)


def test_slots_get_disjoint_cores_an_equal_memory_share_and_one_gpu_each():
    inventory = Inventory(cpus=tuple(range(16)), memory_mb=65536, gpus=parse_nvidia_smi(NVIDIA_SMI_MIG))
    slots = plan(inventory, 4, reserved_memory_mb=4096)
    assert [s.cpuset for s in slots] == ["0-3", "4-7", "8-11", "12-15"]
    assert all(s.memory_mb == 15360 for s in slots) and sum(s.memory_mb for s in slots) <= 65536 - 4096
    assert [s.gpu for s in slots] == [*inventory.gpus, None]  # three devices for four slots
    cores = [c for s in slots for c in s.cpus]
    assert len(cores) == len(set(cores))


def test_explicit_cpu_sets_are_checked():
    inventory = Inventory(cpus=tuple(range(8)), memory_mb=16384)
    assert [s.cpus for s in plan(inventory, 2, cpus="0-2;4,6")] == [(0, 1, 2), (4, 6)]
    with pytest.raises(SlotConfigError, match="share cores"):
        plan(inventory, 2, cpus="0-3;3-5")
    with pytest.raises(SlotConfigError, match="may not use: 8-9"):
        plan(inventory, 2, cpus="0-3;8-9")
    with pytest.raises(SlotConfigError, match="names 1 CPU sets for 2 slots"):
        plan(inventory, 2, cpus="0-3")
    with pytest.raises(SlotConfigError, match="at least 3 cores"):
        plan(Inventory(cpus=(0, 1), memory_mb=16384), 3)
    with pytest.raises(SlotConfigError, match="do not fit"):
        plan(inventory, 2, memory_mb=9000)


def test_a_process_outside_a_pool_grades_in_slot_zero():
    slots = plan(Inventory(cpus=(0, 1), memory_mb=8192), 2)
    assert slot_of_this_process(slots) == slots[0]


# ---- the Docker options a slot produces ---------------------------------------------------------------------

def options(slot: Slot | None, *, gpu: bool = False, limits: Limits | None = None) -> dict:
    backend = DockerBackend(client=None, image="dd2601-sandbox:latest", runtime=None, gpus=["GPU-worker-wide"],
                            slot=slot)
    return backend.container_options(Path("/srv/run-1/submission"), limits or Limits(), label="run-1-1", gpu=gpu)


def test_every_sandbox_of_a_run_gets_exactly_its_slot():
    slot = Slot(index=1, cpus=(4, 5, 6, 7), memory_mb=1536, gpu="MIG-2b3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e")
    o = options(slot, gpu=True, limits=Limits(memory_mb=2048, cpus=2))
    assert o["cpuset_cpus"] == "4-7"
    assert o["mem_limit"] == o["memswap_limit"] == "1536m"  # the slot's share, below what the part declares
    assert o["nano_cpus"] == 2 * 10**9 and o["environment"]["OMP_NUM_THREADS"] == "2"
    [request] = o["device_requests"]
    assert request["DeviceIDs"] == ["MIG-2b3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e"]  # the slot's, not the worker's
    assert o["labels"]["org.dd2601.slot"] == "1"


def test_a_slot_smaller_than_the_part_caps_cpus_and_threads_and_a_gpu_less_slot_runs_cpu_parts():
    o = options(Slot(index=0, cpus=(3,), memory_mb=4096), limits=Limits(memory_mb=2048, cpus=2))
    assert o["cpuset_cpus"] == "3" and o["nano_cpus"] == 10**9 and o["environment"]["OMP_NUM_THREADS"] == "1"
    assert o["mem_limit"] == "2048m"  # the part's limit when the share is larger
    assert "device_requests" not in o
    assert DockerBackend(client=None, image="x", runtime=None, gpus=["GPU-a"], slot=Slot(0, (0,), 1024)).gpus == []


def test_without_a_slot_a_container_gets_the_cores_of_the_process_that_starts_it():
    """grade_local, calibration and the tests start sandboxes outside a worker's slot: a Docker container gets
    the caller's cores, as a bwrap sandbox (a child process) inherits them, so a run pinned with taskset does
    not share its budgeted training's cores with whatever else runs on the machine."""
    before = os.sched_getaffinity(0)
    first = min(before)
    try:
        os.sched_setaffinity(0, {first})
        o = options(None, limits=Limits(memory_mb=2048, cpus=2))
    finally:
        os.sched_setaffinity(0, before)
    assert o["cpuset_cpus"] == str(first) and o["nano_cpus"] == 10**9 and o["environment"]["OMP_NUM_THREADS"] == "1"
    assert o["mem_limit"] == "2048m" and "org.dd2601.slot" not in o["labels"]
    everything = options(None, limits=Limits(cpus=2))
    assert everything["cpuset_cpus"] == format_cpus(before)
    assert everything["nano_cpus"] == min(2, len(before)) * 10**9


# ---- real containers ---------------------------------------------------------------------------------------

BUSY_LOOP = """
import time, torch
torch.set_num_threads({threads})
a = torch.randn(192, 192)
steps, start = 0, time.monotonic()
while time.monotonic() - start < {seconds}:
    a = torch.tanh(a @ a.T / 192.0)
    steps += 1
print(steps)
"""


def two_slots() -> list[Slot]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.fail("these tests need two cores (every CI machine of this project has them)")
    return plan(Inventory(cpus=tuple(cores[:2]), memory_mb=8192), 2, memory_mb=2048)


def run_budgeted(client: docker.DockerClient, slot: Slot | None, label: str, seconds: float = 4.0) -> int:
    """A time-budgeted "training" in a sandbox with the options the slot produces: steps done in the budget."""
    backend = DockerBackend(client, "dd2601-sandbox:latest", None, [], slot=slot)
    opts = backend.container_options(Path("/nonexistent"), Limits(cpus=2), label=label, gpu=False)
    opts.pop("volumes")
    opts.update(command=["python3", "-c", BUSY_LOOP.format(threads=2, seconds=seconds)], stdin_open=False,
                log_config=None)
    container = client.containers.run(**opts)
    try:
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs()[-2000:]
        return int(container.logs().decode().split()[-1])
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


@pytest.mark.sandbox
@pytest.mark.whole_machine
def test_two_concurrent_cpu_jobs_get_disjoint_cpusets(tmp_path):
    """Two runs' sandboxes alive at once, started through the backend as a run starts them: the engine
    reports a different core set for each."""
    client = docker.from_env(timeout=60)
    submission = tmp_path / "submission"
    submission.mkdir(mode=0o755)
    (submission / "mdn.py").write_text("x = 1\n")
    os.chmod(tmp_path, 0o755)
    with contextlib.ExitStack() as stack:
        for slot in two_slots():
            backend = DockerBackend(client, "dd2601-sandbox:latest", None, [], slot=slot)
            stack.enter_context(backend.start(submission, Limits(), label=f"slots-test-{os.getpid()}-{slot.index}",
                                              gpu=False, run_deadline=float("inf")))
        found = client.containers.list(filters={"label": "org.dd2601.slot"})
        mine = [c for c in found if c.labels["org.dd2601.run"].startswith(f"slots-test-{os.getpid()}-")]
        assert len(mine) == 2
        cpusets = [client.api.inspect_container(c.id)["HostConfig"]["CpusetCpus"] for c in mine]
        sets = [set(parse_cpus(c)) for c in cpusets]
        assert all(sets) and not sets[0] & sets[1], cpusets


@pytest.mark.sandbox
@pytest.mark.whole_machine
def test_a_time_budgeted_training_measures_the_same_alone_or_beside_another_job():
    """Steps done within a fixed budget in slot 0, alone and while slot 1 runs the same job: with slots
    the neighbour cannot take slot 0's core, so the budget buys the same work (the machine's other load
    aside; CI runs it alone). Without slots, the same two jobs share every core."""
    client = docker.from_env(timeout=60)
    first, second = two_slots()
    run_budgeted(client, first, "warm-up", seconds=1)
    alone = run_budgeted(client, first, "alone")
    beside: dict[str, int] = {}
    neighbour = threading.Thread(target=lambda: beside.__setitem__("n", run_budgeted(client, second, "neighbour")))
    neighbour.start()
    together = run_budgeted(client, first, "together")
    neighbour.join(120)
    print(f"steps in the budget: alone {alone}, beside another job {together} (neighbour {beside.get('n')})")
    assert together >= 0.85 * alone, (alone, together)


def test_a_run_in_a_slot_smaller_than_the_part_asks_torch_for_the_slots_cores_only(monkeypatch):
    """The part allows 2 CPUs, the slot has 1 core: the harness is told 1 thread (2 threads on one core
    slow every step, so a time-budgeted training would learn less in a small slot than alone)."""
    import dataclasses

    import torch

    from grader.engine import grade
    from grader.parts import load_part_dir
    from grader.sandbox.inprocess_backend import InProcessBackend
    from grader.sandbox.session import Session

    example = Path(__file__).resolve().parent.parent / "docs" / "example_part"
    part = load_part_dir(example)
    part = dataclasses.replace(part, resources=dataclasses.replace(part.resources, cpus=2))
    asked: list[int] = []
    real_hello = Session.hello

    def hello(self, **kwargs):
        asked.append(kwargs["threads"])
        return real_hello(self, **kwargs)

    monkeypatch.setattr(Session, "hello", hello)
    threads_before = torch.get_num_threads()
    try:
        backend = InProcessBackend()
        backend.slot = Slot(index=0, cpus=(0,), memory_mb=1024)
        grade(part, example / "solution", backend_name="unsafe-inprocess", seed=1, backend=backend)
        assert asked and set(asked) == {1}
        asked.clear()
        grade(part, example / "solution", backend_name="unsafe-inprocess", seed=1, backend=InProcessBackend())
        assert asked and set(asked) == {2}  # without a slot, the part's CPUs
    finally:
        torch.set_num_threads(threads_before)
