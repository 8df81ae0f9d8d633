"""Reference solution of LAB1 part 8: classifier-free guidance with conditional flow matching on 8x8
digits, and a loss-threshold membership-inference attack.

Flow matching (linear path): x_t = t x1 + (1 - t) x0 with x0 ~ N(0, I) at t = 0 and data x1 at t = 1;
the network v(x_t, t, c) regresses the conditional velocity x1 - x0. With probability P_DROP the label
is replaced by the null label NULL, so the same network also learns the unconditional velocity.
Classifier-free guidance (Ho & Salimans 2022) samples with
    v_w = v(x, t, c) + w (v(x, t, c) - v(x, t, NULL)),
so w = 0 is the plain conditional model and w > 0 pushes samples towards what makes them "more c".
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


def build_model(config: dict) -> GuidedFlow:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return GuidedFlow(**config)


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> GuidedFlow:
    """Conditional flow matching with label dropout; returns within max_seconds."""
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
