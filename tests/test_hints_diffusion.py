"""The diffusion part's sample-quality checks count only for a sampler shown to use the learned velocity
(issue 19: a score must be earned by the method it names). judge_quality is called directly on a recording
Grading with sampler_uses_model recorded as passed or failed; the samples are drawn from the run's own
constellation, so that they would pass every quality check if counted. No sandbox, under a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.checklib.modes import Modes
from grader.engine import load_checks_module
from grader.outcomes import Status
from grader.parts import load_part
from tests.checks_in_process import recorder

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
