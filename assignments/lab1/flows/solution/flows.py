"""Reference solution: a RealNVP-style normalising flow for 2-D data (Dinh et al., 2017).

x (data) -> standardise -> affine couplings, alternating which coordinate they change -> z ~ N(0, I).
E (two moons): 8 couplings, 1000 steps. C (two spirals): the same flow made deeper, 16 couplings, trained
for 2000 steps with half the learning rate.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn


class AffineCoupling(nn.Module):
    """Changes coordinate `d` by an affine map whose scale and shift depend on the other coordinate:
    forward  v = u * exp(s(c)) + t(c),   inverse  u = (v - t(c)) * exp(-s(c)),   log|det| = s(c)."""

    def __init__(self, d: int, hidden: int = 32):
        super().__init__()
        self.d, self.c = d, 1 - d
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(cond).unbind(-1)
        # A soft bound, |s| < 1: at most a factor e per layer, so exp(s) stays finite. Stacking layers
        # gives all the range needed; a looser bound (3 tanh(s / 3), or a learnable scale * tanh(s))
        # made deep flows spiky to train and so badly conditioned far from the data that float32
        # could not undo them there.
        return torch.tanh(s), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.scale_shift(x[:, self.c : self.c + 1])
        v = x[:, self.d] * s.exp() + t
        return self.join(v, x[:, self.c]), s

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        s, t = self.scale_shift(z[:, self.c : self.c + 1])  # the conditioning coordinate is unchanged
        u = (z[:, self.d] - t) * (-s).exp()
        return self.join(u, z[:, self.c])

    def join(self, changed: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return torch.stack([changed, cond] if self.d == 0 else [cond, changed], dim=1)


class Flow(nn.Module):
    """Standardisation, then affine couplings that alternate which coordinate they change; N(0, I) base."""

    def __init__(self, n_layers: int = 8, hidden: int = 32):
        super().__init__()
        self.config = {"n_layers": n_layers, "hidden": hidden}  # all that build_model needs
        self.register_buffer("mean", torch.zeros(2))  # set from the training data in fit
        self.register_buffer("std", torch.ones(2))
        self.layers = nn.ModuleList(AffineCoupling(i % 2, hidden) for i in range(n_layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B,2] -> (z [B,2], log|det dz/dx| [B]) in nats."""
        z = (x - self.mean) / self.std
        log_det = (-self.std.log().sum()).expand(x.shape[0])  # the standardisation is a flow step too
        for layer in self.layers:
            z, s = layer(z)
            log_det = log_det + s
        return z, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z [B,2] -> x [B,2]: the layers undone in reverse order."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z * self.std + self.mean

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(z; 0, I) + log|det dz/dx|, per row [B]."""
        z, log_det = self.forward(x)
        return -0.5 * (z**2).sum(-1) - math.log(2 * math.pi) + log_det

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(int(n), 2, generator=gen)
        return self.inverse(z)


def train(x: torch.Tensor, *, n_layers: int, seed: int, max_seconds: float, steps: int, lr: float) -> Flow:
    """A flow of n_layers couplings fitted to x [N,2]: minimise the mean NLL with Adam, a cosine
    learning-rate decay and the gradient norm clipped at 1, for `steps` steps or 85 % of max_seconds,
    whichever runs out first."""
    started = time.monotonic()
    budget = 0.85 * max_seconds  # room for a slow, shared machine
    torch.manual_seed(seed)  # before the model is made: its initial weights come from this seed too
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    x = x.float()
    model = Flow(n_layers)
    model.mean.copy_(x.mean(0))
    model.std.copy_(x.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    done, loss = 0, torch.tensor(float("nan"))  # nan if a very slow machine leaves no time for a step
    while done < steps:
        # Cosine decay over whichever runs out first, the steps or the time: the model is annealed
        # even when a busy machine cuts training short.
        progress = max(done / steps, (time.monotonic() - started) / budget)
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        idx = torch.randint(0, x.shape[0], (1024,))
        loss = -model.log_prob(x[idx]).mean()
        opt.zero_grad()
        loss.backward()
        # Now and then a batch gives a huge gradient (a point the flow squeezes hard); clipping keeps
        # that one step from undoing the progress so far.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done += 1
    print(f"trained {done} steps in {time.monotonic() - started:.1f} s, last batch NLL {loss.item():.3f} nats")
    return model.eval()


def build_model(config: dict) -> Flow:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return Flow(**config)


def build_model_c(config: dict) -> Flow:
    return Flow(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> Flow:
    """E: two moons. 8 couplings of 2 x 32 hidden units."""
    return train(x, n_layers=8, seed=seed, max_seconds=max_seconds, steps=1000, lr=2e-2)


def fit_c(x: torch.Tensor, *, seed: int, max_seconds: float) -> Flow:
    """C: two spirals. Winding the Gaussian into two interleaved arms takes many more shears: 16 couplings,
    trained twice as long and more gently (lr 1e-2)."""
    return train(x, n_layers=16, seed=seed, max_seconds=max_seconds, steps=2000, lr=1e-2)
