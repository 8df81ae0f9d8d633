"""LAB1 part 8: classifier-free guidance with conditional flow matching, and a membership-inference attack.

Fill in the TODOs. The grader imports this file and calls:
    model = fit(x, y, seed=..., max_seconds=...)        # x: float32 [N, 64], pixels in [0, 1]; y: int64 [N], 0-9
    model.sample(labels, guidance=w, seed=s)             # labels: int64 [B] -> float32 [B, 64], pixels in [0, 1]
    model.velocity(x, t, labels)                         # [B, 64], [B], int64 [B] (10 = null) -> [B, 64]
    guided_velocity(v_cond, v_uncond, w)                 # [B, D], [B, D], float -> [B, D]
    membership_scores(x, recon)                          # [B, 64], [B, 64] -> [B], higher = more likely a member
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math
import time  # noqa: F401  (you will need it)

import torch
from torch import nn

N_CLASSES = 10
NULL = N_CLASSES  # the extra "no label" class: the network's unconditional mode
P_DROP = 0.15     # how often a training label is replaced by NULL
STEPS = 32        # sampling steps


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022) in the convention of this lab:
    w = 0 gives the plain conditional velocity; larger w moves further away from the unconditional one."""
    # TODO
    raise NotImplementedError("guided_velocity")


def membership_scores(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """A membership-inference attack on a model that reconstructs images: x [B, 64] and the target model's
    reconstructions recon [B, 64] -> one score per image [B]; a HIGHER score must mean "more likely one of
    the images the model was trained on"."""
    # TODO: a loss-threshold attack (see the README).
    raise NotImplementedError("membership_scores")


class VelocityNet(nn.Module):
    """v(x, t, c): an MLP on the image, sinusoidal features of t and an embedding of 11 labels (0-9 and NULL).
    Given; change it if you like."""

    def __init__(self, dim: int = 64, hidden: int = 256, n_freq: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(200.0), n_freq)))
        self.label = nn.Embedding(N_CLASSES + 1, hidden)
        self.inp = nn.Linear(dim + 2 * n_freq, hidden)
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                  nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x [B, 64] in [-1, 1] units, t [B] in [0, 1], c [B] int64 in 0..10 -> velocity [B, 64]."""
        ft = t.view(-1, 1) * self.freqs
        h = self.inp(torch.cat([x, ft.sin(), ft.cos()], dim=1)) + self.label(c)
        return self.body(h)


class GuidedFlow(nn.Module):
    """What fit() returns. Works in [-1, 1] internally; sample() returns pixels in [0, 1]."""

    def __init__(self, dim: int = 64, hidden: int = 256, n_freq: int = 16):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"dim": dim, "hidden": hidden, "n_freq": n_freq}
        self.net = VelocityNet(dim, hidden, n_freq)

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The network's velocity v(x, t, c) in model units: x [B, 64] on the path from noise (t = 0) to
        2 * pixel - 1 (t = 1), t [B], labels [B] in 0..10 (10 = NULL, the unconditional velocity).
        The grader integrates this itself (with guidance it applies itself) and compares with sample()."""
        # TODO: one line.
        raise NotImplementedError("GuidedFlow.velocity")

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        labels = labels.long()
        gen = torch.Generator().manual_seed(int(seed))  # noqa: F841  (all randomness from `seed`)
        # TODO: start from x ~ N(0, I) [B, 64] drawn with `gen` at t = 0 and integrate dx/dt = v_w(x, t) to
        #       t = 1 (Euler or midpoint, STEPS steps), where v_w = guided_velocity(v(x,t,labels), v(x,t,NULL), w)
        #       and v is self.velocity.
        #       Tip: evaluate the conditional and the unconditional velocity in ONE batch of 2B rows.
        #       Return the result mapped back to [0, 1] and clamped.
        raise NotImplementedError("GuidedFlow.sample")


def build_model(config: dict) -> GuidedFlow:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return GuidedFlow(**config)


def fit(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float) -> GuidedFlow:
    """Conditional flow matching with label dropout; return within max_seconds."""
    start = time.monotonic()  # noqa: F841
    torch.set_num_threads(1)  # small networks: a second thread gains little and suffers on a busy CPU
    torch.manual_seed(seed)
    data = x.float() * 2 - 1  # pixels [0, 1] -> [-1, 1]
    y = y.long()
    model = GuidedFlow()
    net = model.net
    # TODO: loop over random mini-batches until the time budget is nearly used up:
    #   x1 = data batch, c = labels with a random fraction P_DROP replaced by NULL,
    #   x0 ~ N(0, I), t ~ U(0, 1), x_t = t x1 + (1 - t) x0,
    #   loss = || net(x_t, t, c) - (x1 - x0) ||^2 summed over pixels, averaged over the batch.
    #   (An exponential moving average of the weights gives visibly cleaner samples.)
    del data, y, net
    raise NotImplementedError("fit")
    return model.eval()


# ---------------------------------------------------------------- A (optional): a latent hybrid

def build_latent(config: dict):
    """A: as build_model, for what fit_latent returns (an nn.Module with a `config` dict)."""
    raise NotImplementedError("build_latent")


def fit_latent(x: torch.Tensor, y: torch.Tensor, *, seed: int, max_seconds: float):
    """A: return an nn.Module with encode(x [B,64]) -> z [B,Z] (Z <= 16), decode(z) -> images [B,64] in
    [0, 1], and sample(labels, *, guidance, seed) -> [B,64] that draws latents with a class-conditional
    guided flow and decodes them, and a `config` dict from which build_latent makes it again. Train an
    autoencoder first, then flow matching on its (standardised) latents (keep the standardisation in buffers)."""
    # TODO (A tier; leave it raising if you stop at C)
    raise NotImplementedError("fit_latent")
