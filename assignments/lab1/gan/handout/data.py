"""The data of this part and the grader's sample metrics, for your own experiments. The grader draws
fresh data from the same distribution with a seed (and a rotation of the ring) you don't know."""

from __future__ import annotations

import math

import numpy as np
import torch

RADIUS, SIGMA, N_MODES = 2.0, 0.05, 8
MIN_COUNT = 20  # a mode is covered with at least 20 high-quality samples out of 2500


def centres(rotation: float = 0.0) -> np.ndarray:
    """The 8 mode centres [8, 2] on a circle of radius 2, turned by `rotation` radians."""
    angles = rotation + 2 * math.pi * np.arange(N_MODES) / N_MODES
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_ring(n: int, seed: int = 0, rotation: float | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """n points from the ring of 8 Gaussians (sigma 0.05), a random rotation unless given.
    Returns the points as a float32 tensor [n, 2] and the centres [8, 2]."""
    rng = np.random.default_rng(seed)
    if rotation is None:
        rotation = float(rng.uniform(0, 2 * math.pi))
    c = centres(rotation)
    x = c[rng.integers(0, N_MODES, size=n)] + SIGMA * rng.standard_normal((n, 2))
    return torch.from_numpy(x).float(), c


def mode_stats(samples, c: np.ndarray) -> dict:
    """What the grader measures on 2500 samples: modes covered, the high-quality fraction (within
    3 sigma of a centre) and the balance (high-quality samples of the least-covered mode / an even share)."""
    s = np.asarray(samples, dtype=np.float64)
    d = np.linalg.norm(s[:, None, :] - c[None, :, :], axis=-1)
    hq = d.min(1) <= 3 * SIGMA
    counts = np.bincount(d.argmin(1)[hq], minlength=N_MODES)
    total = counts.sum()
    return {"modes": int((counts >= MIN_COUNT).sum()), "hq": float(hq.mean()),
            "balance": float(counts.min() / (total / N_MODES)) if total else 0.0, "counts": counts.tolist()}


def plot_samples(samples, x_train, c: np.ndarray, path: str = "samples.png") -> None:
    """Save a scatter plot of samples over the training data (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(*np.asarray(x_train)[:2000].T, s=2, c="0.7", label="data")
    ax.scatter(*np.asarray(samples)[:2000].T, s=2, c="tab:blue", alpha=0.5, label="samples")
    for cx, cy in c:
        ax.add_patch(plt.Circle((cx, cy), 3 * SIGMA, fill=False, color="tab:red"))
    ax.set_aspect("equal")
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=100)
    plt.close(fig)
