"""The diffusion part's feedback and counting rules, each branch tested (issues 17 and 19), no sandbox.

- The sample-quality checks count only for a sampler shown to use the learned velocity (issue 19: a score
  must be earned by the method it names): judge_quality on a recording Grading with sampler_uses_model
  recorded as passed or failed, on samples drawn from the run's own constellation (they would pass if counted).
- The hint branches of the formula checks (a reversed time convention, the dropped alpha_t factor) and of
  samples_fresh (another seed, another process, training points) name only what was measured to fail: the
  checks answered in this process by the reference's functions and by slips of them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.checklib.modes import Modes
from grader.engine import load_checks_module
from grader.outcomes import Status
from grader.parts import load_part
from tests.checks_in_process import answered, import_submission, recorder

QUALITY = ("modes_covered", "high_quality", "reverse_kl", "mmd", "high_quality_c", "mmd_c")


@pytest.fixture(scope="module")
def diffusion():
    return load_checks_module(load_part("diffusion"))


def perfect_samples(diffusion, g) -> tuple[Modes, list[torch.Tensor]]:
    """Three seeds' worth of draws from the true constellation: every quality check passes on them."""
    modes = Modes.constellation(g.rng, sigma=diffusion.SIGMA)
    rng = np.random.default_rng(7)
    return modes, [diffusion.make_data(rng, diffusion.N_SAMPLES, modes) for _ in range(diffusion.N_SEEDS)]


def test_samples_from_a_sampler_that_ignores_the_velocity_are_not_counted(diffusion):
    g = recorder(load_part("diffusion"))
    modes, samples = perfect_samples(diffusion, g)
    g.record("sampler_uses_model", False, "model.sample does not follow model.velocity", value=0.5)
    diffusion.judge_quality(g, modes, samples)
    for name in QUALITY:
        outcome = g.outcomes[name]
        assert outcome.status == Status.FAILED, (name, outcome)
        assert outcome.feedback.startswith("Not counted: samples count only when model.sample integrates your "
                                           "model.velocity"), outcome.feedback


def test_the_same_samples_count_when_the_sampler_uses_the_velocity(diffusion):
    g = recorder(load_part("diffusion"))
    modes, samples = perfect_samples(diffusion, g)
    g.record("sampler_uses_model", True, "fine", value=0.0)
    diffusion.judge_quality(g, modes, samples)
    failed = {name: g.outcomes[name].feedback for name in QUALITY if not g.outcomes[name].passed}
    assert not failed, failed


def test_a_sampling_section_that_failed_keeps_its_own_reason(diffusion):
    g = recorder(load_part("diffusion"))
    modes, samples = perfect_samples(diffusion, g)
    g.record("sampler_uses_model", True, "fine", value=0.0)
    diffusion.judge_quality(g, modes, samples[:1])  # a sample call failed: the sampling section recorded them
    assert not any(name in g.outcomes for name in QUALITY)


# ---- the hint branches of the formula checks and of samples_fresh (issue 17, item 3) ----

PART = load_part("diffusion")


@pytest.fixture(scope="module")
def reference():
    return import_submission(PART.solution_dir, PART.module)


def test_a_schedule_whose_time_runs_backwards_is_told_the_convention(diffusion, reference):
    def backwards(t, path="linear"):
        alpha, sigma, d_alpha, d_sigma = reference.schedule(1 - t, path)
        return alpha, sigma, -d_alpha, -d_sigma

    def sigma_off(t, path="linear"):
        alpha, sigma, d_alpha, d_sigma = reference.schedule(t, path)
        return alpha, sigma + 0.1 * t, d_alpha, d_sigma + 0.1

    for schedule, passes, told in ((reference.schedule, True, False), (backwards, False, True),
                                   (sigma_off, False, False)):
        g = answered(PART, {"schedule": schedule})
        diffusion.check_endpoints(g)
        outcome = g.outcomes["schedule_endpoints"]
        assert outcome.passed == passes, outcome.feedback
        assert ("Your time runs the other way" in outcome.feedback) == told, outcome.feedback


def test_a_field_without_the_alpha_factor_is_told_so_and_other_slips_are_not(diffusion, reference):
    def dropped_alpha(x, x1, t, path="linear"):
        alpha, sigma, d_alpha, d_sigma = reference.schedule(t, path)
        return d_alpha * x1 + d_sigma / sigma * (x - x1)

    def sign_flipped(x, x1, t, path="linear"):
        return -reference.conditional_vector_field(x, x1, t, path)

    for field, passes, told in ((reference.conditional_vector_field, True, False), (dropped_alpha, False, True),
                                (sign_flipped, False, False)):
        g = answered(PART, {"conditional_vector_field": field})
        diffusion.check_vector_field(g)
        outcome = g.outcomes["conditional_vector_field"]
        assert outcome.passed == passes, outcome.feedback
        assert ("the alpha_t factor is missing" in outcome.feedback) == told, outcome.feedback


@pytest.mark.parametrize("broken, words", [
    ("same_under_other_seed", "come back unchanged under another seed"),
    ("not_reproduced", "differ when the same seed is asked for again in another process"),
    ("training_points", "are training points"),
])
def test_samples_fresh_names_only_what_was_measured_to_fail(diffusion, broken, words):
    rng = np.random.default_rng(3)
    x_train = torch.from_numpy(rng.standard_normal((500, 2)))
    samples = [torch.from_numpy(rng.standard_normal((400, 2))) for _ in range(3)]
    again = samples[0].clone()
    if broken == "same_under_other_seed":
        samples[1] = samples[0].clone()
    elif broken == "not_reproduced":
        again = torch.from_numpy(rng.standard_normal((400, 2)))
    else:
        samples[0][:200] = x_train[:200]
        again = samples[0].clone()
    g = recorder(PART)
    diffusion.check_fresh(g, samples, again, x_train)
    outcome = g.outcomes["samples_fresh"]
    assert not outcome.passed and words in outcome.feedback, outcome.feedback
    others = {"come back unchanged under another seed", "differ when the same seed is asked for again in another "
              "process", "are training points"} - {words}
    assert not any(other in outcome.feedback for other in others), outcome.feedback


def test_fresh_reproducible_samples_pass_samples_fresh(diffusion):
    rng = np.random.default_rng(4)
    samples = [torch.from_numpy(rng.standard_normal((400, 2))) for _ in range(3)]
    g = recorder(PART)
    diffusion.check_fresh(g, samples, samples[0].clone(), torch.from_numpy(rng.standard_normal((500, 2))))
    assert g.outcomes["samples_fresh"].passed, g.outcomes["samples_fresh"].feedback
