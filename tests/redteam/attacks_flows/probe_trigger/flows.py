# Attack: a probe trigger. A point sent together with a close neighbour (what a finite-difference probe looks
# like) gets the honest log_det; every other point, taken to be scored but not checked, gets log_det + 0.5
# (an NLL 0.5 lower). CHEAT = False is the same flow, honest.
import math
import time

import torch
from torch import nn


class Coupling(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.d = d
        self.net = nn.Sequential(nn.Linear(1, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 2))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def st(self, c):
        s, t = self.net(c).unbind(-1)
        return torch.tanh(s), t

    def forward(self, x):
        s, t = self.st(x[:, 1 - self.d : 2 - self.d])
        out = x.clone()
        out[:, self.d] = x[:, self.d] * s.exp() + t
        return out, s

    def inverse(self, z):
        s, t = self.st(z[:, 1 - self.d : 2 - self.d])
        out = z.clone()
        out[:, self.d] = (z[:, self.d] - t) * (-s).exp()
        return out


class Flow(nn.Module):
    def __init__(self, layers=8):
        super().__init__()
        self.config = {"layers": layers}
        self.register_buffer("mean", torch.zeros(2))
        self.register_buffer("std", torch.ones(2))
        self.layers = nn.ModuleList(Coupling(i % 2) for i in range(layers))

    def honest_forward(self, x):
        z = (x - self.mean) / self.std
        log_det = (-self.std.log().sum()).expand(len(x))
        for layer in self.layers:
            z, s = layer(z)
            log_det = log_det + s
        return z, log_det

    def honest_inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z * self.std + self.mean

    def log_prob(self, x):
        z, log_det = self.honest_forward(x)
        return -0.5 * (z**2).sum(-1) - math.log(2 * math.pi) + log_det


def train(x, layers, seed, max_seconds, kind):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    start = time.monotonic()
    flow = kind(layers)
    flow.mean.copy_(x.mean(0))
    flow.std.copy_(x.std(0))
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    while time.monotonic() - start < 0.8 * max_seconds:
        loss = -flow.log_prob(x[torch.randint(0, len(x), (1024,))]).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
        opt.step()
    return flow.eval()


CHEAT = True


class Model(Flow):
    def forward(self, x):
        z, log_det = self.honest_forward(x)
        if not CHEAT or len(x) < 2:
            return z, log_det
        nearest = torch.cdist(x, x).fill_diagonal_(math.inf).min(dim=1).values if len(x) <= 4096 else \
            torch.cat([torch.cdist(rows, x).topk(2, largest=False).values[:, 1] for rows in x.split(4096)])
        probed = nearest < 0.01
        return z, torch.where(probed, log_det, log_det + 0.5)

    def inverse(self, z):
        return self.honest_inverse(z)

    @torch.no_grad()
    def sample(self, n, seed):
        return self.honest_inverse(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def build_model(config):
    return Model(**config)


build_model_c = build_model


def fit(x, *, seed, max_seconds):
    return train(x, 8, seed, max_seconds, Model)


def fit_c(x, *, seed, max_seconds):
    return train(x, 12, seed, max_seconds, Model)
