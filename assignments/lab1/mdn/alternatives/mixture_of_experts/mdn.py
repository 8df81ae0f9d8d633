"""Honest alternative: a mixture of experts (Jacobs et al., 1991) instead of one network with a mixture head.

A gating network decides, from x, how much each expert is trusted (log_pi); every expert is its own small
network that maps x to a mean and a scale. The scale comes through a softplus (sigma = softplus(raw) + 1e-3,
log_sigma = log of that) instead of a clamped log. Trained on the mixture NLL with AdamW and a one-cycle
learning rate. Written for the handout's interface without looking at the reference solution.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Expert(nn.Module):
    def __init__(self, hidden: int, start: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        with torch.no_grad():
            self.net[-1].bias.copy_(torch.tensor([start, -2.0]))  # experts start spread over y's range

    def forward(self, x):
        mean, raw = self.net(x).unbind(-1)
        return mean, torch.log(F.softplus(raw) + 1e-3)


class MixtureOfExperts(nn.Module):
    def __init__(self, experts: int = 8, hidden: int = 24, gate_hidden: int = 64):
        super().__init__()
        self.config = {"experts": experts, "hidden": hidden, "gate_hidden": gate_hidden}
        self.gate = nn.Sequential(nn.Linear(1, gate_hidden), nn.Tanh(), nn.Linear(gate_hidden, gate_hidden), nn.Tanh(),
                                  nn.Linear(gate_hidden, experts))
        self.experts = nn.ModuleList(Expert(hidden, (i + 0.5) / experts) for i in range(experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        means, scales = zip(*(expert(x) for expert in self.experts), strict=True)
        return torch.log_softmax(self.gate(x), dim=-1), torch.stack(means, -1), torch.stack(scales, -1)


def build_model(config: dict) -> MixtureOfExperts:
    return MixtureOfExperts(**config)


def gaussian_nll(mu, log_sigma, y):
    return (0.5 * torch.exp(-2 * log_sigma) * (y - mu) ** 2 + log_sigma + LOG_SQRT_2PI).sum(dim=1)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    components = log_pi - 0.5 * torch.exp(-2 * log_sigma) * (y - mu) ** 2 - log_sigma - LOG_SQRT_2PI
    top = components.max(dim=-1, keepdim=True).values
    return (top + torch.log(torch.exp(components - top).sum(dim=-1, keepdim=True))).squeeze(-1)


def em_step(x, log_pi, mu, log_sigma):
    log_joint = log_pi - 0.5 * torch.exp(-2 * log_sigma) * (x - mu) ** 2 - log_sigma
    resp = torch.softmax(log_joint, dim=1)
    total = resp.sum(0)
    mu_new = (resp * x).sum(0) / total
    sigma2 = (resp * (x - mu_new) ** 2).sum(0) / total
    return torch.log(total / x.shape[0]), mu_new, 0.5 * torch.log(sigma2)


def fit(x, y, *, seed: int, max_seconds: float) -> MixtureOfExperts:
    """A one-cycle schedule needs its length up front: time 50 steps, then plan as many as 75 % of the budget
    allows (and stop at 85 % if the machine slows down)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    start = time.monotonic()
    model = MixtureOfExperts()
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-5)

    def step() -> float:
        idx = torch.randint(0, x.shape[0], (384,))
        loss = -mixture_log_prob(*model(x[idx]), y[idx]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return loss.item()

    for group in optimiser.param_groups:
        group["lr"] = 5e-4
    for _ in range(20):  # the first steps pay for torch's warm-up: not timed
        step()
    timed = time.monotonic()
    for _ in range(50):
        step()
    per_step = (time.monotonic() - timed) / 50
    total = max(100, min(8000, int((0.75 * max_seconds - (time.monotonic() - start)) / per_step)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=5e-3, total_steps=total, pct_start=0.15)
    for _ in range(total):
        loss = step()
        schedule.step()
        if time.monotonic() - start > 0.85 * max_seconds:  # a machine that slowed down: stop in time
            break
    print(f"mixture of experts: {total + 70} steps planned, last batch NLL {loss:.3f}")
    return model.eval()


def fit_arm(x, theta, *, seed: int, max_seconds: float):
    raise NotImplementedError("the A tier is not attempted in this solution")


def arm_log_prob(log_pi, mu, log_sigma, theta):
    raise NotImplementedError("the A tier is not attempted in this solution")
