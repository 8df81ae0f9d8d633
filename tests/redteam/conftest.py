"""Fixtures for the red-team corpus: the backends under test, a fast variant of the MDN part, an honest
failing baseline per backend, and the checks that every attack leaves nothing behind.

Nothing is mocked: every attack is a real submission graded by `grader.engine.grade` in a real sandbox.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.engine import GradeReport, grade
from grader.parts import PartSpec, build_known_wrong, load_part
from grader.workspace import submission_workspace

HERE = Path(__file__).resolve().parent
ATTACKS = HERE / "attacks"
BASELINES = HERE / "baselines"
BACKENDS = ("docker", "bwrap")
CANARY_VARS = ("DD2601_WORKER_CANARY", "AWS_SECRET_ACCESS_KEY", "DJANGO_SECRET_KEY_CANARY")
DAEMON_TOKEN = "dd2601-redteam-daemon-b7e1"
# The attack folders are submissions, not tests: pytest must never import anything from them (the
# shadow_modules attack writes a conftest.py that would run inside pytest, so it is made at test time).
collect_ignore_glob = ["attacks/*", "baselines/*"]


def fast_variant(part: PartSpec, **resources) -> PartSpec:
    """The MDN part with short limits, so that attacks die in seconds: training gets 2 s (the fit call
    therefore 2 * 1.5 + 10 = 13 s), any other call 10 s, the whole run 45 s."""
    values = {"call_seconds": 10.0, "run_seconds": 45.0, "train_seconds_cpu": 2.0, "train_seconds_gpu": 2.0}
    values.update(resources)
    # The quick-fit flag is a share of the budget; at a 2 s budget that share is a tenth of a second, less
    # than moving the data takes. Keep the flag's limit in seconds what the real part's is (half the budget
    # at most), so that an attack that trains nothing is flagged here as it would be in a course round.
    real_limit = part.resources.quick_fit_fraction * part.resources.train_seconds_cpu
    values.setdefault("quick_fit_fraction", min(0.5, real_limit / values["train_seconds_cpu"]))
    return dataclasses.replace(part, resources=dataclasses.replace(part.resources, **values))


@pytest.fixture(scope="session")
def part() -> PartSpec:
    return fast_variant(load_part("mdn"))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def one_backend(name: str):
    """The `backend` fixture of a module of attacks on the checks (test_earned_*.py), which run on one backend:
    such an attack aims at the trusted scoring, the same code whatever the sandbox, while the isolation both
    backends give (fresh processes, no shared files, limits) is tried on each by test_redteam.py and
    test_lifetimes.py. Each module names its backend, so that both are used across the corpus; twice the
    gradings bought nothing but CI minutes. Assign it as `backend = one_backend("docker")` to override this
    conftest's fixture of both."""

    @pytest.fixture(params=[name])
    def backend(request) -> str:
        return request.param

    return backend


@dataclass
class Outcome:
    backend: str
    label: str
    report: GradeReport
    seconds: float

    @property
    def passed(self) -> set[str]:
        return {c.name for c in self.report.checks if c.passed}

    @property
    def feedback(self) -> str:
        return "\n".join(c.feedback for c in self.report.checks)

    @property
    def student_visible(self) -> str:
        """Everything a student can read about the run: the error, every check's feedback and title, the
        student log. (Staff notes and the staff log are not shown to students.)"""
        r = self.report
        return "\n".join([r.error, r.student_log, *(f"{c.title} {c.feedback}" for c in r.checks)])

    @property
    def logs(self) -> str:
        return self.report.student_log + "\n" + self.report.staff_log

    def explain(self) -> str:
        r = self.report
        checks = "\n".join(f"  {c.name}: {'pass' if c.passed else 'FAIL'} {c.feedback[:300]}" for c in r.checks)
        return (f"[{self.backend}] error={r.error!r} seconds={self.seconds:.1f}\n{checks}\n--- student log ---\n"
                f"{r.student_log[-3000:]}\n--- staff log ---\n{r.staff_log[-3000:]}")


def _docker_client():
    import docker

    return docker.from_env(timeout=30)


def _host_processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _host_processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
    return found


def _leftover_cgroups(label: str) -> list[Path]:
    from django.conf import settings

    parent = settings.GRADER_BWRAP_CGROUP
    roots = [Path("/sys/fs/cgroup") / c / parent for c in ("memory", "pids", "cpu")] + [Path("/sys/fs/cgroup") / parent]
    return [d for root in roots if root.is_dir() for d in root.glob(f"run-{label}-*")]


