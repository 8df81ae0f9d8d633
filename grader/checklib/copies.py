"""Are a model's samples new, or (near) copies of its training data?

Two kinds of evidence, each with one home here:
- `nn_distance_ratio`: how close samples lie to the training set compared with fresh data from the same
  distribution at the same sample size (1 for a model of the distribution; well below 1 for a model that
  replays training points, even with a little noise added);
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
