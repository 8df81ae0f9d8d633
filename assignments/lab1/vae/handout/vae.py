"""LAB1 part 4: a variational autoencoder (VAE) for binarised 8x8 digits.

Fill in the TODOs. The grader imports this file (only torch, numpy and the standard library exist in
its sandbox) and calls:
    kl_normal(mu, log_var)                         # [B,D], [B,D] -> [B]
    reparameterise(mu, log_var, eps)               # [B,D] x3 -> [B,D]
    bernoulli_nll(logits, x)                       # [B,64], [B,64] -> [B]
    model = fit(x, seed=..., max_seconds=...)      # x: float32 [N,64] of 0s and 1s
    mu, log_var = model.encode(x)                  # [B,64] -> [B,D], [B,D]
    logits = model.decode(z)                       # [B,D] -> [B,64]  Bernoulli LOGITS, not probabilities
    images = model.sample(n, seed=...)             # -> [n,64] of 0s and 1s
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
from torch import nn

PIXELS = 64


def kl_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(log_var))) || N(0, I)) per row, summed over the latent dimensions: [B,D] x2 -> [B].

    In closed form, per dimension: 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), with sigma^2 = exp(log_var).
    """
    # TODO
    raise NotImplementedError("kl_normal")


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(log_var / 2): a sample of q(z|x) through which gradients
    flow to mu and log_var. Use the eps you are given (the grader checks the result)."""
    # TODO
    raise NotImplementedError("reparameterise")


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) per row, summed over the 64 pixels, in nats: [B,64] x2 -> [B].

    p(x_i = 1) = sigmoid(logits_i). Work from the logits directly (sigmoid rounds to exactly 0 or 1 for
    large |logits|, and log(0) is -inf): see torch.nn.functional.binary_cross_entropy_with_logits.
    Check: all logits 0 must give 64 ln 2 = 44.36 nats for any x.
    """
    # TODO
    raise NotImplementedError("bernoulli_nll")


class VAE(nn.Module):
    """Encoder q(z|x) = N(mu(x), diag(exp(log_var(x)))), prior p(z) = N(0, I), decoder p(x|z) = Bernoulli(sigmoid(logits(z)))."""

    def __init__(self, latent: int = 16, hidden: int = 200):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"latent": latent, "hidden": hidden}
        self.latent = latent
        # TODO: an encoder MLP from 64 pixels to 2 * latent outputs (mu and log_var) and a decoder MLP
        #       from latent to 64 outputs (one logit per pixel; no sigmoid at the end).
        raise NotImplementedError("VAE.__init__")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,64] -> (mu [B,D], log_var [B,D]). Deterministic: return the parameters, not a sample."""
        # TODO
        raise NotImplementedError("VAE.encode")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[B,D] -> Bernoulli logits [B,64] (real numbers; the grader applies the sigmoid itself)."""
        # TODO
        raise NotImplementedError("VAE.decode")

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n binary images [n,64]: z ~ N(0, I), x ~ Bernoulli(sigmoid(decode(z))). Same seed, same images:
        create torch.Generator().manual_seed(seed) and pass it to torch.randn and torch.bernoulli."""
        # TODO
        raise NotImplementedError("VAE.sample")


def build_model(config: dict) -> VAE:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return VAE(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> VAE:
    """Train on x (float32 [N,64] of 0s and 1s) by minimising the negative ELBO,
    mean over the batch of bernoulli_nll(decode(z), x) + kl_normal(mu, log_var) with z = reparameterise(...),
    and return the trained model in eval mode. Stop before `max_seconds` (use time.monotonic())."""
    torch.manual_seed(seed)
    # TODO: create the model and an optimiser (Adam), loop over random mini-batches, respect the time
    #       budget, and return model.eval().
    raise NotImplementedError("fit")
