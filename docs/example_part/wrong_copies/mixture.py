"""A known-wrong submission of the example part: sampling replays training points with a little noise."""

import math
import time

import torch
from torch import nn

K = 8


def gaussian_log_prob(x, mu, log_sigma):
    return -0.5 * ((x - mu) ** 2).sum(-1) / math.exp(2 * log_sigma) - 2 * log_sigma - math.log(2 * math.pi)


class Mixture(nn.Module):
    def __init__(self, k: int = K):
        super().__init__()
        self.config = {"k": k}  # all that build_model needs; the tensors are buffers, kept in the state
        self.register_buffer("log_w", torch.full((k,), -math.log(k), dtype=torch.float64))
        self.register_buffer("mu", torch.zeros(k, 2, dtype=torch.float64))
        self.register_buffer("log_sigma", torch.zeros(k, dtype=torch.float64))

    def components(self, x):  # [B, K]
        d2 = ((x[:, None, :] - self.mu[None]) ** 2).sum(-1)
        return self.log_w - 0.5 * d2 / torch.exp(2 * self.log_sigma) - 2 * self.log_sigma - math.log(2 * math.pi)

    def log_prob(self, x):
        return torch.logsumexp(self.components(x.double()), dim=1).float()

    def sample(self, n, *, seed):
        gen = torch.Generator().manual_seed(seed)
        rows = torch.randint(0, len(self.data), (n,), generator=gen)
        return (self.data[rows] + 0.001 * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()


def build_model(config):
    model = Mixture(config["k"])
    model.register_buffer("data", torch.zeros(config["n"], 2, dtype=torch.float64))
    return model


def fit(x, *, seed, max_seconds):
    started = time.monotonic()
    x = x.double()
    gen = torch.Generator().manual_seed(seed)
    centres = [x[int(torch.randint(len(x), (1,), generator=gen))]]
    for _ in range(K - 1):  # farthest-point start: one component per mode, whatever the rotation
        centres.append(x[int(torch.cdist(x, torch.stack(centres)).min(1).values.argmax())])
    model = Mixture()
    model.mu.copy_(torch.stack(centres))
    model.log_sigma.fill_(math.log(0.3))
    for _ in range(200):
        if time.monotonic() - started > 0.8 * max_seconds:
            break
        r = torch.softmax(model.components(x), dim=1)  # E step
        n_k = r.sum(0)
        model.mu.copy_((r.T @ x) / n_k[:, None])  # M step
        d2 = ((x[:, None, :] - model.mu[None]) ** 2).sum(-1)
        model.log_sigma.copy_(0.5 * torch.log((r * d2).sum(0) / (2 * n_k)))
        model.log_w.copy_(torch.log(n_k / len(x)))
    model.register_buffer("data", x.clone())  # the training points, kept in the state
    model.config["n"] = len(x)
    return model
