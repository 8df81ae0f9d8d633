"""The evaluation part's public tests accept every honest solution (reference and alternatives): they use
the grader's tolerances on float32 inputs, so what the hidden checks accept passes here too. About 8 s
per solution (the diagnosis on data.py's sets); marked calibration (about 35 s in CI)."""

from __future__ import annotations

import pytest

from grader.parts import load_part
from tests.handout_tests import honest_solutions, run_public_tests

PART = load_part("evaluation")

pytestmark = [pytest.mark.calibration]


@pytest.mark.parametrize("solution", honest_solutions(PART), ids=lambda p: p.name)
def test_the_public_tests_accept_every_honest_solution(solution, tmp_path):
    done = run_public_tests(PART, solution, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
