"""The example part of assignments/lab1/AUTHORING.md really grades: its reference passes every check, its
known-wrong fails the check that names it, and the guide shows the checks.py that runs (no drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.engine import grade
from grader.outcomes import Status
from grader.parts import load_part_dir

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example_part"
GUIDE = Path(__file__).resolve().parent.parent / "assignments" / "lab1" / "AUTHORING.md"


def grade_example(folder: str, seed: int = 3):
    report = grade(load_part_dir(EXAMPLE), EXAMPLE / folder, backend_name="unsafe-inprocess", seed=seed)
    return report, {c.name: c for c in report.checks}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_example_reference_passes_every_check(seed):
    report, checks = grade_example("solution", seed)
    assert report.all_passed, {n: (c.status, c.feedback) for n, c in checks.items() if not c.passed}
    assert [a.name for a in report.artifacts] == ["samples"]


def test_the_example_known_wrong_fails_the_copy_check_only():
    report, checks = grade_example("wrong_copies")
    assert checks["not_copies"].status == Status.FAILED
    assert "sit on training points" in checks["not_copies"].feedback
    assert [n for n, c in checks.items() if not c.passed] == ["not_copies"]


def test_the_guide_shows_the_checks_that_run():
    assert (EXAMPLE / "checks.py").read_text() in GUIDE.read_text()
