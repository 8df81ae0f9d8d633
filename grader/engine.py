"""Grade one submission folder against one part: start a sandbox, import, run the part's trusted
checks, collect outcomes and logs. Shared by the Celery task, `grade_local` and `calibrate`."""

from __future__ import annotations

import importlib.util
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from django.conf import settings

from grader.checking import Artifact, CheckOutcome, Grading
from grader.parts import PartSpec
from grader.sandbox import CallFailed, SandboxError, open_backend
from grader.sandbox.session import Limits


@dataclass
class GradeReport:
    part: str
    content_hash: str
    backend: str
    image_digest: str
    seed: int
    checks: list[CheckOutcome]
    error: str = ""  # why grading stopped early, for the student
    student_log: str = ""
    staff_log: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)

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
    spec.loader.exec_module(module)
    if not callable(getattr(module, "grade", None)):
        raise RuntimeError(f"{part.checks_file} defines no grade(g) function")
    return module


def limits_for(part: PartSpec) -> Limits:
    r = part.resources
    return Limits(memory_mb=r.memory_mb, cpus=r.cpus, pids=r.pids, tmpfs_mb=r.tmpfs_mb)


def grade(part: PartSpec, submission_dir: Path, *, backend_name: str, seed: int | None = None,
          label: str = "local", progress: Callable[[str], None] | None = None) -> GradeReport:
    """Raises InfrastructureError when the platform (not the submission) fails."""
    progress = progress or (lambda phase: None)
    if seed is None:
        seed = int(settings.GRADER_SECRET_SEED) if settings.GRADER_SECRET_SEED else secrets.randbits(62)
    checks_module = load_checks_module(part)
    backend = open_backend(backend_name)
    on_gpu = part.resources.device == "gpu" and bool(getattr(backend, "gpus", None))
    digest = backend.image_digest()
    timings: dict[str, float] = {}
    started = time.monotonic()
    run_deadline = started + part.resources.run_seconds
    entries = {call: ({"stores": e.stores_object} if e.stores_object else {}) for call, e in part.entry_points.items()}
    error = ""
    progress("starting sandbox")
    with backend.start(submission_dir, limits_for(part), label=label, gpu=on_gpu, run_deadline=run_deadline) as session:
        session.log.note("staff", f"seed {seed}, backend {backend.name}, image {digest}, part {part.slug}@{part.content_hash[:12]}")
        g = Grading(part, session, seed=seed, on_gpu=on_gpu, progress=progress)
        timings["start"] = time.monotonic() - started
        try:
            progress("importing your module")
            hello = session.hello(module=part.module, entries=entries, threads=int(part.resources.cpus),
                                  seed=g.torch_seed(), timeout=settings.GRADER_IMPORT_SECONDS)
            timings["import"] = float(hello.get("import_seconds", 0.0))
            progress("running checks")
            checks_module.grade(g)
        except CallFailed as exc:
            error = exc.student_message
            if exc.detail:
                session.log.note("student" if "could not be imported" in error else "staff", exc.detail)
        except SandboxError as exc:
            error = exc.student_message
        if not error and session.dead_reason is not None:
            error = session.dead_reason.student_message  # a section caught it; the run still ended there
        outcomes = g.finish(f"Not checked: {error}" if error else "")
        timings.update({f"call {k}": round(v, 3) for k, v in g.timings.items()})
        student_log, staff_log = session.log.text("student"), session.log.text("staff")
    timings["total"] = time.monotonic() - started
    return GradeReport(
        part=part.slug, content_hash=part.content_hash, backend=backend.name, image_digest=digest, seed=seed,
        checks=outcomes, error=error, student_log=student_log, staff_log=staff_log,
        timings={k: round(v, 3) for k, v in timings.items()}, artifacts=g.artifacts,
    )
