"""Points only for earned work, the hybrid part (issue 19, item 5): an oracle that learns nothing.

`attacks_hybrid_oracle`: fit keeps the training digits and model.velocity is the exact flow-matching velocity
towards a kernel density over them (each digit blurred by SIGMA = 0.45 in model units), in closed form. Sampling
integrates it, so the grader's own integration of model.velocity agrees with model.sample, the held-out
flow-matching loss is within the honest range, and the blur keeps the samples far enough from their training
digits for not_copies. Measured in-process on seed 1: with SIGMA 0.25 it fails only not_copies (0.72; 24 of
26 points); with 0.45 it passes every E and C check (accuracy 0.91, not_copies 0.91, flow_heldout 35.3 against
the reference's 29.8 +- 2.3); with 0.5 it fails accuracy (0.87); with 0.6 flow_heldout too. No threshold
separates it from honest work: the window 0.3-0.47 is inside every check's honest spread.

**Not defended.** The test asserts what holds — fit returned at once and the examiner is flagged — and xfails
naming the checks it passes, so that closing the gap (evidence only a trained network gives) shows up here. One
grading, on bwrap (conftest's one_backend), no twin: the same effort done honestly (no training at all) earns nothing.
"""

from __future__ import annotations

import pytest

from grader.parts import load_part

from .conftest import HERE, fast_variant, one_backend

pytestmark = [pytest.mark.sandbox]

backend = one_backend("bwrap")  # attacks on the checks: one backend (conftest)


# Checks that do not score fit's model: its time, and the formula and membership-inference code (copied honestly).
NOT_OF_THE_MODEL = {"fit_budget", "guided_velocity", "mia_overfit_auc", "mia_leak_gap"}


def test_a_kernel_density_velocity_that_learns_nothing_is_flagged(run):
    spec = fast_variant(load_part("hybrid"), run_seconds=240.0, call_seconds=30.0)
    outcome = run(HERE / "attacks_hybrid_oracle", part_spec=spec)
    assert any(f.startswith("fit() returned after") for f in outcome.report.flags), outcome.explain()
    fit = next(c for c in outcome.report.checks if c.name == "fit_budget")
    assert fit.value is not None and fit.value < 1.0, outcome.explain()                  # nothing was trained
    earned = {c.name for c in outcome.report.checks if c.passed and c.tier in ("E", "C")} - NOT_OF_THE_MODEL
    if earned:
        pytest.xfail(f"not defended: a closed-form kernel-density velocity passes {sorted(earned)} without "
                     "training anything")


def test_decoded_training_codes_earn_nothing_in_the_latent_tier(run):
    """`attacks_hybrid_latent_copies` (issue 19, item 5): fit_latent trains as the reference and keeps its training
    digits' latents in the state; latent.sample decodes a training code of each requested label. Those samples
    re-encode, classify and recall as well as honest ones (measured in-process on seeds 1-3: all three latent
    checks passed, as the reference's do, without the latent flow), but they lie nearer the training digits than
    new digits (distance ratio 0.25-0.39; the reference 0.90-0.91), so the three checks are not counted and the
    examiner is told. Trained for the real budget: the copy is what is tested, not a short training."""
    spec = fast_variant(load_part("hybrid"), run_seconds=240.0, call_seconds=30.0,
                        train_seconds_cpu=20.0, train_seconds_gpu=20.0)
    outcome = run(HERE / "attacks_hybrid_latent_copies", part_spec=spec)
    found = {c.name: c for c in outcome.report.checks}
    for name in ("latent_samples_decoded", "latent_accuracy", "latent_recall"):
        assert not found[name].passed, outcome.explain()
        assert found[name].feedback.startswith("Not counted: your latent model's samples lie nearer"), \
            found[name].feedback
    assert any(f.startswith("latent.sample: samples lie nearer") for f in outcome.report.flags), outcome.report.flags
    assert found["latent_recon"].passed, found["latent_recon"].feedback  # the autoencoder itself was trained honestly
