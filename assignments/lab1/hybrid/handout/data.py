"""The data of this part, for your own experiments: scikit-learn's 8x8 digits, pixels / 16 in [0, 1].

Needs scikit-learn on your own machine (pip install scikit-learn); the grader's sandbox has only torch and
numpy, and the grader passes the data to fit() itself.

The digits are public, so the grader never sends them as they are: every image of a run is drawn afresh in
a style drawn from the run's secret seed (`DigitStyle` below: a smooth displacement shared by the run, the
run's ink curve, per image a small random rotation/scale/shear/shift, and a little sensor noise, folded back
into [0, 1]), then split secretly into 900 digits for fit() and 897 the grader keeps. `load_digits_split`
does the same with your seed, so that you train on the kind of data the grader sends. (The grader's copy
of DigitStyle is grader/checklib/digit_styles.py; a test keeps them equal.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NOISE = (0.01, 0.02)


def load_digits_split(n_train: int = 900, seed: int = 0, styled: bool = True):
    """(x_train [n, 64] float32, y_train [n] int64, x_test, y_test): the 1797 digits, drawn in a random style
    (as the grader draws them; styled=False for the public images), randomly split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    images = digits.data / 16.0
    if styled:
        images = DigitStyle.draw(rng, noise=NOISE).render(images, rng)
    x = torch.from_numpy(images.astype(np.float32))
    y = torch.from_numpy(digits.target.astype(np.int64))
    perm = torch.from_numpy(rng.permutation(len(x)))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


def nearest_centroid_accuracy(samples: torch.Tensor, labels: torch.Tensor, x_train: torch.Tensor,
                              y_train: torch.Tensor) -> float:
    """A crude stand-in for the grader's staff CNN: classify each sample by the nearest class-mean image
    (about 90 % accurate on real digits). Good enough to see whether your labels are used."""
    means = torch.stack([x_train[y_train == c].mean(0) for c in range(10)])
    return float((torch.cdist(samples.float(), means).argmin(1) == labels).float().mean())


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
