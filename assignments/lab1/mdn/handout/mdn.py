"""LAB1 part 1: a mixture density network for p(y | x).

Fill in the three TODOs. The grader imports this file and calls, in this order:
    model = fit(x, y, seed=..., max_seconds=...)      # x, y: float32 tensors [N, 1]
    log_pi, mu, log_sigma = model.forward(x)          # each [B, K]
    mixture_log_prob(log_pi, mu, log_sigma, y)        # -> [B]
    gaussian_nll(mu, log_sigma, y)                    # -> [B], the regression loss
Run the public tests with:  python -m pytest test_public.py
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
from torch import nn


class MixtureDensityNetwork(nn.Module):
    """Maps x [B,1] to the parameters of a K-component Gaussian mixture over y."""

    def __init__(self, n_components: int = 5, hidden: int = 64):
        super().__init__()
        # TODO: a small MLP from 1 input to 3 * n_components outputs (logits, means, log-scales).
        raise NotImplementedError("MixtureDensityNetwork.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # TODO: return (log_pi, mu, log_sigma), each [B, K].
        # log_pi must be normalised: logsumexp(log_pi, dim=-1) == 0 (use torch.log_softmax).
        raise NotImplementedError("MixtureDensityNetwork.forward")


def gaussian_nll(mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log N(y; mu, sigma^2) per row: [B,1], [B,1], [B,1] -> [B].

    This is what a regression network with a learned noise level minimises; with sigma fixed it is
    squared error plus a constant. Compare it with mixture_log_prob for K = 1.
    """
    # TODO
    raise NotImplementedError("gaussian_nll")


def mixture_log_prob(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
    """log p(y) under the mixture, one value per row: [B,K], [B,K], [B,K], [B,1] -> [B]."""
    # TODO: log N(y; mu_k, sigma_k) for every component, then torch.logsumexp with log_pi.
    raise NotImplementedError("mixture_log_prob")


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> MixtureDensityNetwork:
    """Train on (x, y) by minimising the negative log-likelihood; return the trained model in eval mode.

    Stop before `max_seconds` have passed (use time.monotonic()): the grader measures it.
    """
    torch.manual_seed(seed)
    # TODO: create the model and an optimiser, loop over mini-batches minimising
    #       -mixture_log_prob(*model(x_batch), y_batch).mean(), and respect the time budget.
    raise NotImplementedError("fit")
