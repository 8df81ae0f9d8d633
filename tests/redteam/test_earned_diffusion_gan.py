"""Points only for earned work, the diffusion and GAN parts (issue 19, item 5): a fitted oracle, graded against the
same effort done honestly (its CHEAT switch off), on the docker backend (conftest's one_backend).

Each attack is the reference with `fit` replaced by a Gaussian mixture fitted by hand from the training data (the
modes are tiny and far apart, so "a point joins the first centre within reach, else starts one" finds them; then
each mode's mean and covariance) and the answer written down from it: for diffusion, the exact marginal velocity
of that mixture on the linear path and Euler samples of it; for the GAN, a generator that picks a mode with z[:, 0]
and pushes z[:, 1:] through the mode's Cholesky factor.

Short budgets (diffusion 4 s, the GAN 3 s per training), so that 8 sandbox runs take about a minute (58.6 s measured
on the 2-core machine, both backends). Diffusion: **not defended either** — flow matching learns a constellation
in the 2.8 s the reference trains here, so on a quiet machine the honest twin passes every check the oracle passes
(the velocity check included), but on a loaded one it does not and the oracle gains the sample and velocity checks;
the test asserts the examiner flag and xfails with any gain. No sample, velocity or score check can tell a fitted
Gaussian mixture from a trained model when the data are a Gaussian mixture. The GAN:
**not defended** — its data are still the ring (a constellation was tried: the reference's mode balance passed on 1
of 3 seeds, so it was not landed) and the oracle passes the four sample-quality checks that a GAN trained for 3 s
does not; no check sees a discriminator. The test asserts what holds (the gain is confined to those four checks, and
the examiner is flagged) and xfails with the gap, so that closing it shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.parts import load_part

from .conftest import HERE, Outcome, fast_variant, honest_twin, one_backend

pytestmark = [pytest.mark.sandbox]

backend = one_backend("docker")  # attacks on the checks: one backend (conftest)


# What a Gaussian mixture written as a generator earns over a GAN trained for 3 s: the open gap (see the docstring).
GAN_SAMPLE_CHECKS = {"modes", "high_quality", "high_quality_c", "mode_balance"}


def graded_pair(run, spec, attack: Path, tmp_path: Path) -> tuple[Outcome, Outcome]:
    return run(attack, part_spec=spec), run(honest_twin(attack, tmp_path), part_spec=spec)


def test_a_fitted_mixture_oracle_in_diffusion_gains_nothing_or_is_named(run, tmp_path):
    spec = fast_variant(load_part("diffusion"), run_seconds=150.0, call_seconds=30.0,
                        train_seconds_cpu=4.0, train_seconds_gpu=4.0)
    outcome, honest = graded_pair(run, spec, HERE / "attacks_diffusion_oracle", tmp_path)
    assert any(f.startswith("fit() returned after") for f in outcome.report.flags), outcome.explain()
    gained = outcome.passed - honest.passed
    if gained:
        # Not defended: the honest twin (4 s of training) passes everything the oracle does only when it gets
        # the whole CPU; on a loaded machine it does not, and a hand-fitted mixture's exact velocity then
        # earns the sample and velocity checks. No check yet asks for evidence a formula cannot give.
        pytest.xfail(f"not defended: a hand-fitted Gaussian mixture passes {sorted(gained)}, which a diffusion "
                     "model trained for 4 s did not here")
    assert outcome.report.points <= honest.report.points, outcome.explain()


def test_a_fitted_mixture_oracle_in_gan_gains_at_most_the_sample_checks(run, tmp_path):
    spec = fast_variant(load_part("gan"), run_seconds=210.0, call_seconds=30.0,
                        train_seconds_cpu=3.0, train_seconds_gpu=3.0)
    outcome, honest = graded_pair(run, spec, HERE / "attacks_gan_oracle", tmp_path)
    assert any(f.startswith("fit() returned after") for f in outcome.report.flags), outcome.explain()
    gained = outcome.passed - honest.passed
    assert gained <= GAN_SAMPLE_CHECKS, f"the oracle gained {gained - GAN_SAMPLE_CHECKS} beyond the known gap\n{outcome.explain()}"
    if gained:
        pytest.xfail(f"not defended: a hand-fitted Gaussian mixture passes {sorted(gained)}, which a GAN trained for "
                     "3 s does not (no check asks for a discriminator)")
