"""The data of this part and the grader's sample measures, for your own experiments.

Every grading run draws its own constellation: 6 to 10 narrow Gaussian modes placed at random in a
disc of radius 3 (at least 1 apart), each elongated along its own random direction (standard deviation
SIGMA across, 1 to 2.5 times that along). `constellation(seed)` draws one exactly as the grader does,
from a seed you choose; the grader's seed is secret, so there is nothing to gain by memorising a sample
or by writing the answer down. The grader trains three times, each on its own constellation. Plotting needs matplotlib (not needed for grading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SIGMA = 0.05
MIN_COUNT = 20  # a mode is covered with at least 20 high-quality samples out of 2500
COUNTS, RADIUS, MIN_GAP, STRETCH = (6, 10), 3.0, 1.0, (1.0, 2.5)
HQ_SIGMAS = 3.0


@dataclass(frozen=True)
class Constellation:
    centres: np.ndarray  # [K, 2]
    shapes: np.ndarray  # [K, 2, 2]: mode k is centres[k] + SIGMA * shapes[k] @ eps, eps ~ N(0, I)

    @property
    def count(self) -> int:
        return len(self.centres)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n points [n, 2]: a mode uniformly at random, then its elongated Gaussian noise."""
        k = rng.integers(0, self.count, size=n)
        noise = np.einsum("nij,nj->ni", self.shapes[k], SIGMA * rng.standard_normal((n, 2)))
        return self.centres[k] + noise

    def sigmas_away(self, points) -> np.ndarray:
        """[n, K]: how many of mode k's standard deviations each point lies from its centre (Mahalanobis)."""
        offsets = np.asarray(points, dtype=np.float64)[:, None, :] - self.centres[None]
        return np.linalg.norm(np.einsum("kij,nkj->nki", np.linalg.inv(self.shapes), offsets), axis=-1) / SIGMA


def constellation(seed: int) -> Constellation:
    """A constellation drawn as the grader draws its secret one (random sequential placement in the disc)."""
    return _draw(np.random.default_rng(seed))


def _draw(rng: np.random.Generator) -> Constellation:
    count = int(rng.integers(COUNTS[0], COUNTS[1] + 1))
    centres: list[np.ndarray] = []
    while len(centres) < count:
        r, phi = RADIUS * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        point = np.array([r * math.cos(phi), r * math.sin(phi)])
        if all(np.linalg.norm(point - c) >= MIN_GAP for c in centres):
            centres.append(point)
    angles, factors = rng.uniform(0, math.pi, size=count), rng.uniform(*STRETCH, size=count)
    cos, sin = np.cos(angles), np.sin(angles)
    rotations = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    return Constellation(np.stack(centres), rotations * np.stack([factors, np.ones(count)], -1)[:, None, :])


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, Constellation]:
    """n points [n, 2] (float32) of the constellation drawn from `seed`, and the constellation."""
    rng = np.random.default_rng(seed)
    modes = _draw(rng)
    return torch.from_numpy(modes.sample(rng, n)).float(), modes


def mode_stats(samples, modes: Constellation) -> dict:
    """What the grader measures on 2500 samples: modes covered (of modes.count), the high-quality fraction
    (within 3 standard deviations of a centre, in that mode's own shape) and the balance (high-quality
    samples of the least-covered mode / an even share)."""
    d = modes.sigmas_away(np.asarray(samples, dtype=np.float64))
    hq = d.min(1) <= HQ_SIGMAS
    counts = np.bincount(d.argmin(1)[hq], minlength=modes.count)
    total = counts.sum()
    return {"modes": int((counts >= MIN_COUNT).sum()), "of": modes.count, "hq": float(hq.mean()),
            "balance": float(counts.min() / (total / modes.count)) if total else 0.0, "counts": counts.tolist()}


def plot_samples(samples, x_train, modes: Constellation, path: str = "samples.png") -> None:
    """Save a scatter plot of samples over the training data (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(*np.asarray(x_train)[:2000].T, s=2, c="0.7", label="data")
    ax.scatter(*np.asarray(samples)[:2000].T, s=2, c="tab:blue", alpha=0.5, label="samples")
    ax.scatter(modes.centres[:, 0], modes.centres[:, 1], marker="x", color="red")
    ax.set_aspect("equal")
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=100)
    plt.close(fig)
