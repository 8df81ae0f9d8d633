"""LAB1 part 2, C tier: MADE (Germain et al. 2015), an autoregressive model of binary 8x8 digits.

An image is a sequence of 64 pixels in raster order (d = 8 * row + column), each 0 or 1, and
p(x) = prod_d p(x_d | x_0..x_{d-1}). MADE computes all 64 Bernoulli logits in ONE pass of an MLP
whose weights are multiplied by fixed 0/1 masks, so that logit d depends on pixels 0..d-1 only
(README: "Masks and degrees"). The grader imports autoregressive.py, which imports fit_digits from
here, and calls:
    model = fit_digits(x, seed=..., max_seconds=...)   # x: float32 tensor [N, 64] of 0/1
    model.logits(x)                                     # float32 [B, 64] -> float32 [B, 64] Bernoulli logits
    model.sample(n, seed=...)                           # -> float32 [n, 64] of 0/1
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 64     # D: an 8x8 image, raster order


class MaskedLinear(nn.Linear):
    """A linear layer whose weight [out, in] is multiplied by a fixed 0/1 mask: a 0 cuts that connection."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.float())                   # [out, in]: saved with the model, not trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The mask is applied at every call, so training can never grow a connection the mask cuts.
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    def __init__(self, pixels: int = PIXELS, hidden: int = 512):
        super().__init__()
        # Every setting build_digits_model needs to make this network again; add yours if you add arguments.
        self.config = {"pixels": pixels, "hidden": hidden}
        # TODO: give pixel i the degree i (0..63) and hidden unit k a degree m_k in 0..62 (e.g. k % 63), then
        #       self.inp    = MaskedLinear(pixels, hidden, mask [H, D]: hidden k sees pixel i iff m_k >= i)
        #       self.out    = MaskedLinear(hidden, pixels, mask [D, H]: logit d sees hidden k iff d > m_k)
        #       self.direct = MaskedLinear(pixels, pixels, mask [D, D]: logit d sees pixel i iff d > i)
        #       Broadcasting builds a mask in one line: degree_hidden[:, None] >= degree_in[None, :].
        raise NotImplementedError("MADE.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,D] in {0,1} -> logits [B,D]: logit d scores x_d = 1 given x_0..x_{d-1} only."""
        # TODO: self.out(relu(self.inp(x))) + self.direct(x)
        raise NotImplementedError("MADE.forward")

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [B,64] -> float32 [B,64] Bernoulli logits (NOT probabilities: the grader applies the sigmoid)."""
        return self.forward(x.float()).float()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """n images float32 [n,64] in {0,1} by ancestral sampling, pixel 0 first."""
        gen = torch.Generator().manual_seed(int(seed))  # noqa: F841  (the same seed must give the same images)
        # TODO: start from x = zeros [n, 64]; for d = 0..63: p = sigmoid(forward(x)[:, d]) (it depends on the
        #       pixels already drawn only), x[:, d] = torch.bernoulli(p, generator=gen). Return x.
        raise NotImplementedError("MADE.sample")


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) per image, in nats: the sum over the 64 pixels of the binary cross-entropy of the logits."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def build_digits_model(config: dict) -> MADE:
    """How the grader rebuilds your trained model in a fresh process: build_digits_model(digits_model.config), then
    load_state_dict(digits_model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return MADE(**config)


def fit_digits(x: torch.Tensor, *, seed: int, max_seconds: float) -> MADE:
    """Maximum likelihood on binary images x float32 [N,64]; return the model in eval mode before max_seconds."""
    torch.manual_seed(seed)
    # TODO: create MADE() and Adam (lr around 5e-3); loop over random mini-batches xb of 256 images:
    #       loss = bernoulli_nll(model(xb), xb).mean(); a few hundred steps with a decaying learning rate
    #       are enough. Stop before max_seconds (time.monotonic()).
    raise NotImplementedError("fit_digits")
