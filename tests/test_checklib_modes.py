"""The constellation data of the diffusion and GAN parts (`grader/checklib/modes.py`), the exact posterior
means behind the diffusion part's velocity check, and the copy test (`grader/checklib/copies.py`)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from grader.checklib.copies import copy_test
from grader.checklib.modes import Modes

LAB1 = Path(__file__).resolve().parent.parent / "assignments" / "lab1"


def handout_data(part: str):
    spec = importlib.util.spec_from_file_location(f"{part}_handout_data", LAB1 / part / "handout" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("part, sigma", [("diffusion", 0.02)])
def test_the_handouts_draw_the_graders_constellations(part, sigma):
    """A student's data.py is a standalone copy of the family: the same seed gives the same modes and points
    as the grader's Modes.constellation, and the same high-quality measure."""
    data = handout_data(part)
    assert data.SIGMA == sigma
    for seed in range(5):
        x, theirs = data.make_data(500, seed=seed)
        rng = np.random.default_rng(seed)
        ours = Modes.constellation(rng, sigma=sigma)
        assert 6 <= ours.count <= 10
        np.testing.assert_allclose(theirs.centres, ours.centres)
        np.testing.assert_allclose(theirs.shapes, ours.shapes)
        np.testing.assert_allclose(x.numpy(), ours.sample(rng, 500), atol=1e-6)
        np.testing.assert_allclose(theirs.sigmas_away(x.numpy()), ours.sigmas_away(x.numpy()), rtol=1e-9)


def test_real_data_is_high_quality_in_each_modes_own_shape():
    rng = np.random.default_rng(0)
    modes = Modes.constellation(rng, sigma=0.05)
    stats = modes.stats(modes.sample(rng, 20000), min_count=20)
    assert stats.covered == modes.count
    assert abs(stats.hq - (1 - math.exp(-4.5))) < 0.004  # 0.989 for a 2-D Gaussian, elongated or not
    round_blobs = modes.centres[rng.integers(0, modes.count, 20000)] + 0.05 * rng.standard_normal((20000, 2))
    assert modes.stats(round_blobs, min_count=20).hq > 0.95  # inside every ellipse: round is narrower


def test_posterior_means_match_monte_carlo():
    """E[x1 | x] and E[x0 | x] for x = alpha x1 + sigma x0, against self-normalised weights over 400 000 draws."""
    rng = np.random.default_rng(1)
    modes = Modes.constellation(rng, sigma=0.02)
    x1 = modes.sample(rng, 400_000)
    for alpha, sigma, tol in ((0.6, 0.4, 3e-3), (0.3, 0.95, 1.5e-2)):  # broad posteriors: mode shares' noise
        x = alpha * modes.sample(rng, 4) + sigma * rng.standard_normal((4, 2))
        mean_x1, mean_x0 = modes.posterior_means(x, np.full(4, alpha), np.full(4, sigma))
        for i in range(4):
            log_w = -0.5 * ((x[i] - alpha * x1) ** 2).sum(1) / sigma**2
            w = np.exp(log_w - log_w.max())
            expected = (w[:, None] * x1).sum(0) / w.sum()
            np.testing.assert_allclose(mean_x1[i], expected, atol=tol)
            np.testing.assert_allclose(mean_x0[i], (x[i] - alpha * expected) / sigma, atol=tol * alpha / sigma)


def test_the_copy_test_fails_replayed_training_points_and_passes_fresh_samples():
    rng = np.random.default_rng(2)
    modes = Modes.constellation(rng, sigma=0.05)
    train = modes.sample(rng, 4000)
    fresh = copy_test(modes.sample(rng, 2500), train, lambda n: modes.sample(rng, n))
    assert fresh.fraction <= fresh.limit(0.6, 4.0)
    replayed = train[rng.integers(0, 4000, 2500)] + 0.002 * rng.standard_normal((2500, 2))  # a third of their spacing
    copied = copy_test(replayed, train, lambda n: modes.sample(rng, n))
    assert copied.fraction > 0.8 > copied.limit(0.6, 4.0)
