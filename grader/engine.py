"""Grade one submission folder against one part: start a sandbox, import, run the part's trusted
checks, collect outcomes and logs. Shared by the Celery task, `grade_local` and `calibrate`."""

from __future__ import annotations

import hashlib
import importlib.util
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from django.conf import settings

from grader.checking import Grading
from grader.lifetimes import Sandboxes
from grader.outcomes import Artifact, CheckOutcome
from grader.parts import EntryPoint, PartSpec
from grader.sandbox import Backend, ImportFailed, InfrastructureError, SandboxError, open_backend
from grader.sandbox.session import Limits, OutputLog, Session


@dataclass
class GradeReport:
    part: str
    content_hash: str
    backend: str
    image_digest: str
    seed: int
    checks: list[CheckOutcome]
    error: str = ""  # why grading stopped early, for the student
    grader_errors: list[str] = field(default_factory=list)  # our bugs: staff must see them; the run is regraded
    student_log: str = ""
    staff_log: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    slowest_calls: dict[str, float] = field(default_factory=dict)  # entry point -> its longest call (s)
    fingerprints: dict[str, str] = field(default_factory=dict)  # module-level entry point -> digest of its answer
    # on the grader's fixed probe inputs: the same code gives the same digest (for the similarity page)
    artifacts: list[Artifact] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # for the examiner: what no check could decide (g.flag)

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.checks)

    @property
    def all_passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


def load_checks_module(part: PartSpec) -> ModuleType:
    """Import the part's trusted checks.py from its folder (in the worker, never in a sandbox)."""
    name = f"dd2601_checks_{part.slug}_{part.content_hash[:12]}"
    spec = importlib.util.spec_from_file_location(name, part.checks_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered, as an import would, so that dataclasses and pickling-free
    try:                        # introspection in checks.py find their module
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if not callable(getattr(module, "grade", None)):
        raise RuntimeError(f"{part.checks_file} defines no grade(g) function")
    return module


def limits_for(part: PartSpec) -> Limits:
    r = part.resources
    return Limits(memory_mb=r.memory_mb, cpus=r.cpus, pids=r.pids, tmpfs_mb=r.tmpfs_mb)


def grade(part: PartSpec, submission_dir: Path, *, backend_name: str, seed: int | None = None,
          label: str = "local", progress: Callable[[str], None] | None = None,
          backend: Backend | None = None) -> GradeReport:
    """Raises InfrastructureError when the platform (not the submission) fails. `backend` overrides the
    one named (the fast tests pass an in-process one)."""
    progress = progress or (lambda phase: None)
    if seed is None:
        seed = int(settings.GRADER_SECRET_SEED) if settings.GRADER_SECRET_SEED else secrets.randbits(62)
    checks_module = load_checks_module(part)
    backend = backend or open_backend(backend_name)
    on_gpu = part.resources.device == "gpu" and bool(backend.gpus)
    digest = backend.image_digest()
    started = time.monotonic()
    run_deadline = started + part.resources.run_seconds
    limits = limits_for(part)
    log = OutputLog(limits.log_keep_bytes)
    log.note("staff", f"seed {seed}, backend {backend.name}, image {digest}, part {part.slug}@{part.content_hash[:12]}")
    sandbox_seeds = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])  # apart from the data's

    def launch():
        return backend.start(submission_dir, limits, label=label, gpu=on_gpu, run_deadline=run_deadline, log=log)

    # Torch threads: the part's CPUs, never more than the cores the sandbox can run on (the run's slot, or
    # outside a worker the caller's own cores, which a child process inherits and a container is given). More
    # threads than cores slow every step, so a time-budgeted training would learn less in a small slot than alone.
    slot = getattr(backend, "slot", None)
    cores = len(slot.cpus) if slot is not None else getattr(backend, "cores", None)
    cpus = min(int(part.resources.cpus), cores) if cores else int(part.resources.cpus)

    def hello(session: Session, restore, threads: int | None) -> dict:
        return session.hello(module=part.module, entries=entries_of(part), threads=min(threads or cpus, cpus),
                             seed=int(sandbox_seeds.integers(2**31 - 1)), timeout=settings.GRADER_IMPORT_SECONDS,
                             restore=restore)

    sandboxes = Sandboxes(part, launch, hello, run_deadline=run_deadline,
                          spares_ahead=getattr(backend, "spares_ahead", 1),
                          background_teardown=getattr(backend, "background_teardown", False))
    g = Grading(part, sandboxes, seed=seed, on_gpu=on_gpu, log=log, progress_callback=progress)
    error = ""
    fingerprints: dict[str, str] = {}
    progress("starting sandbox")
    try:
        progress("importing your module")
        sandboxes.training() if any(e.stores_object for e in part.entry_points.values()) else sandboxes.scoring()
        progress("running checks")
        checks_module.grade(g)
        # After every check: in the sandbox still alive (a fresh one only if none is), so nothing the probe
        # calls do can reach a score.
        fingerprints = fingerprint(g)
    except ImportFailed as exc:
        error = exc.student_message
        log.note("student", exc.detail)  # nothing hidden exists before the import
    except SandboxError as exc:  # outside any section: stops the run
        error = exc.student_message
    except InfrastructureError:
        raise  # the platform failed: the task retries the run; no result of this attempt is kept
    except Exception:  # noqa: BLE001 - a bug in checks.py outside any section: keep what was recorded
        g.grader_error([name for name in part.checks if name not in g.outcomes], traceback.format_exc())
    finally:
        sandboxes.shutdown()
    outcomes = g.finish(f"Not checked: {error}" if error else "")
    timings = {"total": time.monotonic() - started, "sandbox starts": sandboxes.seconds["start"],
               "sandbox teardowns": sandboxes.seconds["teardown"],
               "restore": sandboxes.seconds["restore"],
               **{f"sandboxes {kind}": float(n) for kind, n in sandboxes.started.items()},
               **{f"call {k}": v for k, v in g.timings.items()}}
    return GradeReport(
        part=part.slug, content_hash=part.content_hash, backend=backend.name, image_digest=digest, seed=seed,
        checks=outcomes, error=error or first_stop(sandboxes), grader_errors=g.grader_errors,
        student_log=log.text("student"), staff_log=log.text("staff"),
        timings={k: round(v, 3) for k, v in timings.items()}, slowest_calls=dict(g.slowest),
        fingerprints=fingerprints, artifacts=g.artifacts, flags=g.flags,
    )


