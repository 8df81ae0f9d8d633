"""The VAE part's public tests accept every honest solution (reference and alternatives): the training test
measures the excess over a practice source's exact NLL, as the hidden checks do on the run's secret source,
against a looser bar than the grader's E threshold (the practice source is harder for a VAE). 14-30 s per
solution; marked calibration (about 60 s in CI for the reference and two alternatives)."""

from __future__ import annotations

import pytest

from grader.parts import load_part
from tests.handout_tests import honest_solutions, run_public_tests

PART = load_part("vae")

pytestmark = [pytest.mark.calibration]


@pytest.mark.parametrize("solution", honest_solutions(PART), ids=lambda p: p.name)
def test_the_public_tests_accept_every_honest_solution(solution, tmp_path):
    done = run_public_tests(PART, solution, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
