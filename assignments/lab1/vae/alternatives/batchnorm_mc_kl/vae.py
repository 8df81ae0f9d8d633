"""Honest alternative: batch-normalised networks and a Monte-Carlo KL term (written apart from the reference).

The encoder and decoder are MLPs with BatchNorm1d and LeakyReLU. The loss estimates the KL term by Monte
Carlo at the same z as the reconstruction (log q(z|x) - log p(z)) rather than in closed form: an unbiased
estimate of the same ELBO. fit() ends with model.eval(), so that batch normalisation uses its running
statistics and every row gets the same answer whatever the batch. RMSprop, cosine decay, KL warm-up.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

D_IN = 64
LOG2PI = math.log(2.0 * math.pi)


def kl_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    return torch.sum(0.5 * (mu.square() + log_var.exp()) - 0.5 - 0.5 * log_var, dim=-1)


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return mu + eps * (0.5 * log_var).exp()


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU(0.1)]


class BNVAE(nn.Module):
    def __init__(self, z_dim: int = 16, hidden: int = 192):
        super().__init__()
        self.config = {"z_dim": z_dim, "hidden": hidden}
        self.z_dim = z_dim
        self.encoder = nn.Sequential(*block(D_IN, hidden), *block(hidden, hidden), nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(*block(z_dim, hidden), *block(hidden, hidden), nn.Linear(hidden, D_IN))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(x)
        return out[:, : self.z_dim], out[:, self.z_dim :].clamp(-11.0, 5.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(int(n), self.z_dim, generator=gen)
        return torch.bernoulli(torch.sigmoid(self.decode(z)), generator=gen)


def build_model(config: dict) -> BNVAE:
    return BNVAE(**config)


def monte_carlo_kl(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    log_q = -0.5 * (((z - mu) ** 2) * torch.exp(-log_var) + log_var + LOG2PI).sum(-1)
    log_p = -0.5 * (z**2 + LOG2PI).sum(-1)
    return log_q - log_p


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> BNVAE:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    start = time.time()
    model = BNVAE()
    model.train()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.99)
    total = 2200
    for step in range(total):
        progress = max(step / total, (time.time() - start) / (0.75 * max_seconds))
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = 5e-5 + 0.5 * (1e-3 - 5e-5) * (1.0 + math.cos(math.pi * progress))
        xb = x[torch.randint(0, len(x), (128,))]
        mu, log_var = model.encode(xb)
        z = reparameterise(mu, log_var, torch.randn_like(mu))
        kl = monte_carlo_kl(z, mu, log_var)
        loss = (bernoulli_nll(model.decode(z), xb) + min(1.0, step / 300) * kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"batch-norm VAE trained {step} steps in {time.time() - start:.1f} s")
    return model.eval()