def _wait_until_gone(probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while (left := probe()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def work_dir(settings) -> Iterator[Path]:
    """A fresh GRADER_WORK_DIR that the sandbox's unprivileged uid can traverse (pytest's tmp_path lives
    under a 0700 directory); it must be empty again after the run."""
    path = Path(tempfile.mkdtemp(prefix="dd2601-redteam-", dir="/tmp"))
    os.chmod(path, 0o755)
    settings.GRADER_WORK_DIR = path
    yield path
    left = sorted(p.name for p in path.iterdir())
    shutil.rmtree(path, ignore_errors=True)
    assert not left, f"files left behind in GRADER_WORK_DIR: {left}"


@pytest.fixture
def canary(monkeypatch) -> str:
    """Secrets set in the worker's environment: none may ever show up in a sandbox."""
    value = "canary-" + secrets.token_hex(12)
    for name in CANARY_VARS:
        monkeypatch.setenv(name, value)
    return value


def laid_over_solution(source: Path, spec: PartSpec, stack: contextlib.ExitStack) -> Path:
    """An attack folder with an ON_SOLUTION file holds only what it changes (files, or `*.patch` files against
    the part's reference): the submission is built as a known-wrong is (grader.parts.build_known_wrong), so an
    attack keeps to its few lines and cannot drift from the reference."""
    if not (source / "ON_SOLUTION").is_file():
        return source
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dd2601-attack-")))
    return build_known_wrong(source, scratch / source.name, solution=spec.solution_dir)


@pytest.fixture
def run(backend, part, work_dir, canary, settings) -> Iterator:
    """Grade a submission folder (or a list of files) in `backend`, then check that nothing is left: no
    container, no cgroup, no process, no file; and that the worker's canary secret never leaked."""
    settings.GRADER_IMPORT_SECONDS = 30  # torch's import alone takes seconds on a loaded machine
    labels: list[str] = []
    outcomes: list[Outcome] = []

    def grade_it(source: Path, *, part_spec: PartSpec | None = None, seed: int = 11) -> Outcome:
        label = f"redteam-{uuid.uuid4().hex[:10]}"
        labels.append(label)
        spec = part_spec or part
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            folder = stack.enter_context(submission_workspace(laid_over_solution(source, spec, stack), spec))
            report = grade(spec, folder, backend_name=backend, seed=seed, label=label)
        outcome = Outcome(backend, label, report, time.monotonic() - started)
        outcomes.append(outcome)
        return outcome

    yield grade_it

    for outcome in outcomes:
        assert canary not in outcome.logs and canary not in outcome.student_visible, "the worker's secret leaked"
    if backend == "docker":
        client = _docker_client()
        for label in labels:
            left = client.containers.list(all=True, filters={"label": f"org.dd2601.run={label}"})
            assert not left, f"sandbox container left behind: {[c.short_id for c in left]}"
    else:
        for label in labels:
            assert not _wait_until_gone(lambda label=label: _leftover_cgroups(label)), "a cgroup was left behind"
        assert not _wait_until_gone(lambda: _host_processes_of_uid(settings.GRADER_BWRAP_UID)), \
            "a sandbox process outlived its run"


_baselines: dict[tuple[str, str], Outcome] = {}


@pytest.fixture
def baseline(backend, run) -> Outcome:
    """The honest failing submission (fit returns at once, nothing else implemented), graded once per
    backend: no attack may pass a check that it does not pass."""
    key = (backend, "honest_quick")
    if key not in _baselines:
        _baselines[key] = run(BASELINES / "honest_quick")
        assert _baselines[key].passed <= {"fit_budget"}, _baselines[key].explain()
    return _baselines[key]


def assert_no_gain(outcome: Outcome, baseline: Outcome) -> None:
    gained = outcome.passed - baseline.passed
    assert not gained, f"the attack passed {gained}, which an honest failing submission does not\n{outcome.explain()}"
    assert outcome.report.points <= baseline.report.points, outcome.explain()


def honest_twin(attack: Path, tmp_path: Path) -> Path:
    """The attack's folder with its cheat switched off (`CHEAT = True` -> `False` in its one module that
    has the switch): the same effort, done honestly, to compare the attack with."""
    twin = tmp_path / f"{attack.name}-honest"
    shutil.copytree(attack, twin)
    switched = 0
    for source in twin.glob("*.py"):
        text, count = re.subn(r"^CHEAT = True$", "CHEAT = False", source.read_text(), flags=re.M)
        if count:
            source.write_text(text)
            switched += count
    assert switched == 1, "an attack compared with its honest twin must have one CHEAT switch"
    return twin