PROBE_SIZE = 5  # every named dimension of the fixed probe


def probe_arguments(spec: EntryPoint) -> list | None:
    """Fixed inputs for a module-level entry point, from its declared argument types (None if it takes
    something a fixed probe cannot make)."""
    gen = torch.Generator().manual_seed(2601)
    args = []
    for arg in spec.args:
        if arg.shape is not None:
            shape = [int(d) if d.isdigit() else PROBE_SIZE for d in arg.shape]
            args.append(torch.randn(shape, generator=gen) if arg.kind == "floating"
                        else torch.randint(0, 2, shape, generator=gen))
        elif arg.kind == "number":
            args.append(0.5)
        elif arg.kind == "int_scalar":
            args.append(3)
        else:
            return None
    return args


def fingerprint(g: Grading) -> dict[str, str]:
    """What each module-level entry point answers on fixed inputs (public inputs; what the code prints
    goes to staff), as a digest: identical code gives
    identical digests whatever the run's secret data, so staff can see copies across a cohort. A call that
    fails is recorded by its error's kind; the run's results never depend on this."""
    found: dict[str, str] = {}
    for call, spec in g.part.entry_points.items():
        if "." in call or spec.stores_object or spec.kwargs or (args := probe_arguments(spec)) is None:
            continue
        try:
            answer = g.call(call, *args, audience="probe")
            text = repr(answer_digest_input(answer))
        except SandboxError as exc:
            text = f"error {type(exc).__name__} {getattr(exc, 'exception_type', '')}"
        found[call] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return found


def answer_digest_input(answer) -> object:
    """An answer in a form that ignores float32 noise in the last digits."""
    if isinstance(answer, dict):
        return {k: answer_digest_input(v) for k, v in sorted(answer.items())}
    if isinstance(answer, torch.Tensor):
        return [round(float(v), 4) for v in answer.flatten()[:256]] + [tuple(answer.shape)]
    if isinstance(answer, float):
        return round(answer, 4)
    return answer


def entries_of(part: PartSpec) -> dict[str, dict]:
    """What the harness needs to know of each entry point: which store the object they return."""
    return {call: ({"stores": e.stores_object} if e.stores_object else {}) for call, e in part.entry_points.items()}


def first_stop(sandboxes: Sandboxes) -> str:
    """The first sandbox that was stopped (a limit, a crash), for the summary; its checks say the rest."""
    return sandboxes.stops[0] if sandboxes.stops else ""
