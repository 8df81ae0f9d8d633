"""Every feedback branch of the GAN part's checks says what was measured (issue 17, item 3).

assignments/lab1/gan/checks.py is driven three ways, each the smallest real route to a branch:
- functions that take the grading (`record_budget`, `record_uses_z`, `copies_found`) get a real `Grading`
  that records outcomes (tests/checks_in_process.recorder) and real training handles and sandbox errors;
- the words of the mode hints (`dropped_modes_words`, `starved_modes_words`) get mode statistics of real
  data with one mode left out or thinned;
- checks that call the submission (`function_of_z`, `check_optimal`) get a real `Grading` whose calls the
  submission's functions answer at once in this process, validated as the grader validates them (as
  tests/checks_in_process.Answering answers a round): known-wrong models, the reference's functions and
  generators written here;
- the branches written inline in `sample_quality` (the quick-fit flag for staff, the no_copies, modes and
  mode_balance hints, which name the three modes left out) by one in-process grading (the unsafe-inprocess backend) of the known-wrong
  replays_training with three neighbouring modes left out of what it replays.
About 10 s, most of it that grading.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from grader.checking import Trained
from grader.checklib.modes import Modes
from grader.engine import grade, load_checks_module
from grader.parts import build_known_wrong, load_part
from grader.sandbox.session import CallFailed, LimitExceeded
from grader.workspace import submission_workspace
from tests.checks_in_process import answered, import_submission, recorder

PART = load_part("gan")


@pytest.fixture(scope="module")
def gan():
    return load_checks_module(PART)


# ---- fit_budget ----

def budget(gan, fit_times: list[float], short: Trained):
    g = recorder(PART)
    gan.record_budget(g, fit_times, short, note="NOTE")
    return g.outcomes["fit_budget"]


def trained(seconds: float = math.nan, error=None) -> Trained:
    return Trained("fit", "model", seconds=seconds, error=error)


def test_trainings_within_their_budgets_pass_on_the_slowest_full_training(gan):
    outcome = budget(gan, [9.5, 12.0, 10.1], trained(1.9))
    assert outcome.passed and outcome.value == 12.0 and outcome.threshold == 32.0, outcome


def test_a_full_training_over_its_budget_is_told_to_stop_on_time(gan):
    outcome = budget(gan, [9.5, 45.0, 10.1], trained(1.9))
    assert not outcome.passed and outcome.value == 45.0 and outcome.threshold == 32.0
    assert "Stop training when max_seconds is used up" in outcome.feedback and "trains three times" in outcome.feedback
    assert "That was the training with max_seconds = 2" not in outcome.feedback


def test_a_short_training_that_overruns_reports_its_own_time_and_limit(gan):
    """wrong/ignores_max_seconds: fixed steps fit into 30 s, but not into 2 s."""
    outcome = budget(gan, [9.5, 12.0, 10.1], trained(9.3))
    assert not outcome.passed and outcome.value == 9.3 and outcome.threshold == 4.0, outcome
    feedback = outcome.feedback
    assert "That was the training with max_seconds = 2; with 30 s your fit took 12.0 s at most." in feedback
    assert "check time.monotonic() in the training loop instead of counting a fixed number of steps" in feedback


def test_a_short_training_stopped_at_its_limit_is_told_to_stop_on_time(gan):
    stopped = LimitExceeded("fit did not finish within its limit of 13 s; it was stopped.")
    outcome = budget(gan, [9.5, 12.0, 10.1], trained(error=stopped))
    assert not outcome.passed and outcome.value is None
    assert outcome.feedback.startswith("The grader also trains once with max_seconds = 2, and there: fit did not "
                                       "finish within its limit of 13 s; it was stopped. fit must stop when")


def test_a_short_training_that_raises_is_told_fit_must_work_with_any_budget(gan):
    raised = CallFailed("fit raised ZeroDivisionError: division by zero", entry="fit",
                        exception_type="ZeroDivisionError")
    outcome = budget(gan, [9.5, 12.0, 10.1], trained(error=raised))
    assert not outcome.passed
    assert "there: fit raised ZeroDivisionError: division by zero. fit must work with any max_seconds" in outcome.feedback
    assert "time.monotonic" not in outcome.feedback


# ---- uses_z: generate must be a deterministic, row-wise function of z that depends on z ----

MODES = Modes.ring(0.3, sigma=0.05, count=8)


def ring_generator(z: torch.Tensor) -> torch.Tensor:
    """A hand-written generator of the ring: the mode from z's first coordinate, the spread from the rest."""
    mode = (0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2))) * 8).long().clamp(0, 7)
    angle = 0.3 + 2 * math.pi * mode / 8
    return torch.stack([2 * angle.cos(), 2 * angle.sin()], dim=1) + 0.05 * z[:, 1:3]


