"""Reference solution: a mixture density network for p(y | x) (Bishop 1994)."""

from __future__ import annotations

import math
import time

import torch
from torch import nn


class MixtureDensityNetwork(nn.Module):
    """x [B,1] -> (log_pi, mu, log_sigma), each [B,K]."""

    def __init__(self, n_components: int = 10, hidden: int = 64):
        super().__init__()
        self.config = {"n_components": n_components, "hidden": hidden}  # all that build_model needs
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 3 * n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, log_sigma = self.head(self.body(x)).chunk(3, dim=-1)  # each [B,K]
        return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-7.0, 3.0)


def build_model(config: dict) -> MixtureDensityNetwork:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return MixtureDensityNetwork(**config)


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
    return (counts / x.shape[0]).log(), new_mu, 0.5 * variance.log()


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
    step, loss = 0, torch.tensor(float("nan"))  # nan if a very slow machine leaves no time for a step
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


# ---- A tier: inverse kinematics of a two-link arm ----
# The hand of a planar arm with joint angles theta = (theta1, theta2) sits at
#     x = l1 (cos theta1, sin theta1) + l2 (cos(theta1 + theta2), sin(theta1 + theta2)).
# Given a hand position x there are two joint configurations (elbow up, elbow down): the same
# inverse problem as above, now with a 2-D input and a 2-D output.

class ArmMDN(nn.Module):
    """x [B,2] -> (log_pi [B,K], mu [B,K,2], log_sigma [B,K,2]): a mixture of diagonal Gaussians over theta."""

    def __init__(self, n_components: int = 10, hidden: int = 128):
        super().__init__()
        self.config = {"n_components": n_components, "hidden": hidden}
        self.k = n_components
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                  nn.Linear(hidden, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 5 * n_components)  # K logits, K x 2 means, K x 2 log-scales

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.head(self.body(x))
        logits = out[:, : self.k]                                   # [B,K]
        mu = out[:, self.k : 3 * self.k].unflatten(1, (self.k, 2))  # [B,K,2]
        log_sigma = out[:, 3 * self.k :].unflatten(1, (self.k, 2))  # [B,K,2]
        return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-7.0, 3.0)


def build_arm_model(config: dict) -> ArmMDN:
    return ArmMDN(**config)


def arm_log_prob(log_pi, mu, log_sigma, theta):
    """log sum_k pi_k N(theta; mu_k, diag sigma_k^2) per row: [B,K], [B,K,2] x2, [B,2] -> [B].
    The two coordinates are independent given the component, so their log-densities add."""
    z = (theta.unsqueeze(1) - mu) / log_sigma.exp()                                   # [B,K,2]
    log_normal = (-0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)     # [B,K]
    return torch.logsumexp(log_pi + log_normal, dim=-1)


def fit_arm(x, theta, *, seed: int, max_seconds: float) -> ArmMDN:
    """Train an ArmMDN on hand positions x [N,2] and joint angles theta [N,2] (radians)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    started, budget = time.monotonic(), 0.8 * max_seconds
    model = ArmMDN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    lr_max, lr_min, step, loss = 3e-3, 2e-4, 0, torch.tensor(float("nan"))
    while (progress := (time.monotonic() - started) / budget) < 1:
        for group in opt.param_groups:  # cosine decay against the clock, as in fit()
            group["lr"] = lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))
        idx = torch.randint(0, x.shape[0], (512,))
        loss = -arm_log_prob(*model(x[idx]), theta[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    print(f"arm: trained {step} steps, last batch NLL {loss.item():.3f}")
    return model.eval()
