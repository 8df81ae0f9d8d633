"""Honest alternative for part 8, written against the handout's interface without the reference solution:
another network family, another time distribution, another solver and another attack.

- Network: a residual MLP whose blocks are modulated by FiLM (a scale and a shift per block computed from a
  sinusoidal time embedding plus a label embedding), with LayerNorm — instead of the handout's plain MLP
  that adds the label embedding once at the input.
- Training: the same conditional flow-matching loss and label dropout, with t drawn from a logit-normal
  distribution (more weight on the middle of the path, as in Esser et al. 2024), no weight averaging.
- Sampler: Heun's method (trapezoid predictor-corrector), 20 steps, the last step plain Euler.
- Attack: the negative mean absolute reconstruction error (a loss-threshold attack under an L1 loss).
The A tier (fit_latent) is not attempted.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

N_CLASSES = 10
NULL = N_CLASSES
P_DROP = 0.15
HEUN_STEPS = 20


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """(1 + w) v_cond - w v_uncond: w = 0 is the conditional model, w = -1 the unconditional one."""
    return (1 + w) * v_cond - w * v_uncond


def membership_scores(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Higher = more likely a training member: members are reconstructed more closely (L1 error)."""
    return -(x - recon).abs().mean(dim=1)


class FiLMBlock(nn.Module):
    """h + MLP(LayerNorm(h) * (1 + scale) + shift), scale and shift from the conditioning vector."""

    def __init__(self, width: int, cond: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(cond, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        nn.init.zeros_(self.mlp[-1].weight)  # each block starts as the identity
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # [B, W], [B, C] -> [B, W]
        scale, shift = self.film(c).chunk(2, dim=1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class FiLMNet(nn.Module):
    def __init__(self, dim: int = 64, width: int = 192, blocks: int = 3, cond: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(100.0), cond // 4)))
        self.time = nn.Sequential(nn.Linear(cond // 2, cond), nn.GELU(), nn.Linear(cond, cond))
        self.label = nn.Embedding(N_CLASSES + 1, cond)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(FiLMBlock(width, cond) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        angles = t.view(-1, 1) * self.freqs * 2 * math.pi                      # [B, cond/4]
        cond = self.time(torch.cat([angles.sin(), angles.cos()], dim=1)) + self.label(c)   # [B, cond]
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(h)


class GuidedFlow(nn.Module):
    def __init__(self, dim: int = 64, width: int = 192, blocks: int = 3, cond: int = 128):
        super().__init__()
        self.config = {"dim": dim, "width": width, "blocks": blocks, "cond": cond}
        self.net = FiLMNet(dim, width, blocks, cond)

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(x.float(), t.float(), labels.long())

    def _guided(self, x: torch.Tensor, t: float, labels: torch.Tensor, w: float) -> torch.Tensor:
        n = x.shape[0]
        times = torch.full((2 * n,), t)
        both = self.velocity(torch.cat([x, x]), times, torch.cat([labels, torch.full_like(labels, NULL)]))
        return guided_velocity(both[:n], both[n:], w)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        labels = labels.long()
        x = torch.randn(labels.shape[0], 64, generator=torch.Generator().manual_seed(int(seed)))
        h = 1.0 / HEUN_STEPS
        for i in range(HEUN_STEPS):
            t = i * h
            slope = self._guided(x, t, labels, guidance)
            predicted = x + h * slope
            if i == HEUN_STEPS - 1:
                x = predicted
            else:  # Heun: average the slopes at both ends of the step
                x = x + 0.5 * h * (slope + self._guided(predicted, t + h, labels, guidance))
        return ((x + 1) / 2).clamp(0, 1)


def build_model(config: dict) -> GuidedFlow:
    return GuidedFlow(**config)


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> GuidedFlow:
    started = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data, y = x.float() * 2 - 1, y.long()
    model = GuidedFlow()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1.5e-3, weight_decay=1e-4)
    budget = 0.8 * max_seconds
    steps = 0
    while (elapsed := time.monotonic() - started) < budget:
        for group in optimiser.param_groups:  # cosine decay over the time budget
            group["lr"] = 1.5e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        rows = torch.randint(0, data.shape[0], (256,))
        x1, c = data[rows], y[rows].clone()
        c[torch.rand(256) < P_DROP] = NULL
        x0 = torch.randn_like(x1)
        t = torch.sigmoid(torch.randn(256))  # logit-normal times
        xt = t[:, None] * x1 + (1 - t[:, None]) * x0
        loss = (model.net(xt, t, c) - (x1 - x0)).pow(2).sum(1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
    print(f"FiLM flow: {steps} steps, last loss {loss.item():.2f} ({time.monotonic() - started:.1f} s)")
    return model.eval()


def build_latent(config: dict):
    raise NotImplementedError("build_latent")


def fit_latent(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float):
    raise NotImplementedError("fit_latent")