def uses_z(gan, model_generate, z_dim: int) -> tuple[str, float]:
    """function_of_z's verdict and spread ratio for the generator, as sample_quality measures them."""
    g = answered(PART, {"model.generate": model_generate})
    z = g.rng.standard_normal((gan.N_SAMPLES, z_dim))
    samples = g.call("model.generate", z)
    real_spread = gan.mean_pair_distance(MODES.sample(g.rng, gan.N_SAMPLES), MODES.sample(g.rng, gan.N_SAMPLES))
    return gan.function_of_z(g, z, samples, real_spread)


def known_wrong_model(bug: str, tmp_path: Path):
    module = import_submission(build_known_wrong(PART.path / "wrong" / bug, tmp_path / bug), PART.module)
    torch.manual_seed(0)
    return module.GAN()  # untrained: the property is the code's, not the training's


def test_a_generator_of_z_passes_and_a_collapsed_one_measures_below_the_spread_limit(gan):
    problem, spread = uses_z(gan, ring_generator, 3)
    assert problem == "" and abs(spread - 1) < 0.05, spread      # the ring's own spread: as far apart as real pairs
    problem, spread = uses_z(gan, lambda z: torch.tensor([1.0, 0.5]) + 0.01 * z[:, :2], 3)
    assert problem == "" and spread < gan.SPREAD_RATIO, spread


def test_a_generator_that_draws_its_own_noise_is_told_so(gan, tmp_path):
    problem, _ = uses_z(gan, known_wrong_model("ignores_z", tmp_path).generate, 2)
    assert problem.startswith("generate(z) gave different samples when called twice with the same z"), problem


def test_a_generator_in_training_mode_is_told_its_rows_depend_on_the_batch(gan, tmp_path):
    problem, _ = uses_z(gan, known_wrong_model("batchnorm_train_mode", tmp_path).generate, 2)
    assert "did not give the same rows" in problem and "BatchNorm in eval mode" in problem, problem


def test_a_generator_that_ignores_z_and_a_collapsed_one_are_each_told_what_their_spread_means(gan):
    """The spread measured for a constant generator (0: same point for every z) and for one whose samples move
    within a patch of 0.01 (collapse), recorded as sample_quality records them: the words fit the number."""
    _, still = uses_z(gan, lambda z: torch.tensor([1.0, 0.5]).expand(z.shape[0], 2), 3)
    _, patch = uses_z(gan, lambda z: torch.tensor([1.0, 0.5]) + 0.01 * z[:, :2], 3)
    assert still == 0.0 and gan.STILL_SPREAD < patch < gan.SPREAD_RATIO, (still, patch)

    g = recorder(PART)
    gan.record_uses_z(g, [], [still, still, 1.0], note="NOTE")
    outcome = g.outcomes["uses_z"]
    assert not outcome.passed and outcome.value == 0.0, outcome
    assert outcome.feedback.startswith("Samples for two independent draws of z differ by 0.000 of what two "
                                       "independent real points differ by (median of three trainings: 0.000, "
                                       "0.000, 1.000; at least 0.25 needed). "), outcome.feedback
    assert "gives the same point whatever z is" in outcome.feedback and "collapsed" not in outcome.feedback

    g = recorder(PART)
    gan.record_uses_z(g, [], [patch, 1.0, patch], note="NOTE")
    outcome = g.outcomes["uses_z"]
    assert not outcome.passed and outcome.value == patch, outcome
    assert f"differ by {patch:.3f} of what two independent real points differ by" in outcome.feedback
    assert "move with z, but stay on a small part of the ring" in outcome.feedback
    assert "collapsed onto one mode" in outcome.feedback and "same point whatever z" not in outcome.feedback


def test_uses_z_reports_the_first_broken_property_before_the_spread(gan):
    g = recorder(PART)
    gan.record_uses_z(g, ["generate(z) gave different samples ..."], [math.nan, 0.0, 1.0], note="NOTE")
    outcome = g.outcomes["uses_z"]
    assert not outcome.passed and outcome.feedback == "generate(z) gave different samples ...", outcome
    g = recorder(PART)
    gan.record_uses_z(g, [], [0.9, 1.0, 0.2], note="NOTE")
    assert g.outcomes["uses_z"].passed and g.outcomes["uses_z"].value == 0.9


