"""The data of this part, for your own experiments, and the grader's way of scoring a model.

The grader draws fresh sequences from the same source with a seed you don't know, so there is nothing
to gain by memorising a sample.

C tier: the binarised digits. The grader uses scikit-learn's 1797 digits, split with a secret seed that
changes every run: 400 images are held out and your fit_digits() sees the other 1397. `digits_split(seed)`
makes a split of the same kind. Those functions need scikit-learn on your machine (pip install
scikit-learn); the grader's sandbox does not have it, so autoregressive.py and made.py must not import
this file.
"""

from __future__ import annotations

import math

import numpy as np
import torch

V, T, LAG, P_COPY = 16, 64, 8, 0.8
P_SAME = P_COPY + (1 - P_COPY) / V            # 0.8125: probability that x_t = x_{t-8}
P_OTHER = (1 - P_COPY) / V                    # 0.0125: each of the 15 other tokens
H_COPY = -P_SAME * math.log(P_SAME) - (V - 1) * P_OTHER * math.log(P_OTHER)   # 0.9903 nats, t >= 8
ENTROPY = (LAG * math.log(V) + (T - LAG) * H_COPY) / T                       # 1.2131 nats/token


def make_sequences(n: int, seed: int = 0) -> torch.Tensor:
    """n sequences of the copy source, int64 [n, 64]: x_0..x_7 uniform over 16 tokens; for t >= 8,
    x_t = x_{t-8} with probability 0.8, otherwise a fresh uniform token."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, size=(n, T))
    keep = rng.random((n, T)) < P_COPY
    for t in range(LAG, T):
        x[:, t] = np.where(keep[:, t], x[:, t - LAG], x[:, t])
    return torch.from_numpy(x).long()


def true_next_token_probs(tokens: torch.Tensor) -> torch.Tensor:
    """The source's own p(x_t = v | x_0..x_{t-1}) for every row, position and token: float64 [B, 64, 16]."""
    p = torch.full((*tokens.shape, V), 1.0 / V, dtype=torch.float64)
    p[:, LAG:] = P_OTHER + P_COPY * torch.nn.functional.one_hot(tokens[:, :-LAG], V).double()
    return p


def expected_nll(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """What the grader reports, in nats/token: log-softmax of your logits, then -log q averaged over all
    64 positions, in expectation over the true next token at each position (the draw of x_t adds no noise).
    It can never be below ENTROPY for a causal model."""
    return float(nll_per_position(logits, tokens).mean())


def nll_per_position(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The same, per position: float64 [64]. Compare with the floor [ln 16] * 8 + [H_COPY] * 56 to see
    where your model loses (the grader's feedback plots exactly this)."""
    log_q = torch.log_softmax(logits.double(), dim=-1)
    return -(true_next_token_probs(tokens) * log_q).sum(-1).mean(0)


def entropy_per_position() -> torch.Tensor:
    """The floor per position: ln 16 for t < 8, H_COPY after. float64 [64]."""
    return torch.tensor([math.log(V)] * LAG + [H_COPY] * (T - LAG), dtype=torch.float64)


def drawn_nll(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """The plain NLL of the tokens that were drawn (same expectation as expected_nll, a little noisier)."""
    log_q = torch.log_softmax(logits.double(), dim=-1)
    return float(-log_q.gather(-1, tokens[..., None]).mean())


def copy_rate(samples: torch.Tensor) -> float:
    """How often x_t = x_{t-8} for t >= 8; the source does so with probability 0.8125."""
    return float((samples[:, LAG:] == samples[:, :-LAG]).double().mean())


# ---- C tier: binarised digits ----

N_DIGITS_TEST = 400


def load_binary_digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits, binarised at 8 (pixel >= 8 of 16 -> 1): float32 [1797, 64] in {0, 1},
    each row an image in raster order (pixel d = 8 * row + column)."""
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data >= 8).astype(np.float32))


def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [1397, 64], held-out [400, 64]): a random split like the grader's secret one."""
    x = load_binary_digits()
    order = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
    return x[order[N_DIGITS_TEST:]], x[order[:N_DIGITS_TEST]]


def digits_nll(logits: torch.Tensor, x: torch.Tensor) -> float:
    """What the grader reports, in nats per image: -log p(x) = sum over the 64 pixels of
    softplus(l) - x * l (the binary cross-entropy of the logits l), averaged over the images."""
    logits, x = logits.double(), x.double()
    return float((torch.nn.functional.softplus(logits) - x * logits).sum(-1).mean())


def independent_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    """The grader's baseline: one Bernoulli per pixel, fitted on `train` (the fraction of 1s, smoothed),
    scored on `test`. An autoregressive model must be at least 5 nats per image better."""
    p = (train.double().sum(0) + 1) / (train.shape[0] + 2)
    return digits_nll((torch.log(p) - torch.log1p(-p)).expand(test.shape[0], -1), test)


def nats_to_bits_per_pixel(nats_per_image: float, pixels: int = 64) -> float:
    """17.3 nats per image = 17.3 / (64 ln 2) = 0.39 bits per pixel."""
    return nats_per_image / (pixels * math.log(2))
