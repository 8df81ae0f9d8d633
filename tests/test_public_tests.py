"""The public tests accept every honest solution (issue 17, item 3), for the parts whose public tests run as
handed out: each solution (reference and every alternative in alternatives/) is put next to the handout's
files, as a student's folder, and `pytest test_public.py` must pass there. (MDN and flows, whose copied
public tests get shorter budgets, are in test_public_tests_mdn_flows.py.)

- evaluation: the grader's tolerances on float32 inputs, so what the hidden checks accept passes here too;
  about 8 s per solution (the diagnosis on data.py's sets).
- vae: the training test measures the excess over a practice source's exact NLL, as the hidden checks do on
  the run's secret source, against a looser bar than the grader's E threshold (the practice source is harder
  for a VAE); 14-30 s per solution.
- hybrid, gan, diffusion, autoregressive: every solution in the part's folder, whatever it is (the list is
  read from alternatives/, so a new alternative is tested without a line here); 15-30 s per solution.
Marked calibration: the grading stream of CI runs them (bin/setup.sh, run_in_pinned_streams)."""

from __future__ import annotations

import pytest

from grader.parts import load_part
from tests.handout_tests import honest_solutions, run_public_tests

PARTS = [load_part(slug) for slug in ("evaluation", "vae", "hybrid", "gan", "diffusion", "autoregressive")]
CASES = [(part, solution) for part in PARTS for solution in honest_solutions(part)]

pytestmark = [pytest.mark.calibration]


@pytest.mark.parametrize("part, solution", CASES, ids=[f"{part.slug}-{solution.name}" for part, solution in CASES])
def test_the_public_tests_accept_every_honest_solution(part, solution, tmp_path):
    done = run_public_tests(part, solution, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
