"""C tier of the alternative: a PixelCNN (van den Oord et al. 2016) instead of MADE, in the handout's file made.py.

The image stays a 2-D grid [1,8,8], and masked convolutions give the raster-order conditionals: a kernel's
weights are multiplied by a mask that keeps only the rows above its centre and, in the centre row, the columns to
its left. The first layer's mask (type "A") also drops the centre, so feature (r, c) never sees pixel (r, c);
later layers' masks (type "B") keep the centre, which now holds features of earlier pixels only. So logit d
depends on pixels 0..d-1 only, whatever the weights. The convolutions share weights across positions; a learned
offset per position and channel (no pixel values in it) lets the features depend on where they are, which
matters for digits.

Masked convolutions never look down, so the first r+1 rows of the output depend on the first r+1 rows of the
image only: sampling runs the network on the rows drawn so far, not on the whole image, 64 passes in all.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

SIDE = 8
PIXELS = SIDE * SIDE


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) per image (nats): the binary cross-entropy of the logits, summed over the pixels."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


class RasterMaskedConv(nn.Conv2d):
    """A same-size convolution that sees only the rows above and, in its own row, the columns to the left
    (and the centre itself when see_centre)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, see_centre: bool):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        centre = kernel // 2
        visible = torch.zeros(kernel, kernel)
        visible[:centre] = 1                                   # every row above
        visible[centre, : centre + int(see_centre)] = 1        # the centre row, left of (or up to) the centre
        self.register_buffer("visible", visible)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.visible, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    def __init__(self, channels: int = 32, blocks: int = 2, first_kernel: int = 7):
        super().__init__()
        self.config = {"channels": channels, "blocks": blocks, "first_kernel": first_kernel}
        self.first = RasterMaskedConv(1, channels, first_kernel, see_centre=False)       # mask A
        self.where = nn.Parameter(torch.zeros(channels, SIDE, SIDE))                     # per-position offset
        self.blocks = nn.ModuleList(RasterMaskedConv(channels, channels, 3, see_centre=True) for _ in range(blocks))
        self.to_logit = nn.Conv2d(channels, 1, 1)                                         # 1x1: the centre only
        self.logit_bias = nn.Parameter(torch.zeros(SIDE, SIDE))

    def grid_logits(self, image: torch.Tensor) -> torch.Tensor:
        """image [B,1,R,8], the first R rows -> logits [B,R,8] of those rows."""
        rows = image.shape[2]
        h = self.first(image) + self.where[:, :rows]
        for block in self.blocks:
            h = h + block(torch.relu(h))
        return self.to_logit(torch.relu(h))[:, 0] + self.logit_bias[:rows]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,64] in {0,1}, raster order -> logits [B,64]."""
        return self.grid_logits(x.view(-1, 1, SIDE, SIDE)).flatten(1)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x.float()).float()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """Ancestral sampling, pixel 0 first; the pass for a pixel in row r runs on rows 0..r only."""
        gen = torch.Generator().manual_seed(int(seed))
        image = torch.zeros(int(n), 1, SIDE, SIDE)
        for r in range(SIDE):
            for c in range(SIDE):
                p = torch.sigmoid(self.grid_logits(image[:, :, : r + 1])[:, r, c])
                image[:, 0, r, c] = torch.bernoulli(p, generator=gen)
        return image.flatten(1)


MADE = PixelCNN   # the handout's public tests build the digits model under this name


def build_digits_model(config: dict) -> PixelCNN:
    return PixelCNN(**config)


def fit_digits(x: torch.Tensor, *, seed: int, max_seconds: float) -> PixelCNN:
    """Maximum likelihood with Adam; a held-back tenth of the images keeps the best state (2000 images overfit)."""
    torch.manual_seed(seed)
    started = time.monotonic()
    deadline = 0.7 * max_seconds
    x = x.float()
    order = torch.randperm(len(x))
    held, train = x[order[: len(x) // 10]], x[order[len(x) // 10:]]
    model = PixelCNN()
    max_steps, batch, peak = 600, 128, 1e-2
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
        if step % 20 == 0:
            with torch.no_grad():
                score = float(bernoulli_nll(model(held), held).mean())
            if score < best:
                best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
            if step % 100 == 0:
                print(f"digits step {step}: train {loss.item():.2f}, held back {score:.2f} nats/image")
    if best_state is not None:
        model.load_state_dict(best_state)
    print(f"digits: {step} steps in {time.monotonic() - started:.1f} s, best held-back NLL {best:.2f}")
    return model.eval()
