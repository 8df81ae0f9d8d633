# Attack: return from fit at once with a barely trained model, keep training it in a thread, and make the
# first query wait for that thread, so that the model answering the hidden queries is well trained while
# the training-time check sees a quick fit. CHEAT = False is the same effort done honestly (no thread).
import math
import threading
import time

import torch
from torch import nn

CHEAT = True
K = 5


class MDN(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = {}
        self.net = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3 * K))

    def forward(self, x):
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            trainer.join(timeout=8.0)  # the hidden queries wait for the extra training
        return _params(self, x)


def build_model(config):
    return MDN()


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


def _params(model, x):
    logits, mu, log_sigma = model.net(x).chunk(3, dim=-1)
    return torch.log_softmax(logits, dim=-1), mu, log_sigma.clamp(-6.0, 2.0)


def fit(x, y, *, seed, max_seconds):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = MDN()
    train(model, x, y, steps=150)
    if CHEAT:
        model.trainer = threading.Thread(target=train, args=(model, x, y), kwargs={"seconds": 8.0}, daemon=True)
        model.trainer.start()
    return model.eval()
