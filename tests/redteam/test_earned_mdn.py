"""Points only for earned work, the MDN part (issue 19, items 2-5): attacks that try to score without learning,
each graded against the same effort done honestly (its CHEAT switch off), on one backend.

- a fitted oracle for the arm: link lengths fitted by least squares and the analytic inverse kinematics (the
  grader's arm has secret links and joint readings off by a secret smooth amount);
- a memo keyed on input hashes that makes a model with dropout left on look consistent (the restore probe is
  asked again in a fresh scoring process, and points asked twice go to a later round, another fresh process);
- a probe trigger: a mixture_log_prob that is right only where the grader integrates a density (the integral
  counts only when mixture_log_prob is right on every row of that same call, random rows among them);
- a hand-fitted curve (item 5, no oracle): the seven numbers of the handout's family fitted by least squares and
  the fitted curve's exact conditional returned as a mixture. Not defended: an xfail naming what it gains.

The MDN fast variant (2 s of training, tests/redteam/conftest.py). All on the docker backend (conftest's
one_backend): these attacks aim at the checks, which run in the grader the same whatever the sandbox, and
both backends' isolation is tried by test_redteam.py and test_lifetimes.py. The hand-fitted curve with the part's
30 s budget (see its test). 8 sandbox runs, about 4 minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.parts import build_known_wrong

from .conftest import HERE, Outcome, fast_variant, honest_twin, one_backend

pytestmark = [pytest.mark.sandbox]

ATTACKS = HERE / "attacks_mdn"


backend = one_backend("docker")


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


# The checks that score model.forward's mixtures: what a hand fit of the run's curve could answer.
MODEL_CHECKS = frozenset({"weights_simplex", "nll", "nll_c", "beats_regression", "exact_conditional", "branches"})


def test_a_hand_fitted_curve_is_flagged(run, part, tmp_path):
    """Issue 19, item 5: the handout names the curve's family (two sines and a half-width), so fit can find the
    run's seven numbers by least squares (a grid over the two frequencies, 0.01-0.06 s) and answer the fitted
    curve's exact conditional: 256 narrow Gaussians tiling [0, 1], weighted uniformly where |x - h(y)| <= w. Its
    honest twin trains the reference's network for the wall time the hand fit took (tens of steps). Measured
    in-process, seeds 1-5: NLL gap 0.064-0.105 (the reference after its full 30 s: about 0.17-0.22),
    exact_conditional 0.056-0.098, branches 0; the twin fails all five (gap 1.35-2.31). Not defended: the
    examiner is flagged (fit returned at once), and the test xfails naming the checks gained over the twin, so
    that per-run structure that no public formula describes (and that a hand fit therefore misses) shows up
    here. The attack is the reference with attack.patch applied (ON_SOLUTION); the twin is the built attack with
    its switch off. Graded with the part's own 30 s budget, not the fast variant's 2 s: the quick-fit flag is a
    share of the budget (1.5 %: 0.45 s of 30, 0.03 s of 2), which the hand fit's time would straddle in the fast
    variant. 4 sandbox runs (the reference's fit_arm trains 24 s in each), about 3 minutes."""
    spec = fast_variant(part, train_seconds_cpu=30.0, train_seconds_gpu=30.0, call_seconds=30.0, run_seconds=150.0)
    attack = build_known_wrong(HERE / "attacks_mdn_curve_oracle", tmp_path / "curve_oracle", solution=spec.solution_dir)
    outcome, honest = run(attack, part_spec=spec), run(honest_twin(attack, tmp_path), part_spec=spec)
    assert any(f.startswith("fit() returned after") for f in outcome.report.flags), outcome.explain()
    gained = (outcome.passed - honest.passed) & MODEL_CHECKS
    points = {name: sum(c.points for c in o.report.checks if c.name in MODEL_CHECKS and c.passed)
              for name, o in (("attack", outcome), ("twin", honest))}
    if gained:
        pytest.xfail(f"not defended: a hand fit of the curve's seven numbers passes {sorted(gained)} over its honest "
                     f"twin ({points['attack']} against {points['twin']} points) without training")
    assert points["attack"] <= points["twin"], outcome.explain()
