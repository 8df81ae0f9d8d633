"""Every feedback branch of the flows part's checks says what was measured (issue 17, item 3), and the data
families and validity measurements the checks rely on do what they claim.

The hint functions of assignments/lab1/flows/checks.py are called directly with values made to hit each
branch; the finite-difference Jacobian, the round trip in latent units and the importance-sampled mass are
run against maps whose answers are known. A few seconds, no sandbox.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grader.checklib import jacobians
from grader.engine import load_checks_module
from grader.parts import load_part


@pytest.fixture(scope="module")
def flows():
    return load_checks_module(load_part("flows"))


def test_the_log_det_hint_tells_a_flipped_sign_a_constant_offset_and_a_batch_dependent_forward(flows):
    fd = torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)
    assert "minus the log-determinant" in flows.log_det_hint(-fd, fd, 0.0)
    offset = flows.log_det_hint(fd - 0.83, fd, 0.0)
    assert "same amount at every point (-0.830 nats)" in offset and "-sum log std" in offset
    assert "different processes" in flows.log_det_hint(fd * 3, fd, 1e-2)
    general = flows.log_det_hint(fd * 3, fd, 0.0)
    assert general.startswith("log_det must be log|det dz/dx|")


def test_the_round_trip_hint_tells_batch_dependence_tails_and_a_wrong_inverse(flows):
    assert "depends on its batch" in flows.round_trip_hint(1e-3, 1e-3, 1e-6, 1e-6, 2e-2)
    tails = flows.round_trip_hint(1e-6, 0.2, 1e-6, 0.2, 0.0)
    assert "3 to 4 standard deviations out" in tails and "clamp" in tails
    wrong = flows.round_trip_hint(3.0, 150.0, 100.0, 150.0, 0.0)
    assert "off by 3.00e+00" in wrong and "reverse order" in wrong


def test_the_mass_feedback_says_which_side_it_missed_on(flows):
    assert flows.mass_feedback(1.004, 0.005)[0]
    low_ok, low = flows.mass_feedback(0.13, 0.003)
    assert not low_ok and "Less than 1" in low and "wrong sign" in low
    high_ok, high = flows.mass_feedback(1.3, 0.01)
    assert not high_ok and "More than 1" in high and "one-to-one" in high


def test_below_the_truth_is_explained(flows):
    text = flows.below_truth_feedback(0.9, 1.01)
    assert "0.110 below the true density's 1.010" in text and "Staff have been told" in text


def test_the_sampler_diagnosis_tells_forward_temperature_other_latents_and_no_flow(flows):
    torch.manual_seed(0)
    draw = torch.randn(4000, 2, dtype=torch.float64)
    samples = torch.randn(4000, 2, dtype=torch.float64) * 3 + 1
    assert "forward(z), the data-to-latent direction" in flows.sampler_diagnosis(samples, samples.clone(), draw, 1.0)
    temperature = flows.sampler_diagnosis(samples, draw, 0.8 * draw, 0.3)
    assert "variance 0.64" in temperature and "temperature" in temperature
    other = flows.sampler_diagnosis(samples, draw, torch.randn(4000, 2, dtype=torch.float64), 0.3)
    assert "standard-normal-looking latents" in other and "torch.Generator().manual_seed(seed)" in other
    not_a_flow = flows.sampler_diagnosis(samples, draw, draw + 2.0, 0.3)
    assert "not your flow's inverse of standard-normal latents" in not_a_flow


def test_sample_seed_problems_each_branch(flows):
    a, b = torch.zeros(10, 2), torch.ones(10, 2)
    assert flows.sample_seed_problems(a, b, 0.0, 0.0, lambda: "WHY") == []
    assert "a different seed gave the same samples" in flows.sample_seed_problems(a, a.clone(), 0.0, 0.0, lambda: "WHY")[0]
    assert flows.sample_seed_problems(a, b, 0.5, 0.0, lambda: "WHY") == ["WHY"]
    copies = flows.sample_seed_problems(a, b, 0.0, 0.4, lambda: "WHY")
    assert copies and "40% of the samples sit on a training point" in copies[0]


def test_finite_differences_give_the_log_determinant_of_a_known_map():
    """An area-scaling map with log|det J| = log 6 + x0 everywhere (exp in one coordinate, 2 and 3 scales)."""
    def apply(x):
        return torch.stack([3 * torch.exp(x[:, 0]), 2 * x[:, 1] + x[:, 0] ** 2], dim=1)

    points = torch.rand(200, 2, dtype=torch.float64) - 0.5
    nbrs = jacobians.neighbours(points)
    fd = jacobians.log_abs_det(nbrs, [apply(n) for n in nbrs])
    assert float((fd - (math.log(6) + points[:, 0])).abs().max()) < 1e-3


def test_the_families_are_area_preserving_and_their_density_is_normalised(flows):
    rng = np.random.default_rng(4)
    for family in (flows.draw_moons(rng), flows.draw_spirals(rng)):
        x = torch.rand(300, 2, dtype=torch.float64) * 4 - 2
        assert float((family.warp.undo(family.warp.apply(x)) - x).abs().max()) < 1e-12
        nbrs = jacobians.neighbours(x, 1e-5)
        log_det = jacobians.log_abs_det(nbrs, [family.warp.apply(n.double()) for n in nbrs])
        assert float(log_det.abs().max()) < 1e-3, "every step of the warp preserves area"
        points, log_q = family.proposal(rng, 20000)
        mass = float((family.log_prob(points) - log_q).exp().mean())
        assert abs(mass - 1) < 0.03, (family.name, mass)


def test_the_standard_draw_is_the_handouts_call(flows):
    drawn = torch.randn(5, 2, generator=torch.Generator().manual_seed(123))
    assert torch.equal(flows.standard_draw(5, 123), drawn.double())
