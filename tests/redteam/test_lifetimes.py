"""Attacks on the assumption that an entry point is a pure function of its arguments, against training and
scoring as separate lifetimes (grader/lifetimes.py), on both backends.

Each attack is compared with the same effort done honestly: the same file with CHEAT = False. The attack
must pass no check its honest twin does not pass, and score no better: what it did outside the model's
declared state (a thread that keeps training, a forked child, files, training inside a query) must not
reach the model that answers the hidden queries.
"""

from __future__ import annotations

import shutil

import pytest

from grader.parts import load_part

from .conftest import ATTACKS, Outcome, fast_variant, honest_twin

pytestmark = [pytest.mark.sandbox]




def assert_no_gain_over(attack: Outcome, honest: Outcome) -> None:
    gained = attack.passed - honest.passed
    assert not gained, f"the attack passed {gained}, which the same effort done honestly does not\n{attack.explain()}"
    assert attack.report.points <= honest.report.points, attack.explain()
    theirs, ours = (next(c for c in o.report.checks if c.name == "nll").value for o in (attack, honest))
    if theirs is not None and ours is not None:  # no better model reached the hidden queries
        assert theirs >= ours - 0.1, f"attack NLL {theirs} vs honest {ours}\n{attack.explain()}"


@pytest.mark.parametrize("attack", ["train_in_thread", "train_in_fork"])
def test_training_that_outlives_fit_never_reaches_the_scored_model(run, tmp_path, attack):
    """A thread or a forked child that keeps training after fit returns dies with the training sandbox; the
    scored model is rebuilt from the state frozen when fit returned, in a fresh process with a fresh /tmp."""
    outcome = run(ATTACKS / attack)
    honest = run(honest_twin(ATTACKS / attack, tmp_path))
    assert_no_gain_over(outcome, honest)
    assert outcome.report.timings["sandboxes train"] >= 1 and outcome.report.timings["sandboxes score"] >= 1


def test_training_inside_the_first_query_earns_nothing(run, tmp_path):
    """Training data kept in the state (allowed) and trained on in the first query instead of in fit: the
    model rebuilt for scoring must answer the probe as the trained one did (it trains during the probe, so
    it does not), and a call's limit, from the reference's cost, bounds what can be trained in a query."""
    # The twin trains 1.5 s inside fit: a 6 s budget leaves room for a loaded machine's call overhead (the 2 s of
    # the fast variant did not: 6.2 s measured for its fit call with CI's two streams and one more grading
    # running, so the twin lost fit_budget and the attack "gained" it). The attack's fit returns at once anyway.
    spec = fast_variant(load_part("mdn"), train_seconds_cpu=6.0, train_seconds_gpu=6.0)
    outcome = run(ATTACKS / "train_in_first_query", part_spec=spec)
    honest = run(honest_twin(ATTACKS / "train_in_first_query", tmp_path), part_spec=spec)
    assert_no_gain_over(outcome, honest)
    nll = next(c for c in outcome.report.checks if c.name == "nll")
    assert nll.status != "passed", outcome.explain()
    assert ("gives other answers after the grader rebuilt it" in nll.feedback
            or "different answers to the same input each time" in nll.feedback  # it trained in the probe
            or "did not finish within its limit" in nll.feedback), outcome.explain()


def test_a_fit_that_times_out_keeps_the_points_of_independent_checks(run, tmp_path):
    """Partial credit: the reference with a fit that never returns. Only the checks that need fit's model
    are lost (with the reason); the formula checks and the A tier's separately trained arm model still earn
    their points, answered by fresh sandboxes."""

    folder = tmp_path / "fit_times_out"
    shutil.copytree(load_part("mdn").solution_dir, folder)
    source = folder / "mdn.py"
    text = source.read_text()
    start = text.index("def fit(x, y, *, seed: int, max_seconds: float)")
    end = text.index("\n\n\n", start)
    source.write_text(text[:start] + "def fit(x, y, *, seed: int, max_seconds: float):\n"
                      "    import time\n    time.sleep(10**6)\n" + text[end:])
    outcome = run(folder)
    checks = {c.name: c for c in outcome.report.checks}
    assert "fit did not finish within its limit" in checks["fit_budget"].feedback, outcome.explain()
    for name in ("nll", "weights_simplex", "density_integrates"):
        assert checks[name].status == "not_checked", outcome.explain()
        assert "fit() did not return a model" in checks[name].feedback, outcome.explain()
    kept = {"gaussian_nll", "mixture_log_prob", "em_step", "em_monotone", "em_sklearn", "arm_log_prob"}
    assert kept <= outcome.passed, outcome.explain()
    assert outcome.report.points >= sum(checks[n].max_points for n in kept)
