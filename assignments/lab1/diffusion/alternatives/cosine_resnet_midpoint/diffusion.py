"""Honest alternative for the diffusion part, written against the handout's interface without the reference
solution: another path, network, time distribution, optimiser and solver.

- Path: the model is trained on the variance-preserving `cosine` path (the reference trains on `linear`);
  the grader's velocity check scores the better of the two paths, and its Euler loop integrates whatever
  marginal field the model learned.
- Network: a residual MLP (pre-activation blocks) whose time embedding, log-spaced sinusoids passed through
  a small MLP, is added inside every block, instead of the handout's plain MLP on [x, sin, cos].
- Training: the conditional flow-matching loss with t from a logit-normal distribution shifted towards data
  (t = sigmoid(0.8 + 1.2 z)), AdamW with a linear warm-up and cosine decay, a Polyak average of the weights.
- Sampler: the explicit midpoint rule (two evaluations per step, `steps // 2` steps, a final Euler step when
  `steps` is odd), so it never evaluates the velocity more than `steps` times.
The A tier is not attempted: with steps=4 this is two midpoint steps on a uniform grid.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

PATHS = ("linear", "cosine")
HALF_PI = 0.5 * math.pi


def schedule(t: torch.Tensor, path: str = "linear"):
    """(alpha_t, sigma_t, d alpha_t / dt, d sigma_t / dt), each shaped like t."""
    if path == "cosine":
        return torch.sin(HALF_PI * t), torch.cos(HALF_PI * t), HALF_PI * torch.cos(HALF_PI * t), -HALF_PI * torch.sin(HALF_PI * t)
    if path == "linear":
        one = torch.ones_like(t)
        return t.clone(), one - t, one, -one
    raise ValueError(f"path must be one of {PATHS}, not {path!r}")


def conditional_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    alpha, sigma, _, _ = schedule(t, path)
    return sigma * x0 + alpha * x1


def conditional_vector_field(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    """The velocity of x on the conditional path to x1: recover the noise x0 that puts x on the path at time t,
    then differentiate the path. Needs sigma_t > 0 (t < 1)."""
    alpha, sigma, d_alpha, d_sigma = schedule(t, path)
    noise = (x - alpha * x1) / sigma
    return d_alpha * x1 + d_sigma * noise


def conditional_score(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    alpha, sigma, _, _ = schedule(t, path)
    return (alpha * x1 - x) / (sigma * sigma)


def flow_matching_loss(v_pred: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       path: str = "linear") -> torch.Tensor:
    """Mean over the batch of the squared distance to the path's velocity d_alpha x1 + d_sigma x0 (which is
    u_t(x_t | x1) at x_t, with no division by sigma_t)."""
    _, _, d_alpha, d_sigma = schedule(t, path)
    return ((v_pred - (d_alpha * x1 + d_sigma * x0)) ** 2).sum(dim=1).mean()


class Block(nn.Module):
    """h + W2 SiLU(W1 SiLU(h) + e(t)): a pre-activation residual block that sees the time in its middle."""

    def __init__(self, width: int):
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.time = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.outer(nn.functional.silu(self.inner(nn.functional.silu(h)) + self.time(emb)))


class ResidualVelocity(nn.Module):
    """v_theta(x, t) trained on one path (config["path"]), with velocity and sample entry points."""

    def __init__(self, width: int = 64, blocks: int = 2, n_freq: int = 16, path: str = "cosine"):
        super().__init__()
        self.config = {"width": width, "blocks": blocks, "n_freq": n_freq, "path": path}
        self.register_buffer("freqs", torch.logspace(0.0, math.log10(200.0), n_freq))
        self.embed = nn.Sequential(nn.Linear(2 * n_freq, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(2, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(blocks))
        self.out = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        angles = t.reshape(-1, 1) * self.freqs
        emb = self.embed(torch.cat([angles.sin(), angles.cos()], dim=1)).expand(x.shape[0], -1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(nn.functional.silu(h))

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self(x.float(), t.float())

    def _at(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self(x, torch.full((1, 1), t))

    @torch.no_grad()
    def sample(self, n: int, *, steps: int = 100, seed: int = 0) -> torch.Tensor:
        """Noise from the seeded generator, then midpoint steps over a uniform grid (2 evaluations each) and one
        Euler step for an odd evaluation left over: at most `steps` evaluations in all."""
        x = torch.randn(int(n), 2, generator=torch.Generator().manual_seed(int(seed)))
        steps = max(int(steps), 1)
        pairs, euler = divmod(steps, 2)
        h = 1.0 / (pairs + euler)
        for k in range(pairs):
            t = k * h
            x = x + h * self._at(x + 0.5 * h * self._at(x, t), t + 0.5 * h)
        if euler:
            x = x + h * self._at(x, pairs * h)
        return x


def build_model(config: dict) -> ResidualVelocity:
    return ResidualVelocity(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> ResidualVelocity:
    """Flow matching on the cosine path for two thirds of the budget; returns the Polyak-averaged weights."""
    started = time.monotonic()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    data = x.float()
    model = ResidualVelocity()
    average = build_model(model.config)
    average.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-5)
    deadline, warmup, steps = 0.66 * max_seconds, 0.04 * max_seconds, 0
    loss = torch.zeros(())
    while (elapsed := time.monotonic() - started) < deadline:
        lr_scale = min(1.0, elapsed / warmup) * 0.5 * (1 + math.cos(math.pi * elapsed / deadline))
        for group in opt.param_groups:
            group["lr"] = 1e-2 * max(lr_scale, 0.02)
        x1 = data[torch.randint(len(data), (512,))]
        x0 = torch.randn_like(x1)
        t = torch.sigmoid(0.8 + 1.2 * torch.randn(len(x1), 1))
        loss = flow_matching_loss(model(conditional_path(x0, x1, t, "cosine"), t), x0, x1, t, "cosine")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        steps += 1
        keep = min(0.995, steps / (steps + 10))
        with torch.no_grad():
            for mine, theirs in zip(average.parameters(), model.parameters(), strict=True):
                mine.mul_(keep).add_(theirs, alpha=1 - keep)
    print(f"{steps} steps on the cosine path in {time.monotonic() - started:.1f} s; last loss {loss.item():.3f}")
    return average.eval()
