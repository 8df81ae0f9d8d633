"""Honest alternative for the diffusion part: a preconditioned denoiser (Karras et al. 2022, "EDM") on the
handout's linear path, converted to the velocity the API returns, sampled with Heun's method.

- Objective: the network predicts the clean point x1 (a denoiser), not the velocity. Its output F is
  preconditioned: x1_hat = mu + c_skip(t) (x - t mu) + c_out(t) F(c_in(t) (x - t mu), t), where mu and s_d are
  the data's mean and standard deviation and c_skip, c_out are the linear-Gaussian optimum and the residual's
  scale. The loss is EDM's: || x1_hat - x1 ||^2 / c_out^2, i.e. unit-variance regression on F. Its minimiser is
  x1_hat = E[x1 | x_t = x], so the velocity (x1_hat - x) / (1 - t) is the exact marginal velocity of the path.
  Written out, that velocity never divides by 1 - t (see `DenoiserVelocity.velocity_from`).
- Time: log-normal noise levels as in EDM (ln((1 - t) / t) ~ N(-2, 1.5^2)), which puts most of the training
  where the field sharpens (t > 0.8), mixed with a fifth of uniform times so that no t goes unseen.
- Network: an MLP with FiLM conditioning (every hidden layer's activations scaled and shifted by a learned
  function of the noise level), instead of feeding t as an input.
- Weights: an exponential moving average of the parameters, kept as a second network.
- Sampler: Heun's method (2 evaluations a step) on a time grid that gets finer towards t = 1, ending on a
  plain Euler step when an evaluation is left over: never more than `steps` evaluations.
The A tier (few_step_sampler) is not aimed at.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.nn import functional as F

PATHS = ("linear", "cosine")


# ---- the handout's probability path ----

def schedule(t: torch.Tensor, path: str = "linear"):
    """(alpha_t, sigma_t, d alpha / dt, d sigma / dt) of the named path, each shaped like t."""
    if path == "linear":
        ones = torch.ones_like(t)
        return t, ones - t, ones, -ones
    if path == "cosine":
        angle = t * (math.pi / 2)
        speed = math.pi / 2
        return angle.sin(), angle.cos(), speed * angle.cos(), -speed * angle.sin()
    raise ValueError(f"path {path!r} is not one of {PATHS}")


def conditional_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    """x_t = alpha_t x1 + sigma_t x0. [B,2], [B,2], [B,1] -> [B,2]."""
    alpha, sigma, _, _ = schedule(t, path)
    return alpha * x1 + sigma * x0


def conditional_vector_field(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                             path: str = "linear") -> torch.Tensor:
    """u_t(x | x1) = d_alpha x1 + (d_sigma / sigma) (x - alpha x1): the noise that puts x on the path towards x1
    is (x - alpha x1) / sigma, and the path moves at d_alpha x1 + d_sigma x0. Needs t < 1."""
    alpha, sigma, d_alpha, d_sigma = schedule(t, path)
    return d_alpha * x1 + d_sigma * (x - alpha * x1) / sigma


def conditional_score(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    """grad_x log N(x; alpha_t x1, sigma_t^2 I) = (alpha_t x1 - x) / sigma_t^2. Needs t < 1."""
    alpha, sigma, _, _ = schedule(t, path)
    return (alpha * x1 - x) / sigma.square()


def flow_matching_loss(v_pred: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       path: str = "linear") -> torch.Tensor:
    """Batch mean of || v_pred - u_t(x_t | x1) ||^2; on the path the target is d_alpha x1 + d_sigma x0."""
    _, _, d_alpha, d_sigma = schedule(t, path)
    residual = v_pred - (d_alpha * x1 + d_sigma * x0)
    return residual.square().sum(dim=1).mean()


# ---- the denoiser and its velocity ----

class FiLMLayer(nn.Module):
    """SiLU((1 + scale(e)) * Wh + shift(e)): a hidden layer modulated by the noise-level embedding e."""

    def __init__(self, width_in: int, width: int, embed: int):
        super().__init__()
        self.linear = nn.Linear(width_in, width)
        self.modulation = nn.Linear(embed, 2 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(e).chunk(2, dim=1)  # [B, width] each
        return F.silu(self.linear(h) * (1 + scale) + shift)


class DenoiserVelocity(nn.Module):
    """F(c_in y, t) of the preconditioned denoiser on the linear path, with velocity and sample entry points."""

    def __init__(self, width: int = 96, layers: int = 3, embed: int = 32, n_freq: int = 6):
        super().__init__()
        self.config = {"width": width, "layers": layers, "embed": embed, "n_freq": n_freq}
        # The data's mean and standard deviation, set by fit: part of the state so a rebuilt model has them.
        self.register_buffer("mu", torch.zeros(2))
        self.register_buffer("s_data", torch.ones(()))
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freq, dtype=torch.float32))
        self.embed = nn.Sequential(nn.Linear(2 * n_freq + 1, embed), nn.SiLU(), nn.Linear(embed, embed), nn.SiLU())
        self.hidden = nn.ModuleList(FiLMLayer(2 if i == 0 else width, width, embed) for i in range(layers))
        self.out = nn.Linear(width, 2)
        nn.init.zeros_(self.out.weight)  # F = 0 is the linear-Gaussian denoiser: a sensible start
        nn.init.zeros_(self.out.bias)

    def noise_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """[B,1] -> [B, embed]: EDM's c_noise = ln(sigma_edm) / 4 (sigma_edm = (1 - t) / t, kept finite at both
        ends) and its sinusoids."""
        c_noise = 0.25 * torch.log((1 - t + 1e-4) / (t + 1e-4))  # [B, 1], in [-2.3, 2.3]
        angles = c_noise * self.freqs  # [B, n_freq]
        return self.embed(torch.cat([c_noise, angles.sin(), angles.cos()], dim=1))

    def residual(self, y: torch.Tensor, t: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
        """F at the centred point y = x - t mu, fed with unit-variance input y / sqrt(Var[y])."""
        e = self.noise_embedding(t)
        h = y / variance.sqrt()
        for layer in self.hidden:
            h = layer(h, e)
        return self.out(h)

    def coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Var[y] = t^2 s_d^2 + (1 - t)^2, c_skip = t s_d^2 / Var, c_out = (1 - t) s_d / sqrt(Var): [B,1] each."""
        s2 = self.s_data.square()
        variance = t.square() * s2 + (1 - t).square()
        return variance, t * s2 / variance, (1 - t) * self.s_data / variance.sqrt()

    def velocity_from(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = (x1_hat - x) / (1 - t) with x1_hat = mu + c_skip y + c_out F, simplified so that 1 - t cancels:
        v = mu + (t s_d^2 - (1 - t)) y / Var + s_d F / sqrt(Var). Finite at t = 1, where it is x + F."""
        t = t.reshape(-1, 1).expand(x.shape[0], 1)
        y = x - t * self.mu
        variance, _, _ = self.coefficients(t)
        f = self.residual(y, t, variance)
        return self.mu + (t * self.s_data.square() - (1 - t)) * y / variance + self.s_data * f / variance.sqrt()

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B,2], [B,1] -> [B,2]: the marginal velocity of the linear path implied by the denoiser."""
        return self.velocity_from(x.float(), t.float())

    @torch.no_grad()
    def sample(self, n: int, *, steps: int = 100, seed: int = 0) -> torch.Tensor:
        """Noise from torch.Generator().manual_seed(seed), then Heun steps over the grid t_k = 1 - (1 - k/m)^1.5
        (finer near t = 1, where the field sharpens) and a last Euler step if `steps` is odd."""
        x = torch.randn(int(n), 2, generator=torch.Generator().manual_seed(int(seed)))
        steps = max(int(steps), 1)
        heun, euler = divmod(steps, 2)
        intervals = heun + euler
        grid = [1 - (1 - k / intervals) ** 1.5 for k in range(intervals + 1)]
        for k in range(intervals):
            t0, t1 = grid[k], grid[k + 1]
            v0 = self.velocity_from(x, torch.full((1, 1), t0))
            guess = x + (t1 - t0) * v0
            if k < heun:  # trapezoid of the slopes at both ends
                x = x + 0.5 * (t1 - t0) * (v0 + self.velocity_from(guess, torch.full((1, 1), t1)))
            else:
                x = guess
        return x


def build_model(config: dict) -> DenoiserVelocity:
    return DenoiserVelocity(**config)


def sample_times(batch: int) -> torch.Tensor:
    """[B,1]: t = 1 / (1 + sigma_edm) with ln sigma_edm ~ N(-2, 1.5^2) for 4/5 of the batch, uniform for the rest."""
    t = 1 / (1 + torch.exp(-2.0 + 1.5 * torch.randn(batch, 1)))
    uniform = torch.rand(batch, 1) < 0.2
    return torch.where(uniform, torch.rand(batch, 1), t)


def denoiser_loss(model: DenoiserVelocity, x1: torch.Tensor) -> torch.Tensor:
    """EDM's loss on the linear path: || x1_hat - x1 ||^2 / c_out^2 = || F - (x1 - mu - c_skip y) / c_out ||^2."""
    x0, t = torch.randn_like(x1), sample_times(x1.shape[0])
    x = conditional_path(x0, x1, t, "linear")
    y = x - t * model.mu
    variance, c_skip, c_out = model.coefficients(t)
    target = (x1 - model.mu - c_skip * y) / c_out  # [B,2]; c_out > 0 since t < 1
    return (model.residual(y, t, variance) - target).square().sum(dim=1).mean()


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> DenoiserVelocity:
    """Train the denoiser for 70 % of max_seconds (Adam, warm-up then cosine decay); return the EMA weights."""
    started = time.monotonic()
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # small matrices: one thread is fastest and fair to a shared machine
    data = x.float()
    model = DenoiserVelocity()
    with torch.no_grad():
        model.mu.copy_(data.mean(0))
        model.s_data.copy_(data.std(0).mean())
    average = build_model(model.config)
    average.load_state_dict(model.state_dict())
    average.requires_grad_(False)
    peak_lr, budget = 1e-2, 0.7 * max_seconds
    opt = torch.optim.Adam(model.parameters(), lr=peak_lr)
    step, loss = 0, torch.zeros(())
    while (progress := (time.monotonic() - started) / budget) < 1:
        for group in opt.param_groups:
            group["lr"] = peak_lr * min(1.0, progress / 0.03) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        loss = denoiser_loss(model, data[torch.randint(len(data), (512,))])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        step += 1
        decay = min(0.995, (1 + step) / (20 + step))
        with torch.no_grad():
            for kept, current in zip(average.parameters(), model.parameters(), strict=True):
                kept.lerp_(current, 1 - decay)
    print(f"denoiser: {step} Adam steps in {time.monotonic() - started:.1f} s, last loss {loss.item():.3f}")
    return average.eval()
