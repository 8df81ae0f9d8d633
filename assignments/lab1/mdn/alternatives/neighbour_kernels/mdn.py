"""Honest alternative: a non-parametric conditional density, a kernel estimate over nearest neighbours.

For a query x, take the K training points whose x is nearest; each contributes a Gaussian in y at its own
y, weighted by a Gaussian kernel in x (a Nadaraya-Watson estimate of the conditional density). The two
bandwidths are chosen by the likelihood of a held-out fifth of the training data, over a small grid.
The "trained state" is the training data itself (kept in buffers) and the two bandwidths: there is no
gradient descent at all, and fit takes a second. Written for the handout's interface without looking at
the reference solution.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class NeighbourKernels(nn.Module):
    def __init__(self, neighbours: int = 64, n_train: int = 1):
        super().__init__()
        self.config = {"neighbours": neighbours, "n_train": n_train}
        self.register_buffer("x_train", torch.zeros(n_train))
        self.register_buffer("y_train", torch.zeros(n_train))
        self.register_buffer("log_bandwidths", torch.log(torch.tensor([0.02, 0.02])))  # in x, in y

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distance = (x - self.x_train.unsqueeze(0)).abs()                       # [B, N]
        k = min(self.config["neighbours"], self.x_train.shape[0])
        near, idx = distance.topk(k, dim=1, largest=False)
        h_x, h_y = self.log_bandwidths.exp()
        log_w = torch.log_softmax(-0.5 * (near / h_x) ** 2, dim=1)
        return log_w, self.y_train[idx], self.log_bandwidths[1].expand(x.shape[0], k)


def build_model(config: dict) -> NeighbourKernels:
    return NeighbourKernels(**config)


def gaussian_nll(mu, log_sigma, y):
    variance = torch.exp(2 * log_sigma)
    return (0.5 * (y - mu) ** 2 / variance + 0.5 * torch.log(2 * math.pi * variance)).sum(-1)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    variance = torch.exp(2 * log_sigma)
    return torch.logsumexp(log_pi - 0.5 * (y - mu) ** 2 / variance - 0.5 * torch.log(2 * math.pi * variance), dim=-1)


def em_step(x, log_pi, mu, log_sigma):
    log_r = log_pi - 0.5 * ((x - mu) / log_sigma.exp()) ** 2 - log_sigma
    log_r = log_r - torch.logsumexp(log_r, dim=1, keepdim=True)
    r = log_r.exp()
    mass = r.sum(0)
    mean = (r * x).sum(0) / mass
    return torch.log(mass) - math.log(len(x)), mean, 0.5 * torch.log((r * (x - mean) ** 2).sum(0) / mass)


def fit(x, y, *, seed: int, max_seconds: float) -> NeighbourKernels:
    torch.manual_seed(seed)
    order = torch.randperm(len(x))
    held, kept = order[: len(x) // 5], order[len(x) // 5 :]
    trial = NeighbourKernels(n_train=len(kept))
    trial.x_train.copy_(x[kept, 0])
    trial.y_train.copy_(y[kept, 0])
    best, best_score = None, -math.inf
    with torch.no_grad():
        for h_x, h_y in itertools.product([0.004, 0.008, 0.015, 0.03], [0.004, 0.008, 0.012, 0.02, 0.03]):
            trial.log_bandwidths.copy_(torch.log(torch.tensor([h_x, h_y])))
            score = mixture_log_prob(*trial(x[held]), y[held]).mean().item()
            if score > best_score:
                best, best_score = (h_x, h_y), score
    model = NeighbourKernels(n_train=len(x))
    model.x_train.copy_(x[:, 0])
    model.y_train.copy_(y[:, 0])
    model.log_bandwidths.copy_(torch.log(torch.tensor(best)))
    print(f"neighbour kernels: bandwidths {best}, held-out log-likelihood {best_score:.3f}")
    return model.eval()


def fit_arm(x, theta, *, seed: int, max_seconds: float):
    raise NotImplementedError("the A tier is not attempted in this solution")


def arm_log_prob(log_pi, mu, log_sigma, theta):
    raise NotImplementedError("the A tier is not attempted in this solution")
