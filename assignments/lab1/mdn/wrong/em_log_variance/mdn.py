"""Known-wrong (em_log_variance): em_step returns log(variance) where log(sigma) is meant; A tier not attempted.

Reference solution otherwise: a mixture density network for p(y | x) (Bishop 1994)."""

from __future__ import annotations

import math
import time

import torch
from torch import nn


class MixtureDensityNetwork(nn.Module):
    """x [B,1] -> (log_pi, mu, log_sigma), each [B,K]."""

    def __init__(self, n_components: int = 10, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 3 * n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, log_sigma = self.head(self.body(x)).chunk(3, dim=-1)  # each [B,K]
        return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-7.0, 3.0)


def gaussian_nll(mu, log_sigma, y):
    """-log N(y; mu, sigma) per row: [B,1] x3 -> [B]. A regression net with a noise head minimises this."""
    z = (y - mu) / log_sigma.exp()
    return (0.5 * z**2 + log_sigma + 0.5 * math.log(2 * math.pi)).sum(-1)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    """log sum_k pi_k N(y; mu_k, sigma_k), per row: [B,K] x3, [B,1] -> [B]."""
    return torch.logsumexp(log_pi + _log_normal(y, mu, log_sigma), dim=-1)


def em_step(x, log_pi, mu, log_sigma):
    """One EM iteration for a 1-D Gaussian mixture: x [N,1], parameters [K] each -> new parameters [K] each.
    E step: responsibilities r[n,k] = p(component k | x_n). M step: the weighted maximum-likelihood fit."""
    log_r = torch.log_softmax(log_pi + _log_normal(x, mu, log_sigma), dim=-1)   # [N,K]
    r = log_r.exp()
    counts = r.sum(0)                                                           # [K]
    new_mu = (r * x).sum(0) / counts
    variance = (r * (x - new_mu) ** 2).sum(0) / counts
    return (counts / x.shape[0]).log(), new_mu, variance.log()  # BUG (known-wrong): log variance, not log sigma


def _log_normal(y, mu, log_sigma):
    """log N(y; mu, sigma) broadcast over components: [B,1] against [K] or [B,K] -> [B,K]."""
    z = (y - mu) / log_sigma.exp()
    return -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)


def fit(x, y, *, seed: int, max_seconds: float) -> MixtureDensityNetwork:
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a model this small trains fastest on one thread (no sync overhead)
    started, budget = time.monotonic(), 0.8 * max_seconds
    model = MixtureDensityNetwork()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps, lr_max, lr_min = 6000, 3e-3, 2e-4
    for step in range(steps):
        # Cosine decay against whichever runs out first, steps or time: a run cut short by a slow
        # machine still ends at a small learning rate instead of mid-flight.
        progress = max(step / steps, (time.monotonic() - started) / budget)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))
        idx = torch.randint(0, x.shape[0], (512,))
        loss = -mixture_log_prob(*model(x[idx]), y[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"trained {step + 1} steps, last batch NLL {loss.item():.3f}")
    return model.eval()


# ---- A tier: not attempted ----

def fit_arm(x, theta, *, seed: int, max_seconds: float):
    raise NotImplementedError("fit_arm")
