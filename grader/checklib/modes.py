"""Mixtures of 2-D Gaussian modes, the data of the diffusion and GAN parts, and how samples are scored
against them: which mode each sample is nearest, whether it is a high-quality sample (within
`hq_sigmas` standard deviations of that mode), how many modes are covered and how evenly.

The data are drawn by the grader from the secret run seed; the student's code sees only samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle


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

    @classmethod
    def ring(cls, theta: float, *, sigma: float, radius: float = 2.0, count: int = 8) -> Modes:
        """`count` modes evenly spaced on a circle of `radius`, turned by the angle `theta`."""
        angles = theta + 2 * math.pi * np.arange(count) / count
        return cls(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), sigma)

    @property
    def count(self) -> int:
        return len(self.centres)

    @property
    def hq_radius(self) -> float:
        return self.hq_sigmas * self.sigma

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n points, float64 [n, 2]: a mode uniformly at random, then Gaussian noise around it."""
        k = rng.integers(0, self.count, size=n)
        return self.centres[k] + self.sigma * rng.standard_normal((n, 2))

    def stats(self, samples: np.ndarray | torch.Tensor, *, min_count: float) -> ModeStats:
        """Score samples [n, 2]: a mode is covered with at least `min_count` high-quality samples."""
        points = np.asarray(samples, dtype=np.float64)
        d = np.linalg.norm(points[:, None, :] - self.centres[None, :, :], axis=-1)
        nearest, dist = d.argmin(1), d.min(1)
        hq = dist <= self.hq_radius
        counts = np.bincount(nearest[hq], minlength=self.count)
        return ModeStats(counts=counts, off_mode=int((~hq).sum()), covered=int((counts >= min_count).sum()),
                         n=len(points))


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
        for cx, cy in panel.modes.centres:
            ax.add_patch(Circle((cx, cy), panel.modes.hq_radius, fill=False, color="tab:red", lw=0.8))
        ax.set(xlim=(x0 - half, x0 + half), ylim=(y0 - half, y0 + half), aspect="equal", xticks=[], yticks=[])
        ax.set_title(panel.title, fontsize=8)
    axes[0].legend(loc="lower left", fontsize=6, markerscale=3)
