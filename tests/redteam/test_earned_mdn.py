"""Points only for earned work, the MDN part (issue 19, items 2-5): attacks that try to score without learning,
each graded against the same effort done honestly (its CHEAT switch off), on one backend.

- a fitted oracle for the arm: link lengths fitted by least squares and the analytic inverse kinematics (the
  grader's arm has secret links and joint readings off by a secret smooth amount);
- a memo keyed on input hashes that makes a model with dropout left on look consistent (the restore probe is
  asked again in a fresh scoring process, and points asked twice go to a later round, another fresh process);
- a probe trigger: a mixture_log_prob that is right only where the grader integrates a density (the integral
  counts only when mixture_log_prob is right on every row of that same call, random rows among them).

The MDN fast variant (2 s of training, tests/redteam/conftest.py), on the docker backend only (the grading
default): these attacks aim at the checks, which run in the grader the same whatever the sandbox, and both
backends' isolation is tried by test_redteam.py and test_lifetimes.py. 6 sandbox runs, under 2 minutes on
2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import HERE, Outcome, honest_twin

pytestmark = [pytest.mark.sandbox]

ATTACKS = HERE / "attacks_mdn"


@pytest.fixture(params=["docker"])
def backend(request) -> str:
    """One backend (see the module's docstring): overrides conftest's fixture of both."""
    return request.param




# The fit-quality thresholds of the E and C tiers: after the fast variant's 2 s of training an honest MDN lands
# near them, on either side depending on how many steps a loaded machine allowed (CI saw the attack pass nll at
# 0.383 of 0.40 while its honest twin missed it), so attack and twin are not compared on them; each test
# asserts instead that the checks its cheat aims at are failed or not counted.
TRAINING_LUCK = {"nll", "nll_c", "beats_regression", "exact_conditional", "branches"}


def earned(outcome: Outcome) -> float:
    return sum(c.points for c in outcome.report.checks if c.name not in TRAINING_LUCK)


def no_gain(run, attack: str, tmp_path: Path) -> Outcome:
    outcome, honest = run(ATTACKS / attack), run(honest_twin(ATTACKS / attack, tmp_path))
    gained = outcome.passed - honest.passed - TRAINING_LUCK
    assert not gained, f"the attack passed {gained}, which the same effort done honestly does not\n{outcome.explain()}"
    assert earned(outcome) <= earned(honest), outcome.explain()
    return outcome


def checks(outcome: Outcome) -> dict:
    return {c.name: c for c in outcome.report.checks}


def test_a_fitted_arm_oracle_earns_nothing(run, tmp_path):
    """arm_kl is the check that names an oracle: the fitted links cannot follow the secret joint distortion.
    (arm_reach and arm_branches are not: on this seed the oracle's median miss is 0.076, under 0.08, and its
    50/50 elbows match the exact shares; so do those of 1.6 s of honest training, hence no gain.)"""
    found = checks(no_gain(run, "arm_fitted_oracle", tmp_path))
    assert not found["arm_kl"].passed, found["arm_kl"].feedback


def test_a_memo_does_not_make_a_random_model_consistent(run, tmp_path):
    """The restore probe, asked again in the first scoring process (a fresh memo), sees dropout's other answer
    before the points sent twice would."""
    found = checks(no_gain(run, "memo_dropout", tmp_path))
    assert not found["nll"].passed and "set train/eval mode before fit returns" in found["nll"].feedback


def test_a_probe_triggered_mixture_log_prob_earns_nothing(run, tmp_path):
    found = checks(no_gain(run, "probe_trigger", tmp_path))
    assert not found["mixture_log_prob"].passed
    assert found["density_integrates"].feedback.startswith("Not counted"), found["density_integrates"].feedback
