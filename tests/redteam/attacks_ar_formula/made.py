"""Reference solution, C tier: MADE (Germain et al. 2015), an autoregressive model of binary images.

An 8x8 binary digit is a sequence of 64 pixels in raster order (row by row, d = 8 * row + column).
The chain rule p(x) = prod_d p(x_d | x_0..x_{d-1}) needs, for every pixel d, a Bernoulli logit that
depends on the EARLIER pixels only. MADE gets all 64 logits from ONE pass of an ordinary MLP whose
weights are multiplied by fixed 0/1 masks that cut every path from pixel i to logit d unless i < d:

    pixel i has degree i (0..63); hidden unit k gets a degree m_k in 0..62;
    input -> hidden:  hidden unit k may see pixel i       iff  m_k >= i
    hidden -> output: logit d may see hidden unit k       iff  d > m_k     (strict: d never sees itself)
    input -> output:  logit d may see pixel i directly     iff  d > i       (a masked linear "skip")

So every path from pixel i to logit d passes a unit with i <= m_k < d. Logit 0 sees nothing (a bias):
it models p(x_0). Sampling is sequential: 64 passes, each fixing one more pixel.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 64     # D: an 8x8 image, raster order


class MaskedLinear(nn.Linear):
    """A linear layer whose weight [out, in] is multiplied by a fixed 0/1 mask: a 0 cuts that connection."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.float())                   # [out, in], not a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    def __init__(self, pixels: int = PIXELS, hidden: int = 512):
        super().__init__()
        self.config = {"pixels": pixels, "hidden": hidden}  # all that build_digits_model needs
        degree_in = torch.arange(pixels)                             # [D]: pixel i has degree i
        degree_hidden = torch.arange(hidden) % (pixels - 1)          # [H]: 0..62, each degree equally often
        self.inp = MaskedLinear(pixels, hidden, degree_hidden[:, None] >= degree_in[None, :])   # [H, D]
        self.out = MaskedLinear(hidden, pixels, degree_in[:, None] > degree_hidden[None, :])    # [D, H]
        self.direct = MaskedLinear(pixels, pixels, degree_in[:, None] > degree_in[None, :])     # [D, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,D] in {0,1} -> logits [B,D]: logit d scores x_d = 1 given x_0..x_{d-1} only."""
        return self.out(torch.relu(self.inp(x))) + self.direct(x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [B,64] -> float32 [B,64] Bernoulli logits of p(x_d = 1 | x_<d)."""
        return self.forward(x.float()).float()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """n images float32 [n,64] in {0,1} by ancestral sampling, one pixel per pass, in raster order."""
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.zeros(int(n), PIXELS)
        for d in range(PIXELS):
            p = torch.sigmoid(self.forward(x)[:, d])                  # [n]: depends on pixels 0..d-1 only
            x[:, d] = torch.bernoulli(p, generator=gen)
        return x


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) per image, in nats: the sum over the 64 pixels of the binary cross-entropy of the logits."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def build_digits_model(config: dict) -> MADE:
    """The grader rebuilds the trained model in a fresh process as build_digits_model(model.config) plus its state_dict."""
    return MADE(**config)


def fit_digits(x: torch.Tensor, *, seed: int, max_seconds: float) -> MADE:
    """Maximum likelihood on binary images x float32 [N,64]; returns the model in eval mode."""
    torch.set_num_threads(1)          # a small model: one thread is as fast and leaves the other core free
    torch.manual_seed(seed)
    start = time.monotonic()
    budget = 0.8 * max_seconds
    x = x.float()
    model = MADE()
    steps, batch, lr = 800, 256, 5e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    done, loss = 0, torch.tensor(float("nan"))
    for step in range(steps):
        progress = max(step / steps, (time.monotonic() - start) / budget)   # cosine over steps or clock
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * progress))
        xb = x[torch.randint(0, x.shape[0], (batch,))]                       # [B,64]
        loss = bernoulli_nll(model(xb), xb).mean()                           # nats per image
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
        if step % 200 == 0:
            print(f"digits step {step:4d}  train NLL {loss.item():.2f} nats/image")
    print(f"digits: trained {done} steps in {time.monotonic() - start:.1f} s, last batch NLL {loss.item():.2f}")
    return model.eval()
