"""A worker's capacity as slots, so that concurrent jobs never disturb each other.

A slot is a disjoint set of CPU cores, a share of the memory, and at most one GPU or one MIG instance
(by UUID). Every sandbox of a run — the training sandbox, each fresh scoring sandbox and the spare that
is pre-started beside them — gets exactly its run's slot: `cpuset_cpus`, the slot's memory as its limit
(never more than the part declares), and a device request for that one GPU. So a time-budgeted training
(`max_seconds`) measures the same whether the worker runs one job or N, and a job cannot slow another's.

The inventory comes from configuration (`GRADER_SLOT_CPUS`, `GRADER_SLOT_MEMORY_MB`, `GRADER_GPUS`) or
from the machine: the cores this process may use, MemTotal, and `nvidia-smi -L` (a GPU split into MIG
instances gives its instances, not itself). `plan` is pure, so tests drive it with a fake inventory.

A worker runs one pool process per slot (`--concurrency` = `GRADER_SLOTS`), and each process grades in
the slot of its pool number (`slot_of_this_process`), its trusted checks pinned to the slot's cores too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

GPU_LINE = re.compile(r"^GPU (\d+):.*\(UUID: (GPU-[0-9a-fA-F-]+)\)")
MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[0-9a-zA-Z/-]+)\)")


class SlotConfigError(ValueError):
    """The slot configuration cannot be satisfied (said in words for whoever runs the worker)."""


@dataclass(frozen=True)
class Slot:
    index: int
    cpus: tuple[int, ...]
    memory_mb: int
    gpu: str | None = None

    @property
    def cpuset(self) -> str:
        """The cores in Docker's `cpuset_cpus` form, e.g. "0-3" or "0,2"."""
        return format_cpus(self.cpus)

    def label(self, worker: str) -> str:
        gpu = f" gpu {self.gpu}" if self.gpu else ""
        return f"{worker} slot {self.index} (cpus {self.cpuset}{gpu})"[:96]

    def describe(self) -> dict:
        return {**asdict(self), "cpus": self.cpuset}


@dataclass(frozen=True)
class Inventory:
    """What a worker may hand out: cores, megabytes of memory for sandboxes, GPU/MIG UUIDs."""

    cpus: tuple[int, ...]
    memory_mb: int
    gpus: tuple[str, ...] = field(default_factory=tuple)


def parse_cpus(text: str) -> tuple[int, ...]:
    """"0-3,8,10-11" -> (0, 1, 2, 3, 8, 10, 11)."""
    cores: set[int] = set()
    for piece in filter(None, (p.strip() for p in text.split(","))):
        start, _, end = piece.partition("-")
        try:
            low, high = int(start), int(end or start)
        except ValueError as exc:
            raise SlotConfigError(f"{piece!r} is not a CPU number or range (write e.g. 0-3,8)") from exc
        if low > high:
            raise SlotConfigError(f"the CPU range {piece!r} runs backwards")
        cores.update(range(low, high + 1))
    return tuple(sorted(cores))


def format_cpus(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 3, 8) -> "0-3,8": consecutive cores share core - position, so they group together."""
    runs = [[core for _, core in group]
            for _, group in itertools.groupby(enumerate(sorted(set(cpus))), key=lambda pair: pair[1] - pair[0])]
    return ",".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def parse_nvidia_smi(listing: str) -> tuple[str, ...]:
    """The devices a slot can get from `nvidia-smi -L`: each GPU's UUID, or its MIG instances' UUIDs when
    it is partitioned (a MIG-enabled GPU cannot be handed out whole)."""
    devices: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        if gpu := GPU_LINE.match(line):
            devices.append((gpu.group(2), []))
        elif (mig := MIG_LINE.match(line)) and devices:
            devices[-1][1].append(mig.group(1))
    return tuple(uuid for gpu, migs in devices for uuid in (migs or [gpu]))


def detect_gpus(nvidia_smi: str = "nvidia-smi") -> tuple[str, ...]:
    exe = shutil.which(nvidia_smi)
    if exe is None:
        return ()
    try:
        listing = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise SlotConfigError(f"`nvidia-smi -L` failed ({exc}); list the GPUs in GRADER_GPUS instead") from exc
    return parse_nvidia_smi(listing)


def host_memory_mb() -> int:
    """MemTotal, or the cgroup's limit when the worker runs in a container with one (whichever is less)."""
    total = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) // 1024
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limit = int(Path(limit_file).read_text().strip()) // 2**20
            total = min(total, limit) if total else limit
    return total


