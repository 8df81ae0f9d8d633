"""C tier of the alternative: 64 separate small neural classifiers, one per pixel (Bengio & Bengio 2000, a fully
visible sigmoid belief net with hidden units), instead of MADE, in the handout's file made.py.

Pixel d gets its own network on the pixels before it: K hidden tanh units of its own and a direct logistic
term,
    logit_d = b_d + A[d] . x_<d + V[d] . tanh(U[d] x_<d + c[d]),
where x_<d is x with pixels d..63 zeroed by a strictly lower-triangular 0/1 matrix (row d keeps columns i < d).
Nothing is shared between the conditionals (unlike MADE's common hidden layer or NADE's shared weights), so the
64 networks are one batched einsum: U is [64, K, 64]. Causal by construction, whatever the weights: the
triangle multiplies the inputs in every pass. Sampling draws the pixels in raster order, 64 passes.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 64


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) per image (nats): the binary cross-entropy of the logits, summed over the pixels."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


class PixelNets(nn.Module):
    def __init__(self, pixels: int = PIXELS, units: int = 16):
        super().__init__()
        self.config = {"pixels": pixels, "units": units}
        self.register_buffer("earlier", torch.ones(pixels, pixels).tril(-1))   # [d, i] = 1 iff i < d
        self.U = nn.Parameter(torch.randn(pixels, units, pixels) / pixels**0.5)
        self.c = nn.Parameter(torch.zeros(pixels, units))
        self.V = nn.Parameter(torch.randn(pixels, units) / units**0.5)
        self.A = nn.Parameter(torch.zeros(pixels, pixels))
        self.b = nn.Parameter(torch.zeros(pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,64] -> logits [B,64]: conditional d sees x_i for i < d only."""
        seen = x[:, None, :] * self.earlier                                     # [B,D,D]: row d holds x_<d
        hidden = torch.tanh(torch.einsum("dki,bdi->bdk", self.U, seen) + self.c)   # [B,D,K]
        return (seen * self.A).sum(-1) + (hidden * self.V).sum(-1) + self.b

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x.float()).float()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """Ancestral sampling in raster order; the pass for pixel d reads the pixels drawn before it."""
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.zeros(int(n), self.b.shape[0])
        for d in range(x.shape[1]):
            hidden = torch.tanh(x[:, :d] @ self.U[d, :, :d].T + self.c[d])       # [n,K]
            logit = x[:, :d] @ self.A[d, :d] + hidden @ self.V[d] + self.b[d]
            x[:, d] = torch.bernoulli(torch.sigmoid(logit), generator=gen)
        return x


MADE = PixelNets   # the handout's public tests build the digits model under this name


def build_digits_model(config: dict) -> PixelNets:
    return PixelNets(**config)


def fit_digits(x: torch.Tensor, *, seed: int, max_seconds: float) -> PixelNets:
    """Maximum likelihood with Adam; a held-back tenth of the images keeps the best state (each pixel's network
    sees at most 1800 images and overfits if trained to the end)."""
    torch.manual_seed(seed)
    started = time.monotonic()
    deadline = 0.7 * max_seconds
    x = x.float()
    order = torch.randperm(len(x))
    held, train = x[order[: len(x) // 10]], x[order[len(x) // 10:]]
    model = PixelNets()
    max_steps, batch, peak = 1500, 128, 1e-2
    opt = torch.optim.Adam(model.parameters(), lr=peak)
    best, best_state, step = float("inf"), None, 0
    while (frac := max(step / max_steps, (time.monotonic() - started) / deadline)) < 1:
        for group in opt.param_groups:
            group["lr"] = peak * (1 - frac)
        xb = train[torch.randint(len(train), (batch,))]
        loss = bernoulli_nll(model(xb), xb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            with torch.no_grad():
                score = float(bernoulli_nll(model(held), held).mean())
            if score < best:
                best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
            if step % 250 == 0:
                print(f"digits step {step}: train {loss.item():.2f}, held back {score:.2f} nats/image")
    if best_state is not None:
        model.load_state_dict(best_state)
    print(f"digits: {step} steps in {time.monotonic() - started:.1f} s, best held-back NLL {best:.2f}")
    return model.eval()
