"""Mixtures of 2-D Gaussian modes, the data of the diffusion and GAN parts, and how samples are scored
against them: which mode each sample is nearest, whether it is a high-quality sample (within
`hq_sigmas` standard deviations of that mode), how many modes are covered and how evenly.

The data are drawn by the grader from the secret run seed; the student's code sees only samples. A ring
has three free parameters (rotation, radius, width) that a hand-written formula fits from the training
data as well as any model; a *constellation* (`Modes.constellation`) draws the number, the placement
and the shape (an elongated Gaussian at its own angle) of every mode from the secret seed, so a formula
has as much to fit as a model. Distances to a mode are measured in its own standard deviations
(Mahalanobis), so "within 3 sigma" keeps its meaning (98.9 % of real data) for elongated modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse


@dataclass(frozen=True)
class ModeStats:
    """How one set of samples falls onto the modes."""

    counts: np.ndarray  # [K] high-quality samples nearest each mode
    off_mode: int  # samples farther than the high-quality radius from every mode
    covered: int  # modes with at least `min_count` high-quality samples
    n: int

    @property
    def hq(self) -> float:
        """The fraction of samples within the high-quality radius of some mode."""
        return float(self.counts.sum() / self.n) if self.n else 0.0

    @property
    def balance(self) -> float:
        """The emptiest mode's count relative to an even share of the high-quality samples (1 = even)."""
        total = self.counts.sum()
        return float(self.counts.min() / (total / len(self.counts))) if total else 0.0

    @property
    def reverse_kl(self) -> float:
        """KL(q || uniform) of the high-quality samples' distribution q over modes, in nats (0 = even)."""
        total = self.counts.sum()
        if not total:
            return math.inf
        q = self.counts[self.counts > 0] / total
        return float((q * np.log(q * len(self.counts))).sum())

    @property
    def histogram(self) -> np.ndarray:
        """Fractions per mode, then the off-mode fraction: [K + 1], summing to 1."""
        return np.append(self.counts, self.off_mode) / max(self.n, 1)


