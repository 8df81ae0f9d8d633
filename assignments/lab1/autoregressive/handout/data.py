"""The data of this part, for your own experiments, and the grader's way of scoring a model.

The grader draws fresh sequences from the same source with a seed you don't know, so there is nothing
to gain by memorising a sample.

C tier: binary 8x8 digit images. The grader never scores you on the public digits: a held-out split of
a public set is not secret (the public set minus your training rows *is* the held-out set). Every image
of a grading run is drawn afresh from a secret source of digit-like images whose exact density the
grader knows (a different source every run), and your NLL is reported as its *excess* over that source's
own NLL on the same images. `practice_source(seed)` builds a source of the same kind from the public
digits (a mixture of independent-pixel components, so its exact log p(x) is known too): draw training and
held-out images from it and compare `digits_excess(logits, x, source)` with the C threshold. It is not
the grader's source, and it is harder for MADE (its 1024 components are separate digits; the grader's lie
on smooth regions of a staff model's latent space): the reference scores about 5 nats above it, about 1
above the grader's. `digits_split(seed)` still gives a random split of the public digits for quick
experiments. These functions need scikit-learn on your machine (pip install scikit-learn); the grader's
sandbox does not have it, so autoregressive.py and made.py must not import this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.functional import logsigmoid

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
N_DIGITS_TRAIN = 2000      # the number of images the grader's fit_digits() call gets


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


@dataclass(frozen=True)
class MixtureSource:
    """A uniform mixture of independent-pixel Bernoulli components, logits [M, 64]: exact density."""

    logits: torch.Tensor

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n images float32 [n, 64] in {0, 1}: a component uniformly, then every pixel independently."""
        gen = torch.Generator().manual_seed(seed)
        component = torch.randint(0, len(self.logits), (n,), generator=gen)
        return torch.bernoulli(torch.sigmoid(self.logits[component]), generator=gen).float()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) [n] in nats, float64."""
        ones, zeros = logsigmoid(self.logits), logsigmoid(-self.logits)
        per_component = x.double() @ (ones - zeros).T + zeros.sum(-1)
        return torch.logsumexp(per_component, dim=1) - math.log(len(self.logits))


def practice_source(seed: int = 0, components: int = 1024) -> MixtureSource:
    """A digit-like source of the grader's kind, built from the public grey-level digits: each component is
    one random digit's ink, sharpened by a factor drawn from the seed. The grader's own source is secret and
    per run: it is made the same way from a staff model's latent space, so its digits, styles and sharpness
    differ."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    grey = torch.from_numpy(load_digits().data / 16.0)
    chosen = grey[torch.from_numpy(rng.choice(len(grey), components, replace=False))]
    return MixtureSource((chosen - 0.5) * float(rng.uniform(12.0, 16.0)))


def digits_excess(logits: torch.Tensor, x: torch.Tensor, source: MixtureSource) -> float:
    """What the grader's digits NLL check compares with its threshold: your -log p(x) (`digits_nll`) minus
    the source's exact -log p(x) of the same images, in nats per image. 0 is the best any model can do on
    average on images it has not seen; clearly below 0 is not a likelihood."""
    return digits_nll(logits, x) + float(source.log_prob(x).mean())


def digits_nll(logits: torch.Tensor, x: torch.Tensor) -> float:
    """What the grader reports, in nats per image: -log p(x) = sum over the 64 pixels of
    softplus(l) - x * l (the binary cross-entropy of the logits l), averaged over the images."""
    logits, x = logits.double(), x.double()
    return float((torch.nn.functional.softplus(logits) - x * logits).sum(-1).mean())


def independent_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    """The grader's baseline: one Bernoulli per pixel, fitted on `train` (the fraction of 1s, smoothed),
    scored on `test` (see `dependence_captured`)."""
    p = (train.double().sum(0) + 1) / (train.shape[0] + 2)
    return digits_nll((torch.log(p) - torch.log1p(-p)).expand(test.shape[0], -1), test)


def dependence_captured(logits: torch.Tensor, train: torch.Tensor, test: torch.Tensor, source: MixtureSource) -> float:
    """What the grader's check "better than independent pixels" compares with its threshold (at least 0.5): the
    share of the independent baseline's excess over the source (`independent_nll` minus the source's exact NLL)
    that your model removes. 0 for independent pixels, 1 for the source itself."""
    source_nll = -float(source.log_prob(test).mean())
    baseline = independent_nll(train, test)
    return (baseline - digits_nll(logits, test)) / (baseline - source_nll)


def nats_to_bits_per_pixel(nats_per_image: float, pixels: int = 64) -> float:
    """17.3 nats per image = 17.3 / (64 ln 2) = 0.39 bits per pixel."""
    return nats_per_image / (pixels * math.log(2))
