"""The data of this part, for your own experiments, and the grader's way of scoring a model.

The grader draws fresh sequences from the same source with a seed you don't know, so there is nothing
to gain by memorising a sample.
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
