"""The MDN part graded in the real Docker sandbox: the reference passes, the starter fails with
readable feedback, and submissions that attack the grader end as a failed check or a limit message."""

from __future__ import annotations

import docker
import pytest

from grader.calibration import grade_source
from grader.parts import load_part
from grader.sandbox.docker_backend import LABEL

from .conftest import ATTACKS, MDN

pytestmark = [pytest.mark.sandbox]


@pytest.fixture(scope="module")
def part():
    return load_part("mdn")


def grade(part, folder, **kw):
    return grade_source(part, folder, backend="docker", seed=kw.pop("seed", 7))


@pytest.fixture(autouse=True)
def no_container_left_behind():
    client = docker.from_env(timeout=30)
    before = {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}
    yield
    after = {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}
    assert after <= before, "a sandbox container was left behind"


def test_reference_passes_every_check_in_docker(part):
    report = grade(part, MDN / "solution")
    assert report.error == ""
    failed = {c.name: c.feedback for c in report.checks if not c.passed}
    assert not failed
    assert report.points == report.max_points == part.max_points
    assert report.image_digest.startswith("sha256:")
    assert "trained" in report.student_log  # training output is the student's to see


def test_starter_fails_every_hidden_check_with_readable_feedback(part):
    report = grade(part, MDN / "handout")
    hidden = [c for c in report.checks if c.visibility == "hidden"]
    assert hidden and not any(c.passed for c in hidden)
    fit_checks = [c for c in report.checks if c.name == "nll"]
    assert "NotImplementedError" in fit_checks[0].feedback and "fit" in fit_checks[0].feedback
    assert report.points == 0


def test_loop_at_import_hits_the_import_limit(part, settings):
    settings.GRADER_IMPORT_SECONDS = 5
    report = grade(part, ATTACKS / "loop_at_import")
    assert "did not finish within its limit of 5 s" in report.error
    assert all(not c.passed for c in report.checks)
    assert report.timings["total"] < 30


def test_memory_hog_is_stopped_by_the_memory_limit(part):
    report = grade(part, ATTACKS / "memory_hog")
    assert "more than the memory limit of 2048 MB" in report.error
    assert report.points == 0


def test_fork_bomb_is_stopped_by_the_pids_limit(part):
    report = grade(part, ATTACKS / "fork_bomb")
    assert report.points == 0
    assert "fork bomb stopped after" in report.student_log
    stopped_after = int(report.student_log.split("fork bomb stopped after ")[1].split()[0])
    assert stopped_after < part.resources.pids
    nll = next(c for c in report.checks if c.name == "nll")
    assert "fit raised BlockingIOError" in nll.feedback


def test_network_is_unreachable(part):
    report = grade(part, ATTACKS / "network")
    assert "NETWORK REACHED" not in report.student_log
    assert report.student_log.count("network blocked") == 2
    assert report.points == 0


def test_printing_100_mb_is_cut_off(part):
    report = grade(part, ATTACKS / "print_flood")
    assert "printed more than 16 MB" in report.error
    assert len(report.student_log) < 300 * 1024  # the page shows a capped log, not 100 MB
    assert report.points == 0


def test_checks_solution_and_docker_socket_are_not_in_the_sandbox(part):
    report = grade(part, ATTACKS / "find_hidden")
    found = report.student_log.split("FOUND ")[1].splitlines()[0]
    readable = report.student_log.split("READABLE ")[1].splitlines()[0]
    assert readable == "[]", readable
    assert "checks.py" not in found and "docker.sock" not in found and "part.toml" not in found
    assert report.points == 0
