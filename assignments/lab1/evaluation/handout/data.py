"""Sample sets like the grader's, for your own experiments (needs scikit-learn locally:
`pip install scikit-learn`; your submission itself may not import it).

The grader splits scikit-learn's 8x8 digits (pixels / 16) with a secret seed into a training set
(800), a held-out reference (350) and a pool of other real images, and builds 200-image sample sets
of four kinds from them, exactly as `make_sample_set` does here:
    good          held-out real images from the pool
    mode_dropped  pool images of only 4-5 of the 10 classes
    blurred       pool images blurred with a Gaussian of sigma 0.5-0.8 pixels
    memorised     training images + N(0, 0.02^2) noise, clipped to [0, 1]
"""

from __future__ import annotations

import numpy as np
import torch

N_TRAIN, N_REFERENCE, N_SET = 800, 350, 200
KINDS = ("good", "mode_dropped", "blurred", "memorised")


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1 797 images [1797, 64] with pixels in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of 8x8 images [B, 64] with zero padding."""
    radius = 3
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    im = np.pad(images.reshape(-1, 8, 8), ((0, 0), (radius, radius), (radius, radius)))
    rows = sum(kernel[i] * im[:, i:i + 8, :] for i in range(2 * radius + 1))
    return sum(kernel[i] * rows[:, :, i:i + 8] for i in range(2 * radius + 1)).reshape(-1, 64)


class DigitSplit:
    """A split like the grader's: train, reference (held-out real) and a pool for the sample sets."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.x, self.y = load_digits_images()
        perm = self.rng.permutation(len(self.x))
        self.train_idx = perm[:N_TRAIN]
        self.reference_idx = perm[N_TRAIN:N_TRAIN + N_REFERENCE]
        self.pool_idx = perm[N_TRAIN + N_REFERENCE:]
        self.train = torch.from_numpy(self.x[self.train_idx])
        self.reference = torch.from_numpy(self.x[self.reference_idx])

    def make_sample_set(self, kind: str) -> torch.Tensor:
        rng, pool = self.rng, self.pool_idx
        if kind == "good":
            images = self.x[rng.choice(pool, N_SET, replace=False)]
        elif kind == "mode_dropped":
            keep = rng.permutation(10)[:int(rng.integers(4, 6))]
            images = self.x[rng.choice(pool[np.isin(self.y[pool], keep)], N_SET, replace=False)]
        elif kind == "blurred":
            images = gaussian_blur(self.x[rng.choice(pool, N_SET, replace=False)], rng.uniform(0.5, 0.8))
        elif kind == "memorised":
            copies = self.x[rng.choice(self.train_idx, N_SET, replace=False)]
            images = np.clip(copies + rng.normal(0.0, 0.02, copies.shape), 0.0, 1.0)
        else:
            raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
        return torch.from_numpy(np.asarray(images, dtype=np.float32))


def train_feature_classifier(seed: int = 0, epochs: int = 40):
    """Your own small feature extractor, for local experiments with FD & co. in a feature space
    (the grader uses a different, staff one). Returns a function images [B, 64] -> features [B, 32]."""
    from torch import nn

    torch.manual_seed(seed)
    x, y = load_digits_images()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    body = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
    head = nn.Sequential(nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            loss = nn.functional.cross_entropy(head(body(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    def features(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return body(images.float())

    return features
