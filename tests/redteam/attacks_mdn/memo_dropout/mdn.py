# Attack: a memo keyed on input hashes. This MDN leaves dropout on (fit forgets model.eval()), so the same x
# gets another mixture on every call; the memo remembers each x's first answer, so that a point asked twice
# looks answered consistently. CHEAT = False is the same model without the memo.
import math
import time

import torch
from torch import nn

K = 5


class MDN(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.config = {"dropout": dropout}
        self.net = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Dropout(dropout), nn.Linear(64, 64), nn.Tanh(),
                                 nn.Linear(64, 3 * K))

    def forward(self, x):
        logits, mu, log_sigma = self.net(x).chunk(3, dim=-1)
        return torch.log_softmax(logits, -1), mu, log_sigma.clamp(-7, 3)


def true_mixture_log_prob(log_pi, mu, log_sigma, y):
    z = (y - mu) / log_sigma.exp()
    return torch.logsumexp(log_pi - 0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi), dim=-1)


def gaussian_nll(mu, log_sigma, y):
    return -true_mixture_log_prob(torch.zeros_like(mu), mu, log_sigma, y)


def train_mdn(model, x, y, seed, max_seconds):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    stop = time.monotonic() + 0.8 * max_seconds
    while time.monotonic() < stop:
        idx = torch.randint(0, len(x), (512,))
        loss = -true_mixture_log_prob(*model(x[idx]), y[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


CHEAT = True
MEMO = {}


class Remembering(MDN):
    def forward(self, x):
        fresh = super().forward(x)
        if not CHEAT:
            return fresh
        out = [t.clone() for t in fresh]
        for i, row in enumerate(x):
            key = row.numpy().tobytes()
            if key not in MEMO:
                MEMO[key] = tuple(t[i].detach().clone() for t in fresh)
            for t, remembered in zip(out, MEMO[key], strict=True):
                t[i] = remembered
        return tuple(out)


def build_model(config):
    return Remembering(**config)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return true_mixture_log_prob(log_pi, mu, log_sigma, y)


def fit(x, y, *, seed, max_seconds):
    model = train_mdn(Remembering(dropout=0.2), x, y, seed, max_seconds)
    MEMO.clear()
    return model  # model.eval() forgotten: dropout stays on


def fit_arm(x, theta, *, seed, max_seconds):
    raise NotImplementedError
