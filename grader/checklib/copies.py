"""Are a model's samples new, or (near) copies of its training data?

Kinds of evidence, each with one home here:
- `nn_distance_ratio`: how close samples lie to the training set compared with fresh data from the same
  distribution at the same sample size (1 for a model of the distribution; well below 1 for a model that
  replays training points, even with a little noise added);
- `train_fresh_ratio`: for each sample, its distance to the training set over its distance to a fresh
  sample of the same size (1 for a model of the distribution, below 1 for one that replays training
  points, even with noise added: noise moves a sample away from both sets alike, so sharpness or blur is
  not mistaken for novelty);
- `memorised_fraction`: the share of samples much closer to one training point than to the second
  nearest (Meehan et al.'s data-copying intuition, as a per-sample test); `exact_copy_fraction` for binary
  images, where a copy is exact.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def nearest_distances(points: np.ndarray, reference: np.ndarray, k: int = 1) -> np.ndarray:
    """Distances from each point to its k nearest reference points, sorted: [len(points), k]."""
    tree = cKDTree(np.asarray(reference, dtype=np.float64))
    d, _ = tree.query(np.asarray(points, dtype=np.float64), k=k)
    return d.reshape(len(points), k)


def nn_distance_ratio(samples: np.ndarray, train: np.ndarray, fresh: np.ndarray) -> float:
    """Median distance of a sample to its nearest training point over the same median for fresh data."""
    return float(np.median(nearest_distances(samples, train)) / np.median(nearest_distances(fresh, train)))


def memorised_fraction(samples: np.ndarray, train: np.ndarray, ratio: float) -> float:
    """The share of samples whose nearest training point is closer than `ratio` times the second nearest."""
    two = nearest_distances(samples, train, k=2)
    return float(np.mean(two[:, 0] < ratio * two[:, 1]))


def exact_copy_fraction(samples: np.ndarray, train: np.ndarray) -> float:
    """The share of (binary) samples equal to some training image."""
    seen = {row.tobytes() for row in np.asarray(train).astype(np.int8)}
    return float(np.mean([row.tobytes() in seen for row in np.asarray(samples).astype(np.int8)]))


def train_fresh_ratio(samples: np.ndarray, train: np.ndarray, fresh: np.ndarray, rng: np.random.Generator) -> float:
    """Median over samples of (distance to the nearest training point) / (distance to the nearest fresh
    point). The larger of `train` and `fresh` is subsampled (with `rng`) to the size of the other, so that
    a sample of the distribution is as near to either: the median is then about 1; a sample that replays a
    training point, with or without noise, is nearer its source than any fresh point."""
    n = min(len(train), len(fresh))
    train = train[rng.choice(len(train), n, replace=False)] if len(train) > n else train
    fresh = fresh[rng.choice(len(fresh), n, replace=False)] if len(fresh) > n else fresh
    to_fresh = np.maximum(nearest_distances(samples, fresh)[:, 0], 1e-12)
    return float(np.median(nearest_distances(samples, train)[:, 0] / to_fresh))
