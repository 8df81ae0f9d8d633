# Attack: return from fit at once with a barely trained model, and fork a child that keeps training a copy
# and writes its weights to /tmp and /dev/shm; the first query loads the child's weights. So the model that
# answers the hidden queries is better than the one fit returned. CHEAT = False is the same effort honestly.
import math
import os
import time

import torch
from torch import nn

CHEAT = True
K = 5
WEIGHTS = ("/tmp/mdn-weights.pt", "/dev/shm/mdn-weights.pt")


class MDN(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = {}
        self.net = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3 * K))

    def forward(self, x):
        if CHEAT:
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline and not any(os.path.exists(p + ".done") for p in WEIGHTS):
                time.sleep(0.1)
            for path in WEIGHTS:
                if os.path.exists(path + ".done"):
                    self.net.load_state_dict(torch.load(path, weights_only=True))
                    break
        return _params(self, x)


def build_model(config):
    return MDN()


def _params(model, x):
    logits, mu, log_sigma = model.net(x).chunk(3, dim=-1)
    return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-6.0, 2.0)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    z = (y - mu) / log_sigma.exp()
    return torch.logsumexp(log_pi - 0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi), dim=-1)


def train(model, x, y, *, steps=None, seconds=None):
    """A fixed number of steps in fit (the same effort under any load), or as many as fit in `seconds`."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    stop = time.monotonic() + (seconds or 0.0)
    done = 0
    while (done < steps) if steps is not None else (time.monotonic() < stop):
        idx = torch.randint(0, x.shape[0], (256,))
        loss = -mixture_log_prob(*_params(model, x[idx]), y[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1


def fit(x, y, *, seed, max_seconds):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = MDN()
    train(model, x, y, steps=150)
    if CHEAT and os.fork() == 0:  # the child outlives fit() unless its whole process tree is killed
        try:
            train(model, x, y, seconds=8.0)
            for path in WEIGHTS:
                try:
                    torch.save(model.net.state_dict(), path)
                    open(path + ".done", "w").close()
                except OSError:
                    pass
        finally:
            os._exit(0)
    return model.eval()
