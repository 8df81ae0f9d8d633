"""C tier of the alternative: NADE (Larochelle & Murray 2011) instead of MADE, in the handout's file made.py.

NADE shares one hidden layer across all 64 conditionals: the pre-activation of pixel d's hidden layer is
a_d = c + sum_{i<d} W[:, i] x_i, so it grows by one column per pixel (a running sum, computed for all d at
once with an exclusive cumulative sum), and

    h_d = sigmoid(a_d),    logit_d = b_d + V[d] . h_d.

Logit d uses pixels 0..d-1 only by construction (the cumulative sum stops before pixel d): no masks. Sampling
updates the running sum one pixel at a time, 64 cheap steps.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 64
MAX_STEPS, PEAK_LR, BATCH = 1500, 2e-2, 64


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) per image (nats): binary cross-entropy of the logits summed over the pixels."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


class NADE(nn.Module):
    def __init__(self, pixels: int = PIXELS, hidden: int = 128):
        super().__init__()
        self.config = {"pixels": pixels, "hidden": hidden}
        self.W = nn.Parameter(torch.randn(hidden, pixels) * 0.05)     # pixel i -> hidden pre-activation
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(pixels, hidden) * 0.05)     # hidden layer of pixel d -> logit d
        self.b = nn.Parameter(torch.zeros(pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,D] -> logits [B,D]; logit d depends on x_0..x_{d-1} only."""
        contributions = x[:, :, None] * self.W.T[None]                  # [B,D,H]: pixel i's share
        running = contributions.cumsum(dim=1) - contributions          # exclusive: pixels before d
        hidden = torch.sigmoid(running + self.c)                        # [B,D,H]
        return (hidden * self.V[None]).sum(-1) + self.b

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x.float()).float()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """Ancestral sampling in raster order, updating the running pre-activation pixel by pixel."""
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.zeros(int(n), self.W.shape[1])
        a = self.c.expand(int(n), -1).clone()                           # [n,H]: a_0 = c
        for d in range(x.shape[1]):
            p = torch.sigmoid(torch.sigmoid(a) @ self.V[d] + self.b[d])
            x[:, d] = torch.bernoulli(p, generator=gen)
            a = a + x[:, d:d + 1] * self.W[:, d]
        return x


MADE = NADE   # the handout's public tests build the digits model under this name


def build_digits_model(config: dict) -> NADE:
    return NADE(**config)


def fit_digits(x: torch.Tensor, *, seed: int, max_seconds: float) -> NADE:
    torch.set_num_threads(1)     # one thread: a second one only waits for the first on a shared CPU
    torch.manual_seed(seed)
    t0 = time.monotonic()
    deadline = 0.75 * max_seconds
    x = x.float()
    # A held-out tenth picks the best checkpoint: NADE overfits 2000 images if trained to the end.
    order = torch.randperm(len(x))
    valid, train = x[order[: len(x) // 10]], x[order[len(x) // 10:]]
    model = NADE()
    opt = torch.optim.Adam(model.parameters(), lr=PEAK_LR)
    best, best_state, step = float("inf"), None, 0
    while (frac := max(step / MAX_STEPS, (time.monotonic() - t0) / deadline)) < 1:
        for group in opt.param_groups:
            group["lr"] = PEAK_LR * (1 - frac)                           # linear decay to 0 over steps or time
        xb = train[torch.randint(len(train), (BATCH,))]
        loss = bernoulli_nll(model(xb), xb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            with torch.no_grad():
                held = float(bernoulli_nll(model(valid), valid).mean())
            if held < best:
                best, best_state = held, {k: v.clone() for k, v in model.state_dict().items()}
            if step % 250 == 0:
                print(f"digits step {step}: train {loss.item():.2f}, held-out {held:.2f} nats/image")
    if best_state is not None:
        model.load_state_dict(best_state)
    print(f"digits: {step} steps in {time.monotonic() - t0:.1f} s, best held-out {best:.2f}")
    return model.eval()
