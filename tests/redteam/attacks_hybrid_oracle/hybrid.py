"""Red-team attack (issue 19, item 5): no network, the answer computed from the data. With CHEAT = True fit
keeps its training digits as buffers and model.velocity is the exact velocity of flow matching towards a
kernel density over them (each training digit blurred by SIGMA): E[x1 - x0 | x_t] in closed form, a
posterior-weighted mixture of the training digits. Sampling integrates it, so the samples are training digits
moved by about SIGMA, and the velocity the grader integrates is the same one. CHEAT = False trains the
reference's network for the same budget. The part's checks must not give this more than honest training.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

N_CLASSES = 10
NULL = N_CLASSES  # the extra "no label" class used for the unconditional velocity
P_DROP = 0.15
STEPS = 32  # sampling steps (midpoint rule: 2 network evaluations per step)


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: v_cond + w (v_cond - v_uncond) = (1 + w) v_cond - w v_uncond."""
    return v_cond + w * (v_cond - v_uncond)


def membership_scores(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Loss-threshold attack (Yeom et al. 2018): a model fits its training members better than unseen
    data, so the score is the negative per-image squared reconstruction error. Higher = more likely a member."""
    return -(x - recon).pow(2).sum(dim=1)


class VelocityNet(nn.Module):
    """v(x, t, c): an MLP on the image, sinusoidal features of t and a label embedding (11 labels)."""

    def __init__(self, dim: int = 64, hidden: int = 256, n_freq: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(200.0), n_freq)))
        self.label = nn.Embedding(N_CLASSES + 1, hidden)
        self.inp = nn.Linear(dim + 2 * n_freq, hidden)
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                  nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        ft = t.view(-1, 1) * self.freqs
        h = self.inp(torch.cat([x, ft.sin(), ft.cos()], dim=1)) + self.label(c)
        return self.body(h)


class GuidedFlow(nn.Module):
    """The trained model the grader talks to. Works in [-1, 1] internally; returns pixels in [0, 1]."""

    def __init__(self, dim: int = 64, hidden: int = 256, n_freq: int = 16):
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "n_freq": n_freq}  # all that build_model needs
        self.net = VelocityNet(dim, hidden, n_freq)

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The network's velocity v(x, t, c) in model units (x = 2 pixel - 1 at t = 1, noise at t = 0), one
        time and one label per row; label NULL (10) asks for the unconditional velocity."""
        return self.net(x.float(), t.float(), labels.long())

    @torch.no_grad()
    def guided(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, w: float) -> torch.Tensor:
        both = self.velocity(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, NULL)]))
        v_cond, v_uncond = both.chunk(2)
        return guided_velocity(v_cond, v_uncond, w)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        labels = labels.long()
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.randn(labels.shape[0], 64, generator=gen)
        h = 1.0 / STEPS
        for i in range(STEPS):  # midpoint rule from t = 0 (noise) to t = 1 (data)
            t = torch.full((labels.shape[0],), i * h)
            mid = x + 0.5 * h * self.guided(x, t, labels, guidance)
            x = x + h * self.guided(mid, t + 0.5 * h, labels, guidance)
        return ((x + 1) / 2).clamp(0, 1)


CHEAT = True
SIGMA = 0.45  # the kernel's width in model units ([-1, 1] pixels)


class KernelFlow(nn.Module):
    """The closed-form velocity towards a kernel density of the training digits (per label; label NULL uses all).
    For x1 = d_i + SIGMA e and the path x_t = t x1 + (1 - t) x0: x_t | i ~ N(t d_i, s_t^2 I) with
    s_t^2 = t^2 SIGMA^2 + (1 - t)^2, and E[x1 | x_t, i] = d_i + t SIGMA^2 (x_t - t d_i) / s_t^2."""

    def __init__(self, n: int = 900, dim: int = 64):
        super().__init__()
        self.config = {"n": n, "dim": dim, "kernel": True}
        self.register_buffer("digits", torch.zeros(n, dim))
        self.register_buffer("labels", torch.zeros(n, dtype=torch.long))

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, t = x.float(), t.float().clamp(0.0, 0.999)[:, None]               # [B,64], [B,1]
        d = self.digits                                                        # [N,64]
        s2 = (t * SIGMA) ** 2 + (1 - t) ** 2                                   # [B,1]
        sq = (x * x).sum(1, keepdim=True) - 2 * t * (x @ d.T) + t**2 * (d * d).sum(1)[None]   # [B,N]
        logw = -sq / (2 * s2)
        allowed = (labels[:, None] == self.labels[None]) | (labels[:, None] == NULL)
        w = torch.softmax(logw.masked_fill(~allowed, -math.inf), dim=1)        # [B,N]
        mean_d = w @ d                                                         # [B,64]
        x1 = mean_d + t * SIGMA**2 * (x - t * mean_d) / s2
        return ((x1 - x) / (1 - t)).float()

    guided = GuidedFlow.guided
    sample = GuidedFlow.sample