@dataclass(frozen=True)
class Modes:
    """A mixture of isotropic Gaussians with equal weights in the plane."""

    centres: np.ndarray  # [K, 2]
    sigma: float
    hq_sigmas: float = 3.0
    shapes: np.ndarray | None = None  # [K, 2, 2]: mode k is centres[k] + sigma * shapes[k] @ eps (None: round)

    @classmethod
    def ring(cls, theta: float, *, sigma: float, radius: float = 2.0, count: int = 8) -> Modes:
        """`count` modes evenly spaced on a circle of `radius`, turned by the angle `theta`."""
        angles = theta + 2 * math.pi * np.arange(count) / count
        return cls(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), sigma)

    @classmethod
    def constellation(cls, rng: np.random.Generator, *, sigma: float, counts: tuple[int, int] = (6, 10),
                      radius: float = 3.0, min_gap: float = 1.0, stretch: tuple[float, float] = (1.0, 2.5)) -> Modes:
        """A secret arrangement: between counts[0] and counts[1] modes placed uniformly at random in the disc
        of `radius`, at least `min_gap` apart, each elongated by a factor drawn from `stretch` along its own
        random direction (standard deviations sigma across, up to stretch[1] * sigma along)."""
        count = int(rng.integers(counts[0], counts[1] + 1))
        centres: list[np.ndarray] = []
        while len(centres) < count:  # random sequential placement: far below the packing limit, so it ends
            r, phi = radius * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            point = np.array([r * math.cos(phi), r * math.sin(phi)])
            if all(np.linalg.norm(point - c) >= min_gap for c in centres):
                centres.append(point)
        angles, factors = rng.uniform(0, math.pi, size=count), rng.uniform(*stretch, size=count)
        cos, sin = np.cos(angles), np.sin(angles)
        rotations = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [K, 2, 2]
        shapes = rotations * np.stack([factors, np.ones(count)], -1)[:, None, :]  # R diag(f, 1)
        return cls(np.stack(centres), sigma, shapes=shapes)

    @property
    def count(self) -> int:
        return len(self.centres)

    @property
    def covariances(self) -> np.ndarray:
        """[K, 2, 2]: each mode's covariance."""
        if self.shapes is None:
            return np.broadcast_to(self.sigma**2 * np.eye(2), (self.count, 2, 2)).copy()
        return self.sigma**2 * self.shapes @ self.shapes.transpose(0, 2, 1)

    def sigmas_away(self, samples: np.ndarray | torch.Tensor) -> np.ndarray:
        """[n, K]: how many of mode k's standard deviations each sample lies from its centre (Mahalanobis)."""
        points = np.asarray(samples, dtype=np.float64)
        offsets = points[:, None, :] - self.centres[None, :, :]
        if self.shapes is None:
            return np.linalg.norm(offsets, axis=-1) / self.sigma
        whitened = np.einsum("kij,nkj->nki", np.linalg.inv(self.shapes), offsets)
        return np.linalg.norm(whitened, axis=-1) / self.sigma

    @property
    def hq_radius(self) -> float:
        return self.hq_sigmas * self.sigma

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n points, float64 [n, 2]: a mode uniformly at random, then Gaussian noise around it."""
        k = rng.integers(0, self.count, size=n)
        noise = self.sigma * rng.standard_normal((n, 2))
        if self.shapes is not None:
            noise = np.einsum("nij,nj->ni", self.shapes[k], noise)
        return self.centres[k] + noise

    def posterior_means(self, x: np.ndarray, alpha: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[x1 | x] and E[x0 | x] for x = alpha x1 + sigma x0, x1 from this mixture and x0 ~ N(0, I) (one
        alpha and sigma per row, [n]): exact, by Gaussian conditioning within each mode, weighted by the
        mode's posterior. A Gaussian path's marginal velocity is d_alpha E[x1 | x] + d_sigma E[x0 | x], and
        its marginal score is -E[x0 | x] / sigma, so this is the exact answer a flow-matching or
        denoising model is trained to regress on."""
        x = np.asarray(x, dtype=np.float64)
        a, s = np.asarray(alpha, dtype=np.float64)[:, None, None, None], np.asarray(sigma, dtype=np.float64)[:, None, None, None]
        cov = self.covariances[None]  # [1, K, 2, 2]
        total = a**2 * cov + s**2 * np.eye(2)  # [n, K, 2, 2]: the covariance of x within mode k
        precision = np.linalg.inv(total)
        offset = x[:, None, :] - a[..., 0] * self.centres[None]  # [n, K, 2]
        whitened = np.einsum("nkij,nkj->nki", precision, offset)
        log_w = -0.5 * np.einsum("nki,nki->nk", offset, whitened) - 0.5 * np.log(np.linalg.det(total))
        w = np.exp(log_w - log_w.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        x1 = self.centres[None] + a[..., 0] * np.einsum("nkij,nkj->nki", np.broadcast_to(cov, total.shape), whitened)
        x0 = s[..., 0] * whitened
        return np.einsum("nk,nki->ni", w, x1), np.einsum("nk,nki->ni", w, x0)

    def stats(self, samples: np.ndarray | torch.Tensor, *, min_count: float) -> ModeStats:
        """Score samples [n, 2]: a mode is covered with at least `min_count` high-quality samples."""
        d = self.sigmas_away(samples)
        nearest, dist = d.argmin(1), d.min(1)
        hq = dist <= self.hq_sigmas
        counts = np.bincount(nearest[hq], minlength=self.count)
        return ModeStats(counts=counts, off_mode=int((~hq).sum()), covered=int((counts >= min_count).sum()),
                         n=len(d))


def _hq_outline(modes: Modes, k: int, centre: tuple[float, float]) -> Circle | Ellipse:
    """The high-quality region of mode k: a circle, or the ellipse of its elongated shape."""
    if modes.shapes is None:
        return Circle(centre, modes.hq_radius, fill=False, color="tab:red", lw=0.8)
    shape = modes.shapes[k]
    lengths = np.linalg.norm(shape, axis=0)  # the columns are the scaled axes R diag(f, 1)
    angle = math.degrees(math.atan2(shape[1, 0], shape[0, 0]))
    return Ellipse(centre, 2 * modes.hq_radius * lengths[0], 2 * modes.hq_radius * lengths[1], angle=angle,
                   fill=False, color="tab:red", lw=0.8)


@dataclass(frozen=True)
class Panel:
    """One scatter panel: samples over the real (or training) data, with the modes' high-quality circles."""

    title: str
    samples: np.ndarray  # [n, 2]
    real: np.ndarray  # [m, 2]
    modes: Modes


def panels_size(panels: int) -> tuple[float, float]:
    """The figure size `draw_panels` wants for this many panels (a zoom panel is added)."""
    return 2.8 * (panels + 1), 3.0


def draw_panels(fig: Figure, panels: list[Panel], *, half_width: float = 3.5, zoom: float = 0.3) -> None:
    """One scatter panel each, then the first panel zoomed on one of its modes. Samples outside a panel
    are drawn on its edge (the zoom leaves them out)."""
    axes = fig.subplots(1, len(panels) + 1)
    first = panels[0]
    views = [(p, (0.0, 0.0), half_width) for p in panels]
    views.append((Panel(f"{first.title}, one mode", first.samples, first.real, first.modes),
                  tuple(first.modes.centres[0]), zoom))
    for ax, (panel, (x0, y0), half) in zip(axes, views, strict=True):
        ax.scatter(panel.real[:1500, 0], panel.real[:1500, 1], s=2, c="0.7", linewidths=0, label="real data")
        shown = np.asarray(panel.samples)[:1500]
        if half < half_width:  # the zoom: leave out what lies outside instead of drawing it on the edge
            shown = shown[(np.abs(shown - [x0, y0]) < half).all(1)]
        shown = np.clip(shown, [x0 - half, y0 - half], [x0 + half, y0 + half])
        ax.scatter(shown[:, 0], shown[:, 1], s=2, c="tab:blue", alpha=0.5, linewidths=0, label="samples")
        for k, (cx, cy) in enumerate(panel.modes.centres):
            ax.add_patch(_hq_outline(panel.modes, k, (cx, cy)))
        ax.set(xlim=(x0 - half, x0 + half), ylim=(y0 - half, y0 + half), aspect="equal", xticks=[], yticks=[])
        ax.set_title(panel.title, fontsize=8)
    axes[0].legend(loc="lower left", fontsize=6, markerscale=3)