def plan(inventory: Inventory, count: int, *, cpus: str = "", memory_mb: int = 0,
         reserved_memory_mb: int = 1024) -> list[Slot]:
    """`count` slots over the inventory: disjoint cores, an equal memory share, one GPU each while they last.

    `cpus` ("0-3;4-7") gives each slot's cores explicitly; otherwise the cores are split evenly and any
    left over stay with the worker's own processes. `memory_mb` is each slot's share; otherwise the memory
    less `reserved_memory_mb` (the worker, the web, the database on a one-host install) is split evenly.
    """
    if count < 1:
        raise SlotConfigError(f"a worker needs at least one slot (GRADER_SLOTS={count})")
    if cpus:
        sets = [parse_cpus(spec) for spec in cpus.split(";")]
        if len(sets) != count:
            raise SlotConfigError(f"GRADER_SLOT_CPUS names {len(sets)} CPU sets for {count} slots")
        if any(not s for s in sets):
            raise SlotConfigError("every slot in GRADER_SLOT_CPUS needs at least one core")
        taken = [core for s in sets for core in s]
        if len(taken) != len(set(taken)):
            raise SlotConfigError("GRADER_SLOT_CPUS gives a core to two slots; slots must not share cores")
        if unknown := set(taken) - set(inventory.cpus):
            raise SlotConfigError(f"GRADER_SLOT_CPUS names cores this worker may not use: {format_cpus(unknown)}")
    else:
        per_slot = len(inventory.cpus) // count
        if per_slot == 0:
            raise SlotConfigError(f"{count} slots need at least {count} cores; this worker may use "
                                  f"{len(inventory.cpus)} ({format_cpus(inventory.cpus)})")
        ordered = sorted(inventory.cpus)
        sets = [tuple(ordered[i * per_slot:(i + 1) * per_slot]) for i in range(count)]
    share = memory_mb or (inventory.memory_mb - reserved_memory_mb) // count
    if share * count > inventory.memory_mb or share < 256:
        raise SlotConfigError(f"{count} slots of {share} MB do not fit in {inventory.memory_mb} MB of memory")
    return [Slot(index=i, cpus=cores, memory_mb=share, gpu=inventory.gpus[i] if i < len(inventory.gpus) else None)
            for i, cores in enumerate(sets)]


def caller_cores() -> tuple[int, ...]:
    """The cores a sandbox started outside a worker's slot may use: those its caller may use. A bwrap sandbox
    inherits its parent's CPU affinity; a Docker container is started by dockerd and would otherwise take every
    core, so a `grade_local` or test run pinned with taskset would share its cores with whatever else runs there,
    and a time-budgeted training would train less (the MDN reference cut short under CI's two streams)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def from_settings() -> list[Slot]:
    """This worker's slots, from the GRADER_SLOT* settings and the machine."""
    from django.conf import settings

    gpus = tuple(settings.GRADER_GPUS)
    if gpus == ("auto",):
        gpus = detect_gpus()
    inventory = Inventory(cpus=tuple(sorted(os.sched_getaffinity(0))), memory_mb=host_memory_mb(), gpus=gpus)
    return plan(inventory, settings.GRADER_SLOTS, cpus=settings.GRADER_SLOT_CPUS,
                memory_mb=settings.GRADER_SLOT_MEMORY_MB, reserved_memory_mb=settings.GRADER_RESERVED_MEMORY_MB)


def slot_of_this_process(slots: Sequence[Slot]) -> Slot:
    """The slot of the pool process running this code: Celery's prefork pool numbers its processes 0..N-1
    and gives a replaced process its predecessor's number, so with --concurrency equal to the number of
    slots each process owns one slot for its whole life and two runs never share one. Outside a pool
    (a test, `grade_local`) this is slot 0."""
    from celery.utils.log import current_process_index

    return slots[(current_process_index(base=0) or 0) % len(slots)]


@contextlib.contextmanager
def pinned(slot: Slot) -> Iterator[None]:
    """This thread (the run's trusted checks compute here) on the slot's cores for the length of the run."""
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(slot.cpus))
    except OSError:  # cores outside this process's cgroup: the sandboxes are still confined by Docker
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)
