"""The data of this part and the grader's bounds, for your own experiments.

The grader uses the same 1797 binarised digits, split with a secret seed that changes every run:
400 images are held out and your fit() sees the other 1397. `split(seed)` makes a split of the same
kind, and `bounds(model, x)` computes -ELBO and -IWAE-K from your encode/decode with the grader's
formulas (the grader draws separate z for each bound; here they share the draws). Needs scikit-learn on your machine (pip install scikit-learn); the grader's sandbox
does not have it, so your vae.py must not import this file.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.functional import softplus

N_TEST = 400


def load_binary_digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits, binarised at 8 (pixel >= 8 -> 1): float32 [1797, 64] in {0, 1}."""
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data >= 8).astype(np.float32))


def split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [1397, 64], held-out [400, 64]): a random split like the grader's secret one."""
    x = load_binary_digits()
    order = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
    return x[order[N_TEST:]], x[order[:N_TEST]]


@torch.no_grad()
def bounds(model, x: torch.Tensor, k: int = 500, seed: int = 0, chunk: int = 16384) -> dict[str, float]:
    """The grader's computation, in nats per image (lower is better):
    -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) and -IWAE-k = -log (1/k) sum_j w_j,
    with w_j = p(x|z_j) p(z_j) / q(z_j|x), z_j = mu + exp(log_var / 2) * eps_j drawn here."""
    gen = torch.Generator().manual_seed(seed)
    x = x.double()
    mu, log_var = (t.double() for t in model.encode(x.float()))
    b, d = mu.shape
    std = (0.5 * log_var).exp()
    z = (mu + std * torch.randn(k, b, d, generator=gen, dtype=torch.float64)).float().double()
    flat = z.reshape(k * b, d)
    logits = torch.cat([model.decode(rows.float()).double() for rows in flat.split(chunk)]).reshape(k, b, -1)
    log_px = -(x * softplus(-logits) + (1 - x) * softplus(logits)).sum(-1)          # [k, b]
    log_pz = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * ((z - mu) / std) ** 2 - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_w = log_px + log_pz - log_qz
    kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(-1)
    out = {"-ELBO": float(-(log_px.mean(0) - kl).mean()), "reconstruction": float(-log_px.mean()),
           "KL": float(kl.mean())}
    for kk in (10, 100, k):
        groups = log_w[: (k // kk) * kk].reshape(-1, kk, b)
        out[f"-IWAE-{kk}"] = float(-(torch.logsumexp(groups, dim=1) - math.log(kk)).mean())
    return out


def nats_to_bits_per_dim(nats_per_image: float, dims: int = 64) -> float:
    """17 nats per image = 17 / (64 ln 2) = 0.383 bits per pixel."""
    return nats_per_image / (dims * math.log(2))