# ---- no_copies: nearer the training set than a fresh set ----

def test_fresh_samples_pass_the_copy_test_and_replayed_points_moved_by_sigma_over_16_fail(gan):
    g = recorder(PART, seed=2)
    x_train = MODES.sample(g.rng, gan.N_TRAIN)
    nearer, limit = gan.copies_found(g, MODES, MODES.sample(g.rng, gan.N_SAMPLES), x_train)
    assert abs(nearer - 0.5) < 0.05 and nearer <= limit, (nearer, limit)
    replayed = x_train[g.rng.integers(0, len(x_train), gan.N_SAMPLES)]
    moved = replayed + g.rng.normal(0, gan.SIGMA / 16, replayed.shape)        # wrong/kde_tuned_bandwidth
    nearer, limit = gan.copies_found(g, MODES, moved, x_train)
    assert nearer > limit, (nearer, limit)


# ---- modes and balance: one dropped mode is not hidden by the count ----

def test_one_dropped_mode_passes_the_mode_count_and_fails_the_balance(gan):
    """Seven of eight modes clear the coverage count (threshold 6, room for a hard budget), so the dropped
    one must show in the balance: the emptiest mode's share of an even split."""
    rng = np.random.default_rng(3)
    samples = MODES.sample(rng, 4 * gan.N_SAMPLES)
    samples = samples[MODES.sigmas_away(samples).argmin(axis=1) != 5][: gan.N_SAMPLES]
    stats = MODES.stats(samples, min_count=gan.MIN_COUNT)
    assert stats.covered == 7 and stats.covered >= PART.checks["modes"].threshold
    assert stats.counts[5] == 0 and stats.balance == 0.0 < PART.checks["mode_balance"].threshold


def mode_degrees(k: int) -> int:
    """MODES' mode k as the hints name it: the angle of its centre (theta = 0.3 rad = 17.2 degrees, then 45 each)."""
    return round(math.degrees(0.3) + 45 * k) % 360


def test_the_mode_hints_name_the_dropped_and_the_starved_mode_by_where_the_figure_shows_it(gan):
    """Per training, the modes under the coverage count (modes) and under the share the balance needs
    (mode_balance), each with its count, at the angle of its centre as the figure draws it."""
    rng = np.random.default_rng(3)
    samples = MODES.sample(rng, 4 * gan.N_SAMPLES)
    nearest = MODES.sigmas_away(samples).argmin(axis=1)
    dropped = MODES.stats(samples[nearest != 5][: gan.N_SAMPLES], min_count=gan.MIN_COUNT)
    thinned = (nearest != 2) | (rng.uniform(size=len(samples)) < 1 / 3)       # mode 2 keeps a third
    starved = MODES.stats(samples[thinned][: gan.N_SAMPLES], min_count=gan.MIN_COUNT)
    even = MODES.stats(samples[: gan.N_SAMPLES], min_count=gan.MIN_COUNT)
    assert dropped.counts[5] == 0 and starved.covered == 8 and starved.balance < 0.5 < even.balance

    words = gan.dropped_modes_words([MODES] * 3, [dropped, even, starved])
    assert words.startswith("Modes with fewer than 20 of the 2500 samples within 3 sigma (at the angle of the mode, "
                            "counter-clockwise from the right, as in the figure): "), words
    assert words.endswith(f"training 1: {mode_degrees(5)}° got 0 of 2500; training 2: none; training 3: none."), words

    share = starved.counts.sum() / 8
    assert abs(starved.counts[2] / share - starved.balance) < 1e-12      # the mode the balance measures
    words = gan.starved_modes_words([MODES] * 3, [starved, even, dropped], 0.5)
    assert words.startswith("Modes with less than 0.5 of an even share of the high-quality samples"), words
    assert words.endswith(f"training 1: {mode_degrees(2)}° got {starved.counts[2]} of an even share of {share:.0f}; "
                          f"training 2: none; training 3: {mode_degrees(5)}° got 0 of an even share of "
                          f"{dropped.counts.sum() / 8:.0f}."), words


# ---- optimal_discriminator ----

