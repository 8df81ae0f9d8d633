"""LAB1 part 1: a mixture density network for p(y | x).

Fill in the TODOs. The grader imports this file and calls, in this order:
    model = fit(x, y, seed=..., max_seconds=...)      # x, y: float32 tensors [N, 1]
        (then it keeps model.config and model.state_dict(), ends the training process, and rebuilds the
         model for every scoring round in a fresh process as build_model(model.config) + load_state_dict)
    log_pi, mu, log_sigma = model.forward(x)          # each [B, K]
    mixture_log_prob(log_pi, mu, log_sigma, y)        # -> [B]
    gaussian_nll(mu, log_sigma, y)                    # -> [B], the regression loss
    em_step(x, log_pi, mu, log_sigma)                 # the warm-up: x [N, 1], parameters [K] each
and, for the optional A tier (leave it raising NotImplementedError if you do not attempt it):
    arm_model = fit_arm(x, theta, seed=..., max_seconds=...)   # x, theta: float32 [N, 2]
    log_pi, mu, log_sigma = arm_model.forward(x)              # [B, K], [B, K, 2], [B, K, 2]
    arm_log_prob(log_pi, mu, log_sigma, theta)                # -> [B]
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
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"n_components": n_components, "hidden": hidden}
        # TODO: a small MLP from 1 input to 3 * n_components outputs (logits, means, log-scales).
        raise NotImplementedError("MixtureDensityNetwork.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # TODO: return (log_pi, mu, log_sigma), each [B, K].
        # log_pi must be normalised: logsumexp(log_pi, dim=-1) == 0 (use torch.log_softmax).
        raise NotImplementedError("MixtureDensityNetwork.forward")


def build_model(config: dict) -> MixtureDensityNetwork:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return MixtureDensityNetwork(**config)


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


def em_step(x: torch.Tensor, log_pi: torch.Tensor, mu: torch.Tensor,
            log_sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warm-up: one EM iteration for an unconditional 1-D Gaussian mixture.

    x: [N, 1]; log_pi, mu, log_sigma: [K]. Returns the new (log_pi, mu, log_sigma), each [K].
    E step: responsibilities r[n, k] = pi_k N(x_n; mu_k, sigma_k) / sum_j pi_j N(x_n; mu_j, sigma_j).
    M step: N_k = sum_n r[n, k]; pi_k = N_k / N; mu_k = sum_n r[n, k] x_n / N_k;
            sigma_k^2 = sum_n r[n, k] (x_n - mu_k)^2 / N_k   (with the *new* mu_k).
    """
    # TODO: compute log r with torch.log_softmax (stable), then the M step.
    raise NotImplementedError("em_step")


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> MixtureDensityNetwork:
    """Train on (x, y) by minimising the negative log-likelihood; return the trained model in eval mode.

    Stop before `max_seconds` have passed (use time.monotonic()): the grader measures it.
    """
    torch.manual_seed(seed)
    # TODO: create the model and an optimiser, loop over mini-batches minimising
    #       -mixture_log_prob(*model(x_batch), y_batch).mean(), and respect the time budget.
    raise NotImplementedError("fit")


# ---- A tier (optional): inverse kinematics of a two-link arm ----

class ArmMDN(nn.Module):
    """Maps a hand position x [B,2] to a K-component mixture of diagonal Gaussians over theta [2]."""

    def __init__(self, n_components: int = 10, hidden: int = 128):
        super().__init__()
        self.config = {"n_components": n_components, "hidden": hidden}
        # TODO: an MLP from 2 inputs to 5 * n_components outputs (K logits, K x 2 means, K x 2 log-scales).
        raise NotImplementedError("ArmMDN.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # TODO: return (log_pi [B,K], mu [B,K,2], log_sigma [B,K,2]); log_pi normalised.
        raise NotImplementedError("ArmMDN.forward")


def build_arm_model(config: dict) -> ArmMDN:
    """As build_model, for the arm model."""
    return ArmMDN(**config)


def arm_log_prob(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                 theta: torch.Tensor) -> torch.Tensor:
    """log p(theta) under a mixture of diagonal Gaussians: [B,K], [B,K,2], [B,K,2], [B,2] -> [B]."""
    # TODO: per component, the sum over the 2 coordinates of log N(theta_d; mu_kd, sigma_kd); then logsumexp.
    raise NotImplementedError("arm_log_prob")


def fit_arm(x: torch.Tensor, theta: torch.Tensor, *, seed: int, max_seconds: float) -> ArmMDN:
    """Train an ArmMDN on hand positions x [N,2] and joint angles theta [N,2] (radians); return it in eval mode."""
    torch.manual_seed(seed)
    # TODO: as fit(), with arm_log_prob as the likelihood.
    raise NotImplementedError("fit_arm")
