"""The public tests accept every honest solution of the vae and gan parts (issue 17, item 3): as
test_public_tests.py does for four other parts, in a file of its own only so that CI runs it in the other stream
(bin/setup.sh balances the two streams by file).

- vae: the training test measures the excess over a practice source's exact NLL, as the hidden checks do on
  the run's secret source, against a looser bar than the grader's E threshold (the practice source is harder
  for a VAE); 14-36 s per solution.
- gan: every solution in the part's folder (read from alternatives/); 20-35 s per solution."""

from __future__ import annotations

import pytest

from tests.handout_tests import public_test_cases, run_public_tests

pytestmark = [pytest.mark.calibration]


@pytest.mark.parametrize("part, solution", public_test_cases("vae", "gan"))
def test_the_public_tests_accept_every_honest_solution(part, solution, tmp_path):
    done = run_public_tests(part, solution, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
