"""The data of this part, for your own experiments. The grader draws fresh data from the same families
with a seed you don't know, so there is nothing to gain by memorising a sample.

E and C: Bishop's inverse problem with a twist. y ~ U(0, 1) and x = h(y) + U(-w, w), where the curve
    h(y) = y + a1 sin(2 pi f1 y + p1) + a2 sin(2 pi f2 y + p2)
and the noise half-width w are drawn anew for every run (`Curve.random(seed)` draws one from the grader's
family; `Curve()` is Bishop's own, a1 = 0.3, f1 = 1, a2 = 0, w = 0.1). Your model has to learn p(y | x)
from the data: no formula here describes a run's curve. `exact_nll` is the best any model can do on a
point (y given x is uniform over the values that can explain x), to measure your gap to the truth.

A: a two-link arm whose link lengths, and the error of whose joint readings, are drawn anew for every run
(`Arm.random(seed)`; `Arm()` is the arm of the default data, with exact readings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Curve:
    """x = h(y) + U(-half_width, half_width) with h(y) = y + sum of a sin(2 pi f y + p) over `terms`."""

    terms: tuple[tuple[float, float, float], ...] = ((0.3, 1.0, 0.0),)
    half_width: float = 0.1

    @classmethod
    def random(cls, seed: int) -> Curve:
        """One curve from the grader's family: a1 in [0.30, 0.35], f1 in [1.0, 1.2], p1 within 0.3 of
        pi (1 - f1) (the curve folds back near y = 0.5), a2 in [0.02, 0.06], f2 in [1.8, 2.6], any p2,
        w in [0.07, 0.12]."""
        rng = np.random.default_rng(seed)
        a1, f1 = float(rng.uniform(0.30, 0.35)), float(rng.uniform(1.0, 1.2))
        main = (a1, f1, math.pi * (1 - f1) + float(rng.uniform(-0.3, 0.3)))
        ripple = (float(rng.uniform(0.02, 0.06)), float(rng.uniform(1.8, 2.6)), float(rng.uniform(0, 2 * math.pi)))
        return cls((main, ripple), float(rng.uniform(0.07, 0.12)))

    def h(self, y: torch.Tensor) -> torch.Tensor:
        return y + sum(a * torch.sin(2 * math.pi * f * y + p) for a, f, p in self.terms)


def make_data(n: int, seed: int = 0, curve: Curve | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs from `curve` (Bishop's by default). Returns x, y as float32 [n, 1]."""
    curve = curve or Curve()
    rng = np.random.default_rng(seed)
    y = torch.from_numpy(rng.uniform(0.0, 1.0, size=(n, 1)))
    x = curve.h(y) + torch.from_numpy(rng.uniform(-curve.half_width, curve.half_width, size=(n, 1)))
    return x.float(), y.float()


def exact_nll(x: torch.Tensor, curve: Curve | None = None) -> torch.Tensor:
    """-log p(y | x) of the exact conditional at x [B, 1] (the same for every y it allows): the log of the
    length of {y in [0, 1] : |x - h(y)| <= w}, measured on a fine grid of y. Returns [B]."""
    curve = curve or Curve()
    levels = curve.h((torch.arange(20000, dtype=torch.float64) + 0.5) / 20000).sort().values
    x = x.double().flatten().contiguous()
    count = (torch.searchsorted(levels, x + curve.half_width, right=True)
             - torch.searchsorted(levels, x - curve.half_width, right=False))
    return (count.clamp(min=1).double() / len(levels)).log()  # at least one step: never -inf


@dataclass(frozen=True)
class Arm:
    """A two-link arm with links l1, l2, whose joints really stand at theta + d(theta) for readings theta:
    d_1 = a1 sin(f1 theta_2 + p1), d_2 = a2 sin(f2 theta_1 + p2), one (a, f, p) per entry of `bends`."""

    l1: float = 1.0
    l2: float = 0.7
    bends: tuple[tuple[float, float, float], ...] = ((0.0, 1.0, 0.0), (0.0, 1.0, 0.0))

    @classmethod
    def random(cls, seed: int) -> Arm:
        """One arm from the grader's family: l1 in [0.8, 1.1], l2 in [0.5, 0.9], reading errors of amplitude
        0.08-0.15 rad, frequencies 1-2.5, any phases."""
        rng = np.random.default_rng(seed)
        bends = tuple((float(rng.uniform(0.08, 0.15)), float(rng.uniform(1.0, 2.5)), float(rng.uniform(0, 2 * math.pi)))
                      for _ in range(2))
        return cls(float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.5, 0.9)), bends)

    def hand_position(self, theta: torch.Tensor) -> torch.Tensor:
        """Where the hand is for joint readings theta [..., 2]: [..., 2]."""
        (a1, f1, p1), (a2, f2, p2) = self.bends
        shoulder = theta[..., 0] + a1 * torch.sin(f1 * theta[..., 1] + p1)
        elbow = shoulder + theta[..., 1] + a2 * torch.sin(f2 * theta[..., 0] + p2)
        return torch.stack([self.l1 * torch.cos(shoulder) + self.l2 * torch.cos(elbow),
                            self.l1 * torch.sin(shoulder) + self.l2 * torch.sin(elbow)], dim=-1)


def hand_position(theta: torch.Tensor, l1: float = 1.0, l2: float = 0.7) -> torch.Tensor:
    """Forward kinematics of an arm with exact readings: joint angles [..., 2] -> hand position [..., 2]."""
    return Arm(l1, l2).hand_position(theta)


def make_arm_data(n: int, seed: int = 0, arm: Arm | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The A tier's data: readings theta uniform on [-pi/2, pi/2] x [-2.6, 2.6], hand x = arm.hand_position(theta)
    + N(0, 0.03^2 I). Returns x, theta as float32 [n, 2]."""
    arm = arm or Arm()
    rng = np.random.default_rng(seed)
    theta = torch.from_numpy(np.stack([rng.uniform(-np.pi / 2, np.pi / 2, n), rng.uniform(-2.6, 2.6, n)], axis=1))
    x = arm.hand_position(theta) + 0.03 * torch.from_numpy(rng.normal(size=(n, 2)))
    return x.float(), theta.float()
