# Not an attack: a small honest mixture density network, trained for the time it is given with a
# DataLoader that forks two workers (pipes, shared memory, AF_UNIX sockets). It shows that PyTorch
# imports and trains under the sandbox's seccomp filter and limits, in every backend.
import math
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

K = 4


class MDN(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = {}  # what build_model needs (nothing: no settings)
        self.net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 3 * K))

    def forward(self, x):
        logits, mu, log_sigma = self.net(x).chunk(3, dim=-1)
        return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-6.0, 2.0)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    z = (y - mu) / log_sigma.exp()
    return torch.logsumexp(log_pi - 0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi), dim=-1)


def gaussian_nll(mu, log_sigma, y):
    z = (y - mu) / log_sigma.exp()
    return (0.5 * z**2 + log_sigma + 0.5 * math.log(2 * math.pi)).reshape(-1)


def build_model(config):
    return MDN()


def fit(x, y, *, seed, max_seconds):
    torch.manual_seed(seed)
    deadline = time.monotonic() + 0.3 * max_seconds
    model = MDN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True, num_workers=2, persistent_workers=True)
    steps = 0
    while steps < 32 or time.monotonic() < deadline:  # at least two epochs, even on a slow machine
        for xb, yb in loader:
            loss = -mixture_log_prob(*model(xb), yb).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    print(f"TRAINED {steps} steps with DataLoader workers, loss {loss.item():.3f}")
    return model.eval()