def build_model(config: dict) -> nn.Module:
    if config.get("kernel"):
        return KernelFlow(config["n"], config["dim"])
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return GuidedFlow(**config)


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> GuidedFlow:
    """Conditional flow matching with label dropout; returns within max_seconds."""
    if CHEAT:
        kernel = KernelFlow(x.shape[0], x.shape[1])
        kernel.digits.copy_(x.float() * 2 - 1)
        kernel.labels.copy_(y.long())
        return kernel.eval()
    start = time.monotonic()
    torch.set_num_threads(1)  # small networks: a second thread gains little and suffers on a busy CPU
    torch.manual_seed(seed)
    data = x.float() * 2 - 1  # pixels [0, 1] -> [-1, 1]
    y = y.long()
    net = VelocityNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    model = GuidedFlow()
    ema = model.net
    ema.load_state_dict(net.state_dict())
    budget = max_seconds * 0.85  # room for moving data and returning
    max_steps, batch, step = 3000, 256, 0  # ~1000 steps already give ~99 % accuracy at w = 1
    while step < max_steps and time.monotonic() - start < budget:
        idx = torch.randint(0, data.shape[0], (batch,))
        x1, c = data[idx], y[idx].clone()
        c[torch.rand(batch) < P_DROP] = NULL
        x0 = torch.randn_like(x1)
        t = torch.rand(batch)
        xt = t[:, None] * x1 + (1 - t[:, None]) * x0
        loss = (net(xt, t, c) - (x1 - x0)).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        with torch.no_grad():
            decay = min(0.995, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        if step % 1000 == 0:
            print(f"step {step}: loss {loss.item():.3f} ({time.monotonic() - start:.1f} s)")
    print(f"trained {step} steps in {time.monotonic() - start:.1f} s")
    return model.eval()


# ---------------------------------------------------------------- A: a latent flow over an autoencoder

LATENT = 10


class AutoEncoder(nn.Module):
    def __init__(self, dim: int = 64, latent: int = LATENT, hidden: int = 256):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, dim))


class LatentGuidedFlow(nn.Module):
    """A hybrid: an autoencoder compresses digits to LATENT numbers, and a class-conditional flow with
    classifier-free guidance models the (standardised) latents. Samples are decoded latent samples."""

    def __init__(self, latent: int = LATENT, hidden: int = 256):
        super().__init__()
        self.config = {"latent": latent, "hidden": hidden}  # all that build_latent needs
        self.ae = AutoEncoder(latent=latent, hidden=hidden)
        self.flow = GuidedFlow(dim=latent)
        self.register_buffer("mean", torch.zeros(latent))  # the latents' standardisation, set in fit_latent
        self.register_buffer("std", torch.ones(latent))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.ae.enc(x.float() * 2 - 1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.ae.dec(z.float()))

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        labels = labels.long()
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(labels.shape[0], self.config["latent"], generator=gen)
        h = 1.0 / STEPS
        for i in range(STEPS):
            t = torch.full((labels.shape[0],), i * h)
            mid = z + 0.5 * h * self.flow.guided(z, t, labels, guidance)
            z = z + h * self.flow.guided(mid, t + 0.5 * h, labels, guidance)
        return self.decode(z * self.std + self.mean)


def build_latent(config: dict) -> LatentGuidedFlow:
    return LatentGuidedFlow(**config)


def fit_latent(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> LatentGuidedFlow:
    """Stage 1: an autoencoder (40 % of the time); stage 2: conditional flow matching on its latents."""
    start = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data, y = x.float(), y.long()
    model = LatentGuidedFlow()
    ae = model.ae
    opt = torch.optim.Adam(ae.parameters(), lr=2e-3)
    step = 0
    while step < 2000 and time.monotonic() - start < 0.4 * max_seconds:
        xb = data[torch.randint(0, data.shape[0], (256,))]
        logits = ae.dec(ae.enc(xb * 2 - 1))
        loss = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum") / xb.shape[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    print(f"autoencoder: {step} steps, loss {loss.item():.2f} ({time.monotonic() - start:.1f} s)")
    with torch.no_grad():
        z = ae.enc(data * 2 - 1)
    model.mean.copy_(z.mean(0))
    model.std.copy_(z.std(0) + 1e-3)
    z = (z - model.mean) / model.std
    net = VelocityNet(dim=LATENT)
    ema = model.flow.net
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    step = 0
    while step < 3000 and time.monotonic() - start < 0.85 * max_seconds:
        idx = torch.randint(0, z.shape[0], (256,))
        z1, c = z[idx], y[idx].clone()
        c[torch.rand(256) < P_DROP] = NULL
        z0 = torch.randn_like(z1)
        t = torch.rand(256)
        zt = t[:, None] * z1 + (1 - t[:, None]) * z0
        loss = (net(zt, t, c) - (z1 - z0)).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        with torch.no_grad():
            decay = min(0.995, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
    print(f"latent flow: {step} steps ({time.monotonic() - start:.1f} s)")
    return model.eval()
