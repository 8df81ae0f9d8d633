"""scikit-learn's bundled 8x8 digits (1797 images, labels 0-9), the data of four parts: binarised for the
likelihood parts (autoregressive C, VAE), scaled to [0, 1] for the evaluation and hybrid parts.

The images ship inside scikit-learn (nothing is downloaded at run time) and are read straight from its
bundled file: importing sklearn itself costs seconds per run. The whole set is public, so which images a
student trains on and which are held out is decided per run by the secret seed (`secret_split`).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from torch.nn.functional import softplus

PIXELS = 64  # 8x8, raster order: pixel d = 8 * row + column
N_DIGITS = 1797


@functools.cache
def _bundled() -> np.ndarray:
    """The bundled file as [1797, 65]: 64 pixel values 0..16, then the label."""
    spec = importlib.util.find_spec("sklearn")
    bundled = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if bundled is not None and bundled.exists():
        table = np.loadtxt(bundled, delimiter=",")
    else:  # pragma: no cover - a differently packaged scikit-learn
        from sklearn.datasets import load_digits

        digits = load_digits()
        table = np.concatenate([digits.data, digits.target[:, None]], axis=1)
    if table.shape != (N_DIGITS, PIXELS + 1):
        raise RuntimeError(f"scikit-learn's digits have shape {table.shape}, expected ({N_DIGITS}, {PIXELS + 1})")
    table.setflags(write=False)
    return table


def binary_digits() -> torch.Tensor:
    """All digits as float64 [1797, 64] in {0, 1}: 1 where the pixel value is at least 8 of 16."""
    return torch.from_numpy((_bundled()[:, :PIXELS] >= 8).astype(np.float64))


def scaled_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images float64 [1797, 64] = pixel value / 16, in [0, 1] and exact in float32; labels int64 [1797])."""
    table = _bundled()
    return table[:, :PIXELS] / 16.0, table[:, PIXELS].astype(np.int64)


def secret_split(rng: np.random.Generator, n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary digits (train [1797 - n_test, 64], held-out [n_test, 64]), split by a permutation from `rng`."""
    x = binary_digits()
    order = torch.from_numpy(rng.permutation(x.shape[0]))
    return x[order[n_test:]], x[order[:n_test]]


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) per image in nats, summed over the last axis: softplus(l) - x l, stable for any
    logit (the grader's own formula: a student's sigmoid or log never enters it)."""
    return (softplus(logits) - x * logits).sum(-1)


def show_mosaic(ax: Axes, images: np.ndarray | torch.Tensor, cols: int, title: str = "") -> None:
    """Draw images [n, 64] (values in [0, 1]) on one axes as a grid of `cols` columns, one pixel apart."""
    images = np.asarray(images, dtype=np.float64)
    rows = max(1, -(-len(images) // cols))
    mosaic = np.full((rows * 9 - 1, cols * 9 - 1), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        mosaic[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = image.reshape(8, 8)
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=8, loc="left")
    ax.axis("off")
