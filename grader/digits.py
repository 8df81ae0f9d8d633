"""The binarised 8x8 digits that two likelihood parts are graded on (autoregressive C, VAE).

The images ship inside scikit-learn (nothing is downloaded at run time). Which of them a student trains on
and which are held out is decided per run by the secret seed, so the held-out images cannot be known in
advance even though the whole set is public; the parts also check that a model does not score its training
images far better than the held-out ones.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import softplus

PIXELS = 64  # 8x8, raster order: pixel d = 8 * row + column


def binary_digits() -> torch.Tensor:
    """All 1797 digits as float64 [1797, 64] in {0, 1}: pixel values 0..16, 1 where >= 8.

    Read straight from scikit-learn's bundled file: importing sklearn itself costs seconds per run."""
    spec = importlib.util.find_spec("sklearn")
    bundled = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if bundled is not None and bundled.exists():
        pixels = np.loadtxt(bundled, delimiter=",")[:, :PIXELS]
    else:  # pragma: no cover - a differently packaged scikit-learn
        from sklearn.datasets import load_digits

        pixels = load_digits().data
    if pixels.shape != (1797, PIXELS):
        raise RuntimeError(f"scikit-learn's digits have shape {pixels.shape}, expected (1797, {PIXELS})")
    return torch.from_numpy((pixels >= 8).astype(np.float64))


def secret_split(rng: np.random.Generator, n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [1797 - n_test, 64], held-out [n_test, 64]), split by a permutation drawn from `rng`."""
    x = binary_digits()
    order = torch.from_numpy(rng.permutation(x.shape[0]))
    return x[order[n_test:]], x[order[:n_test]]


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) per image in nats, summed over the last axis: softplus(l) - x l, stable for any
    logit (the grader's own formula: a student's sigmoid or log never enters it)."""
    return (softplus(logits) - x * logits).sum(-1)
