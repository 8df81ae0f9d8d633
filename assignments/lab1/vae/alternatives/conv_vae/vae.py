"""Honest alternative: a convolutional VAE (written apart from the reference).

The encoder reads the 8x8 image with two 3x3 convolutions (the second one strided down to 4x4), the
decoder mirrors it with a transposed convolution back to 8x8 and a final 3x3 convolution that outputs
one Bernoulli logit per pixel. 12 latent dimensions, SiLU activations, AdamW with a one-cycle schedule
driven by the clock, and a linear KL warm-up over the first 15 % of training.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

SIDE = 8


def kl_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, e^log_var) || N(0, 1)), summed over the last axis."""
    return -0.5 * torch.sum(1.0 + log_var - mu.pow(2) - torch.exp(log_var), dim=-1)


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(mu, torch.exp(0.5 * log_var), eps)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # -log p(x | l) = softplus(l) - x l, summed over pixels
    return torch.sum(F.softplus(logits) - x * logits, dim=-1)


class ConvVAE(nn.Module):
    def __init__(self, latent: int = 12, channels: int = 32):
        super().__init__()
        self.config = {"latent": latent, "channels": channels}
        self.latent = latent
        c = channels
        self.enc = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.SiLU(),   # 8x8 -> 4x4
            nn.Flatten(), nn.Linear(2 * c * 16, 256), nn.SiLU(), nn.Linear(256, 2 * latent))
        self.dec_fc = nn.Sequential(nn.Linear(latent, 256), nn.SiLU(), nn.Linear(256, 2 * c * 16), nn.SiLU())
        self.dec_conv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.SiLU(),   # 4x4 -> 8x8
            nn.Conv2d(c, 1, 3, padding=1))
        self.c = c

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x.reshape(-1, 1, SIDE, SIDE))
        mu, log_var = h[:, : self.latent], h[:, self.latent :]
        return mu, torch.clamp(log_var, -10.0, 5.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_fc(z).reshape(-1, 2 * self.c, 4, 4)
        return self.dec_conv(h).reshape(-1, SIDE * SIDE)

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        rng = torch.Generator().manual_seed(int(seed))
        z = torch.randn((int(n), self.latent), generator=rng)
        probs = torch.sigmoid(self.decode(z))
        return torch.bernoulli(probs, generator=rng)


def build_model(config: dict) -> ConvVAE:
    return ConvVAE(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> ConvVAE:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    deadline = 0.75 * max_seconds
    model = ConvVAE()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    max_steps, peak = 1800, 2e-3
    step = 0
    while step < max_steps:
        frac = max(step / max_steps, (time.perf_counter() - t0) / deadline)
        if frac >= 1:
            break
        # one-cycle: warm up over the first 10 %, then linear decay to 2 % of the peak
        lr = peak * (frac / 0.1 if frac < 0.1 else 1.0 - 0.98 * (frac - 0.1) / 0.9)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = x[torch.randint(len(x), (100,))]
        mu, log_var = model.encode(batch)
        z = reparameterise(mu, log_var, torch.randn_like(mu))
        beta = min(1.0, frac / 0.15)
        loss = torch.mean(bernoulli_nll(model.decode(z), batch) + beta * kl_normal(mu, log_var))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    print(f"conv VAE: {step} steps, {time.perf_counter() - t0:.1f} s, loss {loss.item():.2f}")
    return model
