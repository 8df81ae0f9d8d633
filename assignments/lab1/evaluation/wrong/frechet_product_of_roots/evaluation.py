"""Known-wrong submission (frechet_product_of_roots): the reference solution with one typical bug.

The trace term uses tr(cov_a^1/2 cov_b^1/2), which equals tr((cov_a cov_b)^1/2) only when the
covariances commute (diagonal, or sharing eigenvectors): off by 3-10 % on the general two-Gaussian
cases, and by several % on real feature sets (whose covariances nearly, but not quite, commute).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from tdist import t_ppf, t_sf


def _f64(x) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    vals, vecs = torch.linalg.eigh(0.5 * (a + a.T))
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


# ---------------------------------------------------------------- Fréchet distance

def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    """||mu_a - mu_b||^2 + tr(cov_a + cov_b - 2 (cov_a^1/2 cov_b cov_a^1/2)^1/2)."""
    mu_a, cov_a, mu_b, cov_b = (_f64(t) for t in (mu_a, cov_a, mu_b, cov_b))
    trace_sqrt = torch.trace(_sqrtm_psd(cov_a) @ _sqrtm_psd(cov_b))  # BUG: (AB)^1/2 != A^1/2 B^1/2
    fd = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return float(fd)


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (unbiased covariances, ddof = 1)."""
    a, b = _f64(feats_a), _f64(feats_b)
    return frechet_from_moments(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))


# ---------------------------------------------------------------- kernel and transport distances

def mmd2_unbiased(x, y, bandwidth: float) -> float:
    """Unbiased MMD^2 with k(a, b) = exp(-||a - b||^2 / (2 h^2)): the diagonals k(x_i, x_i) are left out."""
    x, y = _f64(x), _f64(y)
    n, m = x.shape[0], y.shape[0]
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    kxx = torch.exp(-gamma * torch.cdist(x, x).pow(2))
    kyy = torch.exp(-gamma * torch.cdist(y, y).pow(2))
    kxy = torch.exp(-gamma * torch.cdist(x, y).pow(2))
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(xx + yy - 2 * kxy.mean())


def sliced_wasserstein(x, y, projections) -> float:
    """Sliced 2-Wasserstein distance: sqrt of the mean over directions of W2^2 between the projections."""
    x, y, theta = _f64(x), _f64(y), _f64(projections)
    px, _ = torch.sort(x @ theta.T, dim=0)  # [N, P], each column sorted
    py, _ = torch.sort(y @ theta.T, dim=0)
    return float((px - py).pow(2).mean().sqrt())


# ---------------------------------------------------------------- nearest-neighbour metrics

def _kth_radius(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set."""
    d = torch.cdist(points, points)
    return torch.kthvalue(d, k + 1, dim=1).values  # k + 1: the point itself is at distance 0


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019)."""
    real, fake = _f64(real), _f64(fake)
    d = torch.cdist(real, fake)  # [N, M]
    real_r, fake_r = _kth_radius(real, k), _kth_radius(fake, k)
    precision = (d <= real_r[:, None]).any(dim=0).double().mean()  # fake j inside some real ball
    recall = (d <= fake_r[None, :]).any(dim=1).double().mean()  # real i inside some fake ball
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), both built on the real points' k-NN balls."""
    real, fake = _f64(real), _f64(fake)
    inside = torch.cdist(real, fake) <= _kth_radius(real, k)[:, None]  # [N, M]
    density = inside.double().sum() / (k * fake.shape[0])
    coverage = inside.any(dim=1).double().mean()
    return float(density), float(coverage)


def memorisation_fraction(train, samples, ratio: float = 1 / 3) -> float:
    """Share of samples whose nearest training point is closer than `ratio` times the second nearest."""
    d = torch.cdist(_f64(samples), _f64(train))
    two = torch.topk(d, 2, dim=1, largest=False).values  # [M, 2], ascending
    return float((two[:, 0] < ratio * two[:, 1]).double().mean())


# ---------------------------------------------------------------- diagnosis of a black box

def _sharpness(images: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels of 8x8 images."""
    im = images.view(-1, 8, 8)
    return float((im[:, 1:, :] - im[:, :-1, :]).pow(2).mean() + (im[:, :, 1:] - im[:, :, :-1]).pow(2).mean())


def diagnose(train, reference, samples) -> str:
    """Label a sample set: "memorised", "blurred", "mode_dropped" or "good".

    In this order: copies of training data (nearest/second-nearest ratio), lost sharpness (neighbouring
    pixel differences relative to held-out real images), lost coverage (of the reference by the samples),
    and only then "good".
    """
    train, reference, samples = _f64(train), _f64(reference), _f64(samples)
    if memorisation_fraction(train, samples) > 0.5:
        return "memorised"
    if _sharpness(samples) < 0.75 * _sharpness(reference):
        return "blurred"
    # Mode dropping: many real images have no generated sample nearby. Coverage of two real samples of
    # these sizes is about 0.9; with half the classes missing it falls towards 0.5.
    if density_coverage(reference, samples, k=5)[1] < 0.75:
        return "mode_dropped"
    return "good"


# ---------------------------------------------------------------- subjective tests

def mos_confidence_interval(scores, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean opinion score with a two-sided t confidence interval: mean -/+ t_{(1+c)/2, n-1} s / sqrt(n)."""
    s = _f64(scores).flatten()
    n = s.numel()
    mean = float(s.mean())
    half = t_ppf(0.5 + confidence / 2, n - 1) * float(s.std(correction=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_t_test(a, b) -> tuple[float, float]:
    """Paired t-test of mean(a - b) = 0: the statistic and the two-sided p-value."""
    d = _f64(a).flatten() - _f64(b).flatten()
    n = d.numel()
    t = float(d.mean() / (d.std(correction=1) / math.sqrt(n)))
    return t, 2.0 * t_sf(abs(t), n - 1)


def raters_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Raters for a paired comparison (normal approximation): ceil(((z_{1-alpha/2} + z_power) sd / effect)^2)."""
    z = NormalDist()
    n = ((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / effect) ** 2
    return math.ceil(n)
