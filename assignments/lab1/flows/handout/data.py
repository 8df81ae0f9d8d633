"""The data of this part, for your own experiments. The grader draws fresh data from the same
distributions with a seed you don't know, so there is nothing to gain by memorising a sample.

E: two moons. It is scikit-learn's make_moons(noise=0.1) (if you have scikit-learn,
`sklearn.datasets.make_moons` gives the same picture), except that the position along each arc is drawn
uniformly at random instead of evenly spaced, so that every point is an independent draw from one density.

C: two spirals. Two arms winding once around the origin, each the other turned by 180 degrees, blurred by
Gaussian noise. Its exact log-density is `spirals_log_prob`: use it to see how many nats your flow is
from the truth (the grader reports exactly that number)."""

from __future__ import annotations

import math

import numpy as np
import torch

# Two spirals: arm a in {0, 1}, position s ~ U(0, 1) along it, centre r(s) (cos phi, sin phi) with
# radius r(s) = R0 + (R1 - R0) s and angle phi = 2 pi TURNS s + pi a, then + N(0, SIGMA^2 I).
ARMS, TURNS, R0, R1, SIGMA = 2, 1.0, 0.3, 3.0, 0.12


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


def spiral_centres(s: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Points on the arms: s in [0, 1] along arm `arm` (0 or 1) -> [len(s), 2]."""
    r = R0 + (R1 - R0) * s
    phi = 2 * math.pi * TURNS * s + 2 * math.pi * arm / ARMS
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def make_spirals(n: int, seed: int = 0) -> torch.Tensor:
    """Two spirals: float32 tensor [n, 2], every point an independent draw from one density."""
    rng = np.random.default_rng(seed)
    x = spiral_centres(rng.uniform(0.0, 1.0, n), rng.integers(0, ARMS, n)) + SIGMA * rng.normal(size=(n, 2))
    return torch.from_numpy(x).float()


def spirals_log_prob(x: torch.Tensor, k: int = 1000) -> torch.Tensor:
    """The exact log-density of the two spirals at x [B, 2], in nats: the arms' uniform measure in s
    blurred by N(0, SIGMA^2 I), integrated over s by the midpoint rule with k points per arm (their
    spacing, at most 0.02, is far below SIGMA, so the rule is exact to many digits)."""
    s = (np.arange(k) + 0.5) / k
    centres = torch.from_numpy(np.concatenate([spiral_centres(s, np.full(k, a)) for a in range(ARMS)]))
    out = []
    for rows in x.double().split(4096):
        d2 = torch.cdist(rows, centres) ** 2
        log_n = -d2 / (2 * SIGMA**2) - math.log(2 * math.pi * SIGMA**2)
        out.append(torch.logsumexp(log_n, dim=1) - math.log(ARMS * k))
    return torch.cat(out)
