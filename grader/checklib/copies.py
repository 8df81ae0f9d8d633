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
  images, where a copy is exact;
- `closer_to_training` / `copy_test`: the share of samples nearer the training set than a fresh set of
  the same size from the same distribution. Unlike `nn_distance_ratio`, it does not mix up sharpness
  with copying: a model sharper (or blurrier) than the data is as near a fresh set as the training set,
  so any model that has not seen the training set scores 1/2 in expectation (the two sets are
  exchangeable); a model that replays training points scores well above it as long as the noise it
  adds stays below the spacing of the training points (beyond, a copy is as near fresh data as its
  source: it is then a sample of a smoothed distribution, which the sample-quality checks judge). Samples collapsed onto a few points share their neighbours, so the share's
  spread depends on the samples: `copy_test` measures it with two more fresh sets in the two roles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CopyTest:
    """How much nearer a model's samples lie to its training set than to fresh data of the same size."""

    fraction: float  # the share of samples whose nearest training point is nearer than their nearest fresh point
    null_sd: float  # that share's spread for these very samples when two fresh sets take the two roles

    def limit(self, floor: float, sds: float) -> float:
        """The largest share an honest model may reach: 1/2 plus `sds` null spreads, and never below `floor`
        (collapsed samples share their neighbours, so their share varies more than 1 / (2 sqrt(n)))."""
        return max(floor, 0.5 + sds * self.null_sd)


def closer_to_training(samples: np.ndarray, train: np.ndarray, fresh: np.ndarray) -> float:
    """The share of samples whose nearest training point is nearer than their nearest point of `fresh`, a
    fresh draw of the data distribution with as many points as `train` (1/2 in expectation when the samples
    are independent of the training set: the two sets are then exchangeable)."""
    if len(fresh) != len(train):
        raise ValueError(f"the fresh set must be as large as the training set ({len(fresh)} != {len(train)})")
    return float(np.mean(nearest_distances(samples, train)[:, 0] < nearest_distances(samples, fresh)[:, 0]))


def copy_test(samples: np.ndarray, train: np.ndarray, draw_fresh: Callable[[int], np.ndarray],
              repeats: int = 16) -> CopyTest:
    """`closer_to_training` against one fresh set, and its spread under the null for these samples: the
    same share with two further fresh sets in the roles of training and fresh data, `repeats` times."""
    n = len(train)
    fraction = closer_to_training(samples, train, draw_fresh(n))
    null = [closer_to_training(samples, draw_fresh(n), draw_fresh(n)) for _ in range(repeats)]
    return CopyTest(fraction, float(np.std(null, ddof=1)))


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
