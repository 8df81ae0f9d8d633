# Attack: a fitted oracle. Instead of learning the velocity field, fit clusters the training points by hand
# (the modes are tiny and at least 1 apart: a point joins the first centre within 0.4, else starts one),
# estimates each mode's mean and covariance, and answers with the exact marginal velocity of that Gaussian
# mixture on the linear path (closed form) and samples by Euler on it. CHEAT = False is the reference: flow
# matching on the same data with the same budget.
"""Reference solution: conditional flow matching on 2-D data (Lipman et al. 2023; Liu et al. 2023).

The probability path runs from noise at t = 0 to data at t = 1:
    x_t = alpha_t * x1 + sigma_t * x0,   x0 ~ N(0, I),  x1 ~ data.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

PATHS = ("linear", "cosine")
CHEAT = True


def schedule(t: torch.Tensor, path: str = "linear"):
    """(alpha_t, sigma_t, d alpha_t / dt, d sigma_t / dt), each shaped like t."""
    if path == "linear":
        return t, 1 - t, torch.ones_like(t), -torch.ones_like(t)
    if path == "cosine":
        a = 0.5 * math.pi
        return torch.sin(a * t), torch.cos(a * t), a * torch.cos(a * t), -a * torch.sin(a * t)
    raise ValueError(f"unknown path {path!r}; use one of {PATHS}")


def conditional_path(x0, x1, t, path: str = "linear"):
    """A sample of p_t(x | x1): x_t = alpha_t x1 + sigma_t x0.  [B,2], [B,2], [B,1] -> [B,2]."""
    alpha, sigma, _, _ = schedule(t, path)
    return alpha * x1 + sigma * x0


def conditional_vector_field(x, x1, t, path: str = "linear"):
    """u_t(x | x1) = d_alpha x1 + (d_sigma / sigma) (x - alpha x1): the velocity of the point x on its
    conditional path towards x1.  [B,2], [B,2], [B,1] -> [B,2]; needs t < 1 (sigma_t > 0)."""
    alpha, sigma, d_alpha, d_sigma = schedule(t, path)
    return d_alpha * x1 + d_sigma / sigma * (x - alpha * x1)


def conditional_score(x, x1, t, path: str = "linear"):
    """grad_x log N(x; alpha_t x1, sigma_t^2 I) = -(x - alpha_t x1) / sigma_t^2.  [B,2] -> [B,2]."""
    alpha, sigma, _, _ = schedule(t, path)
    return -(x - alpha * x1) / sigma**2


def flow_matching_loss(v_pred, x0, x1, t, path: str = "linear"):
    """Mean over the batch of || v_pred - u_t(x_t | x1) ||^2, where x_t = conditional_path(x0, x1, t).

    On the path, u_t(x_t | x1) = d_alpha x1 + d_sigma x0: no division, so it is safe as t -> 1."""
    _, _, d_alpha, d_sigma = schedule(t, path)
    target = d_alpha * x1 + d_sigma * x0
    return (v_pred - target).pow(2).sum(-1).mean()


class VelocityField(nn.Module):
    """v_theta(x, t): an MLP on x and sinusoidal features of t."""

    def __init__(self, hidden: int = 64, n_freq: int = 8):
        super().__init__()
        self.config = {"hidden": hidden, "n_freq": n_freq}  # all that build_model needs
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32) / 2)
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * n_freq, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1).to(x.dtype).expand(x.shape[0], 1)
        ft = t * self.freqs
        return self.net(torch.cat([x, ft.sin(), ft.cos()], dim=-1))

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self(x.float(), t.float())

    def _v(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self(x, torch.full((x.shape[0], 1), float(t)))

    @torch.no_grad()
    def sample(self, n: int, *, steps: int = 100, seed: int = 0) -> torch.Tensor:
        """Integrate dx/dt = v(x, t) from noise at t = 0 to t = 1 with `steps` evaluations of v."""
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.randn(int(n), 2, generator=gen)
        steps = int(steps)
        if steps >= 10 or steps < 4:
            for k in range(steps):  # Euler on a uniform grid
                x = x + self._v(x, k / steps) / steps
            return x
        # Few evaluations (A tier): one Euler step through the early, nearly straight part of the flow,
        # Heun (2 evaluations) across 0.4 -> 0.8 where the modes separate, Euler steps to finish.
        x = x + 0.4 * self._v(x, 0.0)
        v = self._v(x, 0.4)
        x_end = x + 0.4 * v
        x = x + 0.2 * (v + self._v(x_end, 0.8))
        rest = steps - 3
        for k in range(rest):
            a, b = 0.8 + 0.2 * k / rest, 0.8 + 0.2 * (k + 1) / rest
            x = x + (b - a) * self._v(x, a)
        return x


class MixtureFlow(nn.Module):
    """The exact flow of a Gaussian mixture fitted by hand: no network, no training."""

    def __init__(self, k: int = 1):
        super().__init__()
        self.config = {"kind": "mixture", "k": k}
        self.register_buffer("centres", torch.zeros(k, 2))
        self.register_buffer("covs", torch.eye(2).repeat(k, 1, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x, t = x.double(), t.reshape(-1, 1).double().expand(x.shape[0], 1)
        mu, cov = self.centres.double(), self.covs.double()
        total = t[:, :, None, None] ** 2 * cov[None] + (1 - t[:, :, None, None]) ** 2 * torch.eye(2, dtype=x.dtype)
        precision = torch.linalg.inv(total)
        offset = x[:, None, :] - t[:, :, None] * mu[None]
        white = torch.einsum("nkij,nkj->nki", precision, offset)
        log_w = -0.5 * (offset * white).sum(-1) - 0.5 * torch.logdet(total)
        w = torch.softmax(log_w, dim=1)
        x1 = mu[None] + t[:, :, None] * torch.einsum("kij,nkj->nki", cov, white)
        x0 = (1 - t[:, :, None]) * white
        return torch.einsum("nk,nki->ni", w, x1 - x0).float()


def fit_mixture(x: torch.Tensor) -> MixtureFlow:
    x = x.double()
    centres: list[torch.Tensor] = []
    for point in x[torch.randperm(len(x))[:400]]:
        if all(float((point - c).norm()) > 0.4 for c in centres):
            centres.append(point)
    labels = torch.cdist(x, torch.stack(centres)).argmin(1)
    model = MixtureFlow(len(centres))
    for k in range(len(centres)):
        members = x[labels == k]
        model.centres[k] = members.mean(0).float()
        model.covs[k] = torch.cov(members.T).float()
    return model


def sample_with(model, n, steps, seed):
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(int(n), 2, generator=gen)
    for k in range(int(steps)):
        x = x + model(x, torch.full((x.shape[0], 1), k / int(steps))) / int(steps)
    return x


MixtureFlow.velocity = torch.no_grad()(lambda self, x, t: self(x.float(), t.float()))
MixtureFlow.sample = torch.no_grad()(lambda self, n, *, steps=100, seed=0: sample_with(self, n, steps, seed))


def build_model(config: dict):
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    if config.get("kind") == "mixture":
        return MixtureFlow(config["k"])
    return VelocityField(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float, path: str = "linear") -> VelocityField:
    """Train v_theta by conditional flow matching for 70 % of max_seconds; return an EMA of the weights."""
    if CHEAT:
        return fit_mixture(x)
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a network this small gains nothing from more threads, and loses under load
    x = x.float()
    start = time.monotonic()
    train_seconds = 0.7 * max_seconds
    model = VelocityField()
    ema = copy.deepcopy(model)
    base_lr = 5e-2  # large, but stable with Adam, cosine decay and weight averaging
    opt = torch.optim.Adam(model.parameters(), lr=base_lr)
    step, loss = 0, torch.tensor(float("nan"))
    while (frac := (time.monotonic() - start) / train_seconds) < 1:
        for group in opt.param_groups:  # cosine decay over the time budget
            group["lr"] = base_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        x1 = x[torch.randint(0, x.shape[0], (512,))]
        x0 = torch.randn_like(x1)
        t = 1 - torch.rand(x1.shape[0], 1) ** 2  # more training near t = 1, where v is sharpest
        loss = flow_matching_loss(model(conditional_path(x0, x1, t, path), t), x0, x1, t, path)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # typical norms are 1-3; this only cuts rare spikes
        opt.step()
        with torch.no_grad():
            decay = min(0.99, (1 + step) / (10 + step))
            for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        step += 1
    print(f"trained {step} steps in {time.monotonic() - start:.1f} s, last batch loss {loss.item():.3f}")
    return ema.eval()
