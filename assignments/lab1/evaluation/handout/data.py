"""Sample sets like the grader's, for your own experiments (needs scikit-learn locally:
`pip install scikit-learn`; your submission itself may not import it).

The digits are public, so the grader never sends them as they are: every image is drawn afresh in a style
drawn from the run's secret seed (`DigitStyle` below: a smooth displacement shared by the run, the run's
ink curve, per image a small random rotation/scale/shear/shift, and a little sensor noise, folded back
into [0, 1]). `DigitSplit` does exactly what the grader does, with your seed instead of its secret one:
it splits scikit-learn's 8x8 digits (pixels / 16) into a training set (800), a held-out reference (350)
and a pool of other real images, and makes 200-image sample sets of four kinds:
    good          pool images, drawn afresh
    mode_dropped  pool images of only 3-5 of the 10 classes, drawn afresh
    blurred       pool images, blurred with a Gaussian of sigma 0.5-0.8 pixels before their noise
    memorised     training images drawn again: the same shape, fresh noise
Every kind goes through the same drawing and the same noise, so only the property it is named for tells
it apart. (The grader's copy of DigitStyle is grader/checklib/digit_styles.py; a test keeps them equal.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

N_TRAIN, N_REFERENCE, N_SET = 800, 350, 200
KINDS = ("good", "mode_dropped", "blurred", "memorised")
NOISE = (0.01, 0.02)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1 797 public images [1797, 64] with pixels in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 16.0, digits.target


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
        self.rng = rng = np.random.default_rng(seed)
        self.x, self.y = load_digits_images()
        self.style = DigitStyle.draw(rng, noise=NOISE)
        perm = rng.permutation(len(self.x))
        self.train_idx = perm[:N_TRAIN]
        self.reference_idx = perm[N_TRAIN:N_TRAIN + N_REFERENCE]
        self.pool_idx = perm[N_TRAIN + N_REFERENCE:]
        self.train_shapes = self.style.shape(self.x[self.train_idx], rng)
        self.train = _tensor(self.style.finish(self.train_shapes, rng))
        self.reference = _tensor(self.style.render(self.x[self.reference_idx], rng))

    def _pool(self, classes=None) -> np.ndarray:
        pool = self.pool_idx if classes is None else self.pool_idx[np.isin(self.y[self.pool_idx], classes)]
        return self.x[self.rng.choice(pool, N_SET, replace=len(pool) < N_SET)]

    def make_sample_set(self, kind: str) -> torch.Tensor:
        rng, style = self.rng, self.style
        if kind == "good":
            images = style.render(self._pool(), rng)
        elif kind == "mode_dropped":
            keep = np.sort(rng.permutation(10)[:int(rng.integers(3, 6))])
            images = style.render(self._pool(keep), rng)
        elif kind == "blurred":
            sigma = float(rng.uniform(0.5, 0.8))
            images = style.finish(gaussian_blur(style.shape(self._pool(), rng), sigma), rng)
        elif kind == "memorised":
            images = style.finish(self.train_shapes[rng.choice(N_TRAIN, N_SET, replace=False)], rng)
        else:
            raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
        return _tensor(images)


def _tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images, dtype=np.float32))


def train_feature_classifier(seed: int = 0, epochs: int = 40):
    """Your own small feature extractor, for local experiments with FD & co. in a feature space
    (the grader uses a different, staff one). Returns a function images [B, 64] -> features [B, 32]."""
    from torch import nn

    torch.manual_seed(seed)
    x, y = load_digits_images()
    x, y = torch.from_numpy(x).float(), torch.from_numpy(y)
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


# ---------------------------------------------------------------- the grader's way of drawing digits

SIDE = 8
CENTRE = (SIDE - 1) / 2


@dataclass(frozen=True)
class DigitStyle:
    """One run's secret way of drawing digits (see the module's docstring)."""

    waves: np.ndarray  # [K, 5]: frequency (row, column) in cycles per image, phase, amplitude (row, column)
    gamma: float  # the ink curve's exponent
    gain: float  # the ink curve's contrast
    jitter: float  # the scale of the per-image affine jitter
    noise: float  # the standard deviation of the per-image sensor noise

    @classmethod
    def draw(cls, rng: np.random.Generator, *, noise: tuple[float, float] = (0.015, 0.03)) -> DigitStyle:
        """A style from the run's secret generator."""
        k = 3
        freq = rng.uniform(-1.2, 1.2, size=(k, 2))
        phase = rng.uniform(0, 2 * np.pi, size=(k, 1))
        amplitude = rng.uniform(-0.35, 0.35, size=(k, 2))
        return cls(np.concatenate([freq, phase, amplitude], axis=1), gamma=float(np.exp(rng.uniform(-0.3, 0.3))),
                   gain=float(rng.uniform(0.85, 1.0)), jitter=float(rng.uniform(0.6, 1.0)),
                   noise=float(rng.uniform(*noise)))

    def field(self) -> np.ndarray:
        """The run's displacement [2, 64] (rows, columns) in pixels, at every output pixel."""
        r, c = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
        r, c = r.ravel() / SIDE, c.ravel() / SIDE
        out = np.zeros((2, SIDE * SIDE))
        for fr, fc, phase, ar, ac in self.waves:
            wave = np.sin(2 * np.pi * (fr * r + fc * c) + phase)
            out[0] += ar * wave
            out[1] += ac * wave
        return out

    def shape(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each image [B, 64] (pixels in [0, 1]) redrawn with the run's field and ink and its own jitter."""
        images = np.asarray(images, dtype=np.float64).reshape(-1, SIDE, SIDE)
        n = len(images)
        angle = rng.uniform(-0.14, 0.14, n) * self.jitter
        scale = np.exp(rng.uniform(-0.08, 0.08, n) * self.jitter)
        shear = rng.uniform(-0.1, 0.1, n) * self.jitter
        shift = rng.uniform(-0.45, 0.45, (n, 2)) * self.jitter
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        r, c = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
        r, c = r.ravel() - CENTRE, c.ravel() - CENTRE  # output pixel positions around the centre
        src_r = cos[:, None] * r - sin[:, None] * c + CENTRE + shift[:, :1]
        src_c = sin[:, None] * r + cos[:, None] * c + shear[:, None] * r + CENTRE + shift[:, 1:]
        field = self.field()
        drawn = bilinear(images, src_r + field[0], src_c + field[1])
        return self.gain * drawn ** self.gamma

    def finish(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Drawn images with their sensor noise, reflected back into [0, 1]."""
        noisy = np.asarray(images, dtype=np.float64) + rng.normal(0.0, self.noise, np.shape(images))
        return reflect_unit(noisy)

    def render(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`shape`, then `finish`: what every image a part sends has been through."""
        return self.finish(self.shape(images, rng), rng)


def bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """images [B, 8, 8] sampled at (rows, cols) [B, 64] with bilinear weights; outside the image is 0."""
    n = len(images)
    padded = np.zeros((n, SIDE + 2, SIDE + 2))
    padded[:, 1:-1, 1:-1] = images
    rows = np.clip(rows + 1, 0, SIDE + 1 - 1e-9)  # positions in the padded image, the border is 0
    cols = np.clip(cols + 1, 0, SIDE + 1 - 1e-9)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, SIDE + 1), np.minimum(c0 + 1, SIDE + 1)
    wr, wc = rows - r0, cols - c0
    b = np.arange(n)[:, None]
    top = (1 - wc) * padded[b, r0, c0] + wc * padded[b, r0, c1]
    bottom = (1 - wc) * padded[b, r1, c0] + wc * padded[b, r1, c1]
    return (1 - wr) * top + wr * bottom


def reflect_unit(values: np.ndarray) -> np.ndarray:
    """Fold values back into [0, 1] at both ends (|x| below 0, 2 - x above 1)."""
    folded = np.abs(values)
    return np.where(folded > 1, np.abs(2 - folded), folded).clip(0.0, 1.0)