def test_the_optimal_discriminator_passes_the_stable_form_and_names_the_underflow(gan):
    reference = import_submission(PART.solution_dir, PART.module)
    g = answered(PART, {"optimal_discriminator": reference.optimal_discriminator})
    gan.check_optimal(g)
    assert g.outcomes["optimal_discriminator"].passed

    def guarded(log_p, log_q):  # p / (p + q) with a guard against 0 / 0: finite, and 0 where both underflow
        p, q = log_p.exp(), log_q.exp()
        return p / (p + q + 1e-30)

    g = answered(PART, {"optimal_discriminator": guarded})
    gan.check_optimal(g)
    outcome = g.outcomes["optimal_discriminator"]
    assert not outcome.passed and outcome.value > 0.4, outcome        # where both densities underflow
    assert "when both are about -1000, exp gives 0" in outcome.feedback and "sigmoid(log p - log q)" in outcome.feedback


def test_the_unguarded_ratio_gets_the_zero_over_zero_hint_with_its_nan(gan):
    """p / (p + q) unguarded returns NaN where both densities underflow: the validation refuses the NaN, and
    the check says where it comes from (before, the 0 / 0 hint was only shown to a guarded ratio)."""
    g = answered(PART, {"optimal_discriminator": lambda log_p, log_q: log_p.exp() / (log_p.exp() + log_q.exp())})
    gan.check_optimal(g)
    outcome = g.outcomes["optimal_discriminator"]
    assert not outcome.passed and "NaN" in outcome.feedback and "0 / 0" in outcome.feedback, outcome.feedback
    assert "sigmoid(log p - log q)" in outcome.feedback


# ---- the inline branches of sample_quality, end to end ----

def test_a_replaying_generator_with_three_modes_left_out_is_told_each_thing_measured(tmp_path):
    """wrong/replays_training, replaying only the points farther than 2 from its first training point (that
    point's mode and its two neighbours gone): fit returns at once, which staff see flagged and the student
    does not; five modes covered, none of the three dropped ones touched; the samples are training points."""
    folder = build_known_wrong(PART.path / "wrong" / "replays_training", tmp_path / "wrong")
    source = folder / PART.module
    keep = "    model = Replay(x.shape[0])\n    model.x.copy_(torch.as_tensor(x, dtype=torch.float32))\n"
    assert source.read_text().count(keep) == 1
    source.write_text(source.read_text().replace(keep, (
        "    x = torch.as_tensor(x, dtype=torch.float32)\n"
        "    x = x[(x - x[0]).norm(dim=1) > 2.0]  # three neighbouring modes left out\n"
        "    model = Replay(x.shape[0])\n    model.x.copy_(x)\n")))
    with submission_workspace(folder, PART) as workspace:
        report = grade(PART, workspace, backend_name="unsafe-inprocess", seed=4)
    checks = {c.name: c for c in report.checks}

    assert any(f.startswith("fit() returned after") for f in report.flags), report.flags
    assert "EXAMINER FLAG: fit() returned after" in report.staff_log
    assert "EXAMINER FLAG" not in report.student_log
    assert checks["fit_budget"].passed and checks["fit_budget"].value < 1.0, checks["fit_budget"]
    assert checks["uses_z"].passed, checks["uses_z"]

    copies = checks["no_copies"]
    assert not copies.passed and copies.value > copies.threshold, copies
    assert f"{copies.value:.0%} of your samples lie nearer a training point" in copies.feedback
    assert "replays training points" in copies.feedback

    modes = checks["modes"]
    assert not modes.passed and modes.value == 5, modes
    assert modes.feedback.count("5 modes / ") == 3 and "Real data at the same sample size: 8 modes" in modes.feedback
    assert "Too few modes is mode collapse" in modes.feedback
    balance = checks["mode_balance"]
    assert not balance.passed and balance.value == 0.0 and balance.feedback.count("balance 0.00") == 3, balance
    assert "Some modes get far fewer samples than others" in balance.feedback
    for feedback, share in ((modes.feedback, "of 2500"), (balance.feedback, r"of an even share of \d+")):
        named = re.findall(rf"training \d: (\d+)° got 0 {share}, (\d+)° got 0, (\d+)° got 0[;.]", feedback)
        assert len(named) == 3, feedback
        for angles in named:  # the three left out are neighbours: gaps of 45° between them, 270° around the rest
            a, b, c = sorted(int(angle) for angle in angles)
            gaps = sorted([b - a, c - b, 360 - c + a])
            assert abs(gaps[0] - 45) <= 1 and abs(gaps[1] - 45) <= 1 and abs(gaps[2] - 270) <= 2, (angles, feedback)
    assert checks["high_quality"].passed and "Samples between the modes" not in checks["high_quality"].feedback
