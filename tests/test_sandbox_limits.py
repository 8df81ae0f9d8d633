"""The MDN part graded in the real Docker sandbox with its real limits: the reference passes every
check, the starter fails with readable feedback, and no container is left behind. Attacks on the
sandbox are in tests/redteam (each against both backends)."""

from __future__ import annotations

import docker
import pytest

from grader.calibration import calibration_label, grade_source
from grader.parts import load_part
from grader.sandbox.docker_backend import LABEL

from .conftest import MDN

pytestmark = [pytest.mark.sandbox]


@pytest.fixture(scope="module")
def part():
    return load_part("mdn")


def grade(part, folder, **kw):
    return grade_source(part, folder, backend="docker", seed=kw.pop("seed", 7))


@pytest.fixture(autouse=True)
def no_container_left_behind(part):
    """Only this process's containers count: another calibration may share the Docker engine."""
    client = docker.from_env(timeout=30)
    yield
    ours = [LABEL, f"org.dd2601.run={calibration_label(part)}"]
    left = client.containers.list(all=True, filters={"label": ours})
    assert not left, f"a sandbox container was left behind: {[c.short_id for c in left]}"


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
    # the starter's NotImplementedError reads as work not yet done, naming the function (status "not attempted")
    assert fit_checks[0].feedback == "Not attempted: fit() is not implemented yet."
    assert fit_checks[0].status == "not_attempted"
    assert report.points == 0
