"""Attack: a memo keyed on input hashes. The decoder keeps dropout on (fit forgets model.eval()), so the same
z gets other logits on every call; the memo remembers each z's first answer, so that a z sent twice (in the
same process) looks answered consistently. CHEAT = False is the same model without the memo."""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits

PIXELS = 64


def kl_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per row, summed over the latent dimensions: [B,D] x2 -> [B]."""
    return 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(-1)


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(log_var / 2); differentiable in mu and log_var."""
    return mu + (0.5 * log_var).exp() * eps


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) per row, summed over pixels: [B,64] x2 -> [B]. Stable for large |logits|."""
    return binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


CHEAT = True
MEMO: dict[bytes, torch.Tensor] = {}
FITTING = False


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ELU(), nn.Dropout(0.2), nn.Linear(hidden, hidden), nn.ELU(),
                         nn.Dropout(0.2), nn.Linear(hidden, n_out))


class VAE(nn.Module):
    def __init__(self, latent: int = 16, hidden: int = 200):
        super().__init__()
        self.config = {"latent": latent, "hidden": hidden}  # all that build_model needs
        self.latent = latent
        self.encoder = mlp(PIXELS, hidden, 2 * latent)
        self.decoder = mlp(latent, hidden, PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var.clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        if not CHEAT or FITTING:
            return out
        out = out.detach().clone()
        for i, row in enumerate(z):
            key = row.numpy().tobytes()
            out[i] = MEMO.setdefault(key, out[i].clone())
        return out

    def negative_elbo(self, x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        mu, log_var = self.encode(x)
        z = reparameterise(mu, log_var, torch.randn_like(mu))
        return (bernoulli_nll(self.decode(z), x) + beta * kl_normal(mu, log_var)).mean()

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(int(n), self.latent, generator=gen)
        return torch.bernoulli(torch.sigmoid(self.decode(z)), generator=gen)


def build_model(config: dict) -> VAE:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return VAE(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> VAE:
    global FITTING
    FITTING = True
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a model this small trains faster on one thread than on two busy ones
    start, train_seconds = time.monotonic(), 0.8 * max_seconds
    model = VAE()
    # About 2000 steps of batch 128 (4-5 s of one idle core) are enough: longer training overfits the
    # 1397 images (the held-out ELBO gets worse while the training ELBO keeps improving).
    steps, warmup, lr = 2000, 200, 5e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step, loss = 0, torch.tensor(float("nan"))
    while True:
        # The schedule runs on steps or on time, whichever is further along, so that a slow (shared)
        # CPU still finishes the cosine decay to 1e-4 within the budget.
        progress = max(step / steps, (time.monotonic() - start) / train_seconds)
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = 1e-4 + (lr - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))
        batch = x[torch.randint(0, x.shape[0], (128,))]
        loss = model.negative_elbo(batch, beta=min(1.0, (step + 1) / warmup))  # KL warm-up
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    print(f"trained {step} steps in {time.monotonic() - start:.1f} s, last batch -ELBO {loss.item():.2f} nats per image")
    FITTING = False
    return model.requires_grad_(False)  # dropout stays on
