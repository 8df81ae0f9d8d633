"""The hybrid part's public tests accept every honest solution (issue 17, item 3): the reference and each
alternative in alternatives/ (the FiLM residual network with a Heun sampler and an L1 attack) next to the
handout's data.py and test_public.py, as a student's folder. About 16 s per solution; marked calibration."""

from __future__ import annotations

import pytest

from grader.parts import load_part
from tests.handout_tests import honest_solutions, run_public_tests

PART = load_part("hybrid")

pytestmark = [pytest.mark.calibration]


@pytest.mark.parametrize("solution", honest_solutions(PART), ids=lambda p: p.name)
def test_the_public_tests_accept_every_honest_solution(solution, tmp_path):
    done = run_public_tests(PART, solution, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
