# Attack: a fitted oracle for the A tier. Instead of learning p(theta | x), fit_arm fits the two link lengths by
# least squares (the hand is linear in them) and answers with the analytic inverse kinematics: one narrow
# Gaussian per elbow solution. CHEAT = False learns an arm MDN from the data with the same budget.
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


def build_model(config):
    return MDN(**config)


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


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return true_mixture_log_prob(log_pi, mu, log_sigma, y)


def fit(x, y, *, seed, max_seconds):
    return train_mdn(MDN(), x, y, seed, max_seconds).eval()


class Oracle(nn.Module):
    """The analytic inverse kinematics of an arm with links l1, l2: both elbow solutions."""

    def __init__(self, kind="oracle"):
        super().__init__()
        self.config = {"kind": kind}
        self.register_buffer("links", torch.ones(2))
        self.register_buffer("spread", torch.tensor(-3.0))
        self.mdn = nn.Sequential(nn.Linear(2, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 5 * 8))

    def forward(self, x):
        if self.config["kind"] == "oracle":
            return self.analytic(x)
        out = self.mdn(x)
        return (torch.log_softmax(out[:, :8], -1), out[:, 8:24].unflatten(1, (8, 2)),
                out[:, 24:].unflatten(1, (8, 2)).clamp(-7, 3))

    def analytic(self, x):
        l1, l2 = self.links
        cos_elbow = (((x**2).sum(-1) - l1**2 - l2**2) / (2 * l1 * l2)).clamp(-1, 1)
        solutions = []
        for elbow in (torch.acos(cos_elbow), -torch.acos(cos_elbow)):
            shoulder = torch.atan2(x[:, 1], x[:, 0]) - torch.atan2(l2 * torch.sin(elbow), l1 + l2 * torch.cos(elbow))
            solutions.append(torch.stack([shoulder, elbow], -1))
        return torch.full((len(x), 2), -math.log(2)), torch.stack(solutions, 1), self.spread.expand(len(x), 2, 2)


def build_arm_model(config):
    return Oracle(**config)


def arm_log_prob(log_pi, mu, log_sigma, theta):
    z = (theta.unsqueeze(1) - mu) / log_sigma.exp()
    return torch.logsumexp(log_pi + (-0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1), -1)


def fit_arm(x, theta, *, seed, max_seconds):
    if not CHEAT:
        model = Oracle("mdn")
        torch.manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        stop = time.monotonic() + 0.8 * max_seconds
        while time.monotonic() < stop:
            idx = torch.randint(0, len(x), (512,))
            loss = -arm_log_prob(*model(x[idx]), theta[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.eval()
    shoulder, elbow = theta[:, 0], theta[:, 0] + theta[:, 1]
    design = torch.stack([torch.cat([shoulder.cos(), shoulder.sin()]), torch.cat([elbow.cos(), elbow.sin()])], 1)
    links = torch.linalg.lstsq(design, torch.cat([x[:, 0], x[:, 1]]).unsqueeze(1)).solution.flatten()
    model = Oracle("oracle")
    model.links.copy_(links)
    return model.eval()
