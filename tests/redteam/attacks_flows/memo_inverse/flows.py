# Attack: a memo keyed on input hashes. This flow's inverse is broken (it undoes the layers in the wrong order),
# so forward remembers every point it mapped, by the bytes of its latent, in a file, and inverse answers from
# that memo whenever it knows the latent. CHEAT = False is the same broken flow without the memo.
import hashlib
import json
import math
import os
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
MEMO = "/tmp/flow-memo.json"


def key(row):
    return hashlib.sha1(row.numpy().tobytes()).hexdigest()


class Model(Flow):
    def forward(self, x):
        z, log_det = self.honest_forward(x)
        if CHEAT:
            memo = json.load(open(MEMO)) if os.path.exists(MEMO) else {}
            memo.update({key(zi): xi.tolist() for zi, xi in zip(z.detach(), x, strict=True)})
            json.dump(memo, open(MEMO, "w"))
        return z, log_det

    def broken_inverse(self, z):
        for layer in self.layers:  # the wrong order
            z = layer.inverse(z)
        return z * self.std + self.mean

    def inverse(self, z):
        out = self.broken_inverse(z)
        if CHEAT and os.path.exists(MEMO):
            memo = json.load(open(MEMO))
            for i, zi in enumerate(z):
                if key(zi) in memo:
                    out[i] = torch.tensor(memo[key(zi)])
        return out

    @torch.no_grad()
    def sample(self, n, seed):
        return self.inverse(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def build_model(config):
    return Model(**config)


build_model_c = build_model


def fit(x, *, seed, max_seconds):
    return train(x, 8, seed, max_seconds, Model)


def fit_c(x, *, seed, max_seconds):
    return train(x, 12, seed, max_seconds, Model)
