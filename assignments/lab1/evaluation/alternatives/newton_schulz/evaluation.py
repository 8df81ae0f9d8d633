"""Honest alternative (newton_schulz): torch throughout, written apart from the reference.

- Fréchet distance: the matrix square roots by the coupled Newton-Schulz iteration (no eigendecomposition):
  Σa^1/2, then (Σa^1/2 Σb Σa^1/2)^1/2, each on a matrix scaled to norm 1 and iterated to convergence;
- MMD² by masking the diagonal, k-NN radii by sorting whole rows;
- diagnose(): near-copies by comparing how close samples and held-out reference images lie to the
  training set (a sample of a model that copies lies far closer than new real images do); blur by the
  share of the images' energy above half the Nyquist frequency (2-D FFT), relative to the reference;
  lost modes by coverage (k = 5) of the reference by the samples.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from tdist import t_ppf, t_sf


def _t(x) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def _sqrtm_newton_schulz(a: torch.Tensor, iterations: int = 200, tol: float = 1e-14) -> torch.Tensor:
    """Square root of a symmetric PSD matrix: Y -> A^1/2, Z -> A^-1/2 from Y0 = A / ||A||, Z0 = I."""
    a = 0.5 * (a + a.T)
    norm = torch.linalg.matrix_norm(a)
    if float(norm) == 0.0:
        return torch.zeros_like(a)
    eye = torch.eye(a.shape[0], dtype=a.dtype)
    y, z = a / norm, eye.clone()
    for _ in range(iterations):
        step = 0.5 * (3.0 * eye - z @ y)
        y_next, z = y @ step, step @ z
        done = float((y_next - y).abs().max()) < tol
        y = y_next
        if done:
            break
    return y * norm.sqrt()


def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    mu_a, cov_a, mu_b, cov_b = (_t(v) for v in (mu_a, cov_a, mu_b, cov_b))
    root_a = _sqrtm_newton_schulz(cov_a)
    middle = _sqrtm_newton_schulz(root_a @ cov_b @ root_a)
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2.0 * middle.trace())


def frechet_distance(feats_a, feats_b) -> float:
    a, b = _t(feats_a), _t(feats_b)
    ca, cb = a - a.mean(0), b - b.mean(0)
    return frechet_from_moments(a.mean(0), ca.T @ ca / (len(a) - 1), b.mean(0), cb.T @ cb / (len(b) - 1))


def mmd2_unbiased(x, y, bandwidth: float) -> float:
    x, y = _t(x), _t(y)
    gamma = 0.5 / float(bandwidth) ** 2

    def mean_off_diagonal(k: torch.Tensor) -> torch.Tensor:
        mask = ~torch.eye(k.shape[0], dtype=torch.bool)
        return k[mask].mean()

    kxx = torch.exp(-gamma * torch.cdist(x, x).square())
    kyy = torch.exp(-gamma * torch.cdist(y, y).square())
    kxy = torch.exp(-gamma * torch.cdist(x, y).square())
    return float(mean_off_diagonal(kxx) + mean_off_diagonal(kyy) - 2.0 * kxy.mean())


def sliced_wasserstein(x, y, projections) -> float:
    x, y, theta = _t(x), _t(y), _t(projections)
    w2_squared = [(torch.sort(x @ d).values - torch.sort(y @ d).values).square().mean() for d in theta]
    return float(torch.stack(w2_squared).mean().sqrt())


def _radius(points: torch.Tensor, k: int) -> torch.Tensor:
    rows = torch.sort(torch.cdist(points, points), dim=1).values
    return rows[:, k]  # column 0 is the point itself


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    real, fake = _t(real), _t(fake)
    d = torch.cdist(fake, real)  # [M, N]
    precision = (d <= _radius(real, k)[None, :]).any(dim=1).double().mean()
    recall = (d <= _radius(fake, k)[:, None]).any(dim=0).double().mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
    real, fake = _t(real), _t(fake)
    counts = (torch.cdist(fake, real) <= _radius(real, k)[None, :]).double()  # [M, N]
    return float(counts.sum() / (k * fake.shape[0])), float((counts.sum(0) > 0).double().mean())


def memorisation_fraction(train, samples, ratio: float = 1 / 3) -> float:
    nearest = torch.sort(torch.cdist(_t(samples), _t(train)), dim=1).values[:, :2]
    return float((nearest[:, 0] < ratio * nearest[:, 1]).double().mean())


def _high_frequency_share(images: torch.Tensor, cutoff: float = 0.375) -> float:
    spectrum = torch.fft.fft2(images.view(-1, 8, 8)).abs().square()
    freq = torch.fft.fftfreq(8).abs()
    high = (freq[:, None] >= cutoff) | (freq[None, :] >= cutoff)
    return float(spectrum[:, high].sum() / spectrum.sum())


def diagnose(train, reference, samples) -> str:
    """Thresholds from data.py sets over 100 seeds: samples' median nearest-training distance over the
    reference's is about 0.1-0.2 for copies and 0.95-1.05 otherwise; the high-frequency share relative to
    the reference's (above 3/8 of the sampling frequency) is 0.77-1.2 for sharp sets and at most 0.46 for
    blurred ones; coverage (k = 5) is
    0.83-0.96 for good sets and at most 0.70 when half the classes are left."""
    train, reference, samples = _t(train), _t(reference), _t(samples)
    to_train = torch.cdist(samples, train).min(1).values.median()
    reference_to_train = torch.cdist(reference, train).min(1).values.median()
    if to_train < 0.5 * reference_to_train:
        return "memorised"
    if _high_frequency_share(samples) < 0.6 * _high_frequency_share(reference):
        return "blurred"
    if density_coverage(reference, samples, 5)[1] < 0.76:
        return "mode_dropped"
    return "good"


def mos_confidence_interval(scores, confidence: float = 0.95) -> tuple[float, float, float]:
    s = _t(scores).flatten()
    n = s.numel()
    mean, sd = float(s.mean()), float(s.var(correction=1).sqrt())
    half = t_ppf(0.5 + 0.5 * confidence, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_t_test(a, b) -> tuple[float, float]:
    d = _t(a).flatten() - _t(b).flatten()
    n = d.numel()
    sd = math.sqrt(float(((d - d.mean()) ** 2).sum()) / (n - 1))
    t = float(d.mean()) * math.sqrt(n) / sd
    return t, min(1.0, 2.0 * t_sf(abs(t), n - 1))


def raters_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    normal = NormalDist()
    z_sum = normal.inv_cdf(1.0 - alpha / 2.0) + normal.inv_cdf(power)
    return math.ceil((z_sum * sd / effect) ** 2)
