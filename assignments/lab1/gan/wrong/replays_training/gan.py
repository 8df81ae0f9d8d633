"""KNOWN WRONG: a "generator" that memorises the training data passed to fit and replays it.

generate(z) is a deterministic function of z that picks a training point by the first coordinate of z
and adds a tiny shift, so it looks like a perfect GAN on every mode metric and passes the z checks: only
the comparison with the distance of fresh data to the training set can tell. The losses are correct.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits):
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits):
    return F.softplus(-fake_logits).mean()


def optimal_discriminator(log_p, log_q):
    return torch.sigmoid(log_p - log_q)


def gradient_penalty(critic, x_real, x_fake, alpha=None, lam=10.0):
    if alpha is None:
        alpha = torch.rand(x_real.shape[0], 1)
    x_hat = (alpha * x_real + (1 - alpha) * x_fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lam * ((grad.norm(dim=1) - 1) ** 2).mean()


def two_layer_critic(x, w, W1, b1, w2):
    return x @ w + torch.tanh(x @ W1.T + b1) @ w2


def critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    penalty = gradient_penalty(lambda x: two_layer_critic(x, w, W1, b1, w2), x_real, x_fake, alpha, lam)
    return float(torch.as_tensor(penalty).detach())


class Replay:
    def __init__(self, x: torch.Tensor):
        self.x = torch.as_tensor(x, dtype=torch.float32)

    def latent_dim(self) -> int:
        return 2

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0].double() / math.sqrt(2)))  # uniform in (0, 1)
        idx = (u * self.x.shape[0]).long().clamp(0, self.x.shape[0] - 1)
        return self.x[idx] + 1e-3 * torch.tanh(z[:, :2].float())  # BUG: training points, barely moved


def fit(x, *, seed: int, max_seconds: float) -> Replay:
    return Replay(x)
