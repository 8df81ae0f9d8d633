"""Honest alternative (pca_spectral): torch, written apart from the reference.

- Fréchet distance: tr((Σa Σb)^1/2) from the eigenvalues of the symmetric Σb^1/2 Σa Σb^1/2 (the other
  order than the reference), each root from torch.linalg.eigh;
- MMD² from the full kernel matrix of the pooled sample with a signed weight matrix;
- precision/recall and density/coverage with torch.topk;
- diagnose() in the 20-dimensional principal subspace of the training images: near-copies by the share
  of samples much closer to a training image than training images are to each other; blur by total
  variation (mean absolute difference of neighbouring pixels) relative to the reference; lost modes by
  coverage of the reference (k = 5) in the principal subspace.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from tdist import t_ppf, t_sf


def _t(x) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def _root(a: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((a + a.T) / 2)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    mu_a, cov_a, mu_b, cov_b = (_t(v) for v in (mu_a, cov_a, mu_b, cov_b))
    root_b = _root(cov_b)
    inner = root_b @ cov_a @ root_b
    trace_root = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    return float(torch.dot(mu_a - mu_b, mu_a - mu_b) + torch.trace(cov_a + cov_b) - 2 * trace_root)


def frechet_distance(feats_a, feats_b) -> float:
    a, b = _t(feats_a), _t(feats_b)
    return frechet_from_moments(a.mean(0), torch.cov(a.T, correction=1), b.mean(0), torch.cov(b.T, correction=1))


def mmd2_unbiased(x, y, bandwidth: float) -> float:
    x, y = _t(x), _t(y)
    n, m = len(x), len(y)
    both = torch.cat([x, y])
    k = torch.exp(-torch.cdist(both, both).square() / (2 * float(bandwidth) ** 2))
    w = torch.cat([torch.full((n,), 1.0 / n, dtype=torch.float64), torch.full((m,), -1.0 / m, dtype=torch.float64)])
    weights = torch.outer(w, w)
    weights[:n, :n] *= n / (n - 1)
    weights[n:, n:] *= m / (m - 1)
    weights.fill_diagonal_(0.0)
    return float((weights * k).sum())


def sliced_wasserstein(x, y, projections) -> float:
    x, y, theta = _t(x), _t(y), _t(projections)
    gaps = (x @ theta.T).sort(dim=0).values - (y @ theta.T).sort(dim=0).values
    return math.sqrt(float(gaps.pow(2).sum()) / gaps.numel())


def _kth_other(points: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(torch.cdist(points, points), k + 1, dim=1, largest=False).values[:, k]


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    real, fake = _t(real), _t(fake)
    d = torch.cdist(real, fake)
    in_real = d <= _kth_other(real, k).unsqueeze(1)
    in_fake = d <= _kth_other(fake, k).unsqueeze(0)
    return float(in_real.any(0).double().mean()), float(in_fake.any(1).double().mean())


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
    real, fake = _t(real), _t(fake)
    inside = torch.cdist(real, fake) <= _kth_other(real, k).unsqueeze(1)
    return float(inside.double().sum()) / (k * len(fake)), float(inside.any(1).double().mean())


def memorisation_fraction(train, samples, ratio: float = 1 / 3) -> float:
    d1, d2 = torch.topk(torch.cdist(_t(samples), _t(train)), 2, dim=1, largest=False).values.unbind(1)
    return float((d1 < ratio * d2).double().mean())


def _principal(train: torch.Tensor, dims: int = 20):
    mean = train.mean(0)
    _, _, vt = torch.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:dims].T
    return lambda x: (x - mean) @ basis


def _total_variation(images: torch.Tensor) -> float:
    im = images.view(-1, 8, 8)
    return float((im[:, 1:] - im[:, :-1]).abs().mean() + (im[:, :, 1:] - im[:, :, :-1]).abs().mean())


def diagnose(train, reference, samples) -> str:
    """Thresholds from data.py sets over 100 seeds (see the docstring of _statistics)."""
    stats = _statistics(train, reference, samples)
    if stats["near_copies"] > 0.5:
        return "memorised"
    if stats["total_variation"] < 0.9:
        return "blurred"
    if stats["coverage"] < 0.77:
        return "mode_dropped"
    return "good"


def _statistics(train, reference, samples) -> dict[str, float]:
    """near_copies: share of samples closer to a training image than a third of the median distance between
    neighbouring training images (copies about 1.0, others 0.0); total_variation of the samples over the
    reference's (sharp sets 0.94-1.04, blurred at most 0.81); coverage of the reference (k = 5) in the
    principal subspace (good sets 0.84-0.95, half the classes left at most 0.72)."""
    train, reference, samples = _t(train), _t(reference), _t(samples)
    project = _principal(train)
    tr, ref, smp = project(train), project(reference), project(samples)
    typical = _kth_other(tr, 1).median()
    near = torch.cdist(smp, tr).min(1).values < typical / 3
    return {"near_copies": float(near.double().mean()),
            "total_variation": _total_variation(samples) / _total_variation(reference),
            "coverage": density_coverage(ref, smp, 5)[1]}


def mos_confidence_interval(scores, confidence: float = 0.95) -> tuple[float, float, float]:
    s = _t(scores).flatten()
    n = len(s)
    mean = float(s.sum()) / n
    sd = math.sqrt(float(((s - mean) ** 2).sum()) / (n - 1))
    half = t_ppf(1 - (1 - confidence) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_t_test(a, b) -> tuple[float, float]:
    diff = _t(a).flatten() - _t(b).flatten()
    n = len(diff)
    t = float(diff.mean() / diff.std(correction=1) * math.sqrt(n))
    return t, 2 * t_sf(math.fabs(t), n - 1)


def raters_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    z = NormalDist()
    needed = ((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) / (effect / sd)) ** 2
    return int(math.ceil(needed))
