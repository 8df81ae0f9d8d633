"""The data of this part, for your own experiments. The grader draws fresh data from the same
distribution with a seed you don't know, so there is nothing to gain by memorising a sample."""

from __future__ import annotations

import numpy as np
import torch


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bishop's inverse problem: y ~ U(0,1), x = y + 0.3 sin(2 pi y) + U(-0.1, 0.1). Returns x, y as [n,1]."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.0, 1.0, size=(n, 1))
    x = y + 0.3 * np.sin(2 * np.pi * y) + rng.uniform(-0.1, 0.1, size=(n, 1))
    return torch.from_numpy(x).float(), torch.from_numpy(y).float()


def hand_position(theta: torch.Tensor, l1: float = 1.0, l2: float = 0.7) -> torch.Tensor:
    """Forward kinematics of the two-link arm: joint angles [..., 2] -> hand position [..., 2]."""
    shoulder, elbow = theta[..., 0], theta[..., 0] + theta[..., 1]
    return torch.stack([l1 * torch.cos(shoulder) + l2 * torch.cos(elbow),
                        l1 * torch.sin(shoulder) + l2 * torch.sin(elbow)], dim=-1)


def make_arm_data(n: int, seed: int = 0, l1: float = 1.0, l2: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """The A tier's data: theta uniform on [-pi/2, pi/2] x [-2.6, 2.6], x = hand_position(theta) + N(0, 0.03^2).
    Returns x, theta as float32 [n, 2]. The grader draws its own link lengths (0.8-1.1 and 0.5-0.9)."""
    rng = np.random.default_rng(seed)
    theta = torch.from_numpy(np.stack([rng.uniform(-np.pi / 2, np.pi / 2, n), rng.uniform(-2.6, 2.6, n)], axis=1))
    x = hand_position(theta, l1, l2) + 0.03 * torch.from_numpy(rng.normal(size=(n, 2)))
    return x.float(), theta.float()
