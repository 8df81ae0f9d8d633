"""The data of this part, for your own experiments. The grader draws fresh data from the same
distribution with a seed you don't know, so there is nothing to gain by memorising a sample.

It is scikit-learn's make_moons(noise=0.1) (if you have scikit-learn, `sklearn.datasets.make_moons`
gives the same picture), except that the position along each arc is drawn uniformly at random
instead of evenly spaced, so that every point is an independent draw from one density."""

from __future__ import annotations

import math

import numpy as np
import torch


def make_moons(n: int, seed: int = 0, noise: float = 0.1) -> torch.Tensor:
    """Two interleaving half circles plus Gaussian noise: float32 tensor [n, 2].

    outer moon (cos t, sin t), inner moon (1 - cos t, 0.5 - sin t), t ~ U(0, pi), + N(0, noise^2 I)."""
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    t_outer = rng.uniform(0.0, math.pi, n_outer)
    t_inner = rng.uniform(0.0, math.pi, n - n_outer)
    outer = np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1)
    inner = np.stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.normal(size=(n, 2))
    return torch.from_numpy(x[rng.permutation(n)]).float()
