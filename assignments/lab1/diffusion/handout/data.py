"""The data of this part and the grader's sample measures, for your own experiments.

The grader draws fresh data from the same distribution with a rotation and a seed you don't know, so
there is nothing to gain by memorising a sample. Plotting needs matplotlib (not needed for grading).
"""

from __future__ import annotations

import math

import numpy as np
import torch

RADIUS, SIGMA, N_MODES = 2.0, 0.02, 8


def centres(rotation: float = 0.0) -> torch.Tensor:
    """The 8 mode centres [8, 2] on a circle of radius 2, turned by `rotation` radians."""
    angles = rotation + 2 * math.pi * np.arange(N_MODES) / N_MODES
    return torch.tensor(RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1), dtype=torch.float32)


def make_ring(n: int, seed: int = 0, rotation: float | None = None) -> tuple[torch.Tensor, float]:
    """n points [n, 2] from the ring of 8 Gaussians (sigma 0.02) and the rotation used (random if None)."""
    rng = np.random.default_rng(seed)
    if rotation is None:
        rotation = float(rng.uniform(0, 2 * math.pi))
    k = rng.integers(0, N_MODES, size=n)
    x = centres(rotation)[k] + SIGMA * torch.from_numpy(rng.standard_normal((n, 2))).float()
    return x, rotation


def mode_stats(samples: torch.Tensor, rotation: float) -> dict:
    """What the grader measures on 2000 samples: a sample is high quality within 3 sigma of a centre;
    a mode is covered when it gets at least a fifth of its fair share of high-quality samples;
    reverse KL (nats) of the high-quality samples' mode histogram from the uniform one."""
    samples = samples.double()
    dist, nearest = torch.cdist(samples, centres(rotation).double()).min(dim=1)
    hq = dist <= 3 * SIGMA
    counts = torch.bincount(nearest[hq], minlength=N_MODES).double()
    q = counts / counts.sum().clamp(min=1)
    kl = float((q[q > 0] * torch.log(q[q > 0] * N_MODES)).sum()) if counts.sum() > 0 else math.inf
    covered = int((counts >= 0.2 * samples.shape[0] / N_MODES).sum())
    return {"modes_covered": covered, "high_quality": float(hq.double().mean()), "reverse_kl": kl}


def plot(samples: torch.Tensor, rotation: float, path: str = "samples.png") -> None:
    """Save a scatter plot of samples with the true centres (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = centres(rotation)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4)
    ax.scatter(c[:, 0], c[:, 1], marker="x", color="red")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    fig.savefig(path)
    plt.close(fig)
