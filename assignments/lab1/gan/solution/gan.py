"""Reference solution: a GAN on a ring of Gaussians, with the non-saturating generator loss and
PacGAN-2 (the discriminator judges pairs of samples, which makes mode collapse visible to it)."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- losses (all from logits)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], with D = sigmoid(logit). log D = -softplus(-l) and
    log(1 - D) = -softplus(l), which stay finite for any logit. The two batches may differ in size."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss E[log(1 - D(G(z)))] (the generator minimises it)."""
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -E[log D(G(z))]."""
    return F.softplus(-fake_logits).mean()


def optimal_discriminator(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """D*(x) = p(x) / (p(x) + q(x)) = sigmoid(log p - log q): no exp of a log-density, so no 0/0."""
    return torch.sigmoid(log_p - log_q)


def gradient_penalty(critic, x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor | None = None,
                     lam: float = 10.0) -> torch.Tensor:
    """WGAN-GP: lam * mean_i (||grad_x critic(x_hat_i)|| - 1)^2 at x_hat_i = alpha_i x_real_i + (1 - alpha_i) x_fake_i."""
    if alpha is None:
        alpha = torch.rand(x_real.shape[0], 1, dtype=x_real.dtype)
    x_hat = (alpha * x_real + (1 - alpha) * x_fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lam * ((grad.norm(dim=1) - 1) ** 2).mean()


def two_layer_critic(x, w, W1, b1, w2):
    """f(x) = x.w + tanh(x W1^T + b1).w2 (given; with W1 = 0 and w2 = 0 it is the linear critic x.w)."""
    return x @ w + torch.tanh(x @ W1.T + b1) @ w2


def critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    """Given: what the grader calls, your gradient_penalty on the critic above."""
    penalty = gradient_penalty(lambda x: two_layer_critic(x, w, W1, b1, w2), x_real, x_fake, alpha, lam)
    return float(torch.as_tensor(penalty).detach())


# ---------------------------------------------------------------- the model


def mlp(n_in: int, n_out: int, hidden: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))


class GAN(nn.Module):
    def __init__(self, z_dim: int = 2, pack: int = 2, hidden: int = 128):
        super().__init__()
        self.config = {"z_dim": z_dim, "pack": pack, "hidden": hidden}  # all that build_model needs
        self.z_dim, self.pack = z_dim, pack
        self.G = mlp(z_dim, 2, hidden)
        self.D = mlp(2 * pack, 1, hidden)  # PacGAN: one logit for `pack` samples side by side

    def latent_dim(self) -> int:
        return self.z_dim

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Deterministic given z: no randomness in here, and each row depends on its own z only."""
        return self.G(z.float())

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for packs of samples: x [B*pack, 2] -> [B]."""
        return self.D(x.reshape(-1, 2 * self.pack)).squeeze(-1)


def build_model(config: dict) -> GAN:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    return GAN(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float, steps: int = 3000, batch: int = 256) -> GAN:
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny networks: one thread is as fast as two and never waits for the other
    start = time.monotonic()
    span = 0.8 * max_seconds
    x = torch.as_tensor(x, dtype=torch.float32)
    model = GAN()
    n = batch * model.pack
    opt_g = torch.optim.Adam(model.G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for step in range(steps):
        # Cosine decay from 1e-3 to 1e-4 over the steps, or over the time budget if that runs out first.
        progress = min(1.0, max(step / steps, (time.monotonic() - start) / span))
        for opt in (opt_g, opt_d):
            opt.param_groups[0]["lr"] = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * progress))
        real = x[torch.randint(0, x.shape[0], (n,))]
        fake = model.G(torch.randn(n, model.z_dim))
        loss_d = discriminator_loss(model.discriminate(real), model.discriminate(fake.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss_nonsaturating(model.discriminate(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % 500 == 0:
            print(f"step {step:5d}  D loss {loss_d.item():.3f} (2 ln 2 = {2 * math.log(2):.3f} at D = 1/2)"
                  f"  G loss {loss_g.item():.3f}")
        if progress >= 1.0:
            print(f"time budget used up after {step + 1} steps")
            break
    print(f"trained {step + 1} steps in {time.monotonic() - start:.1f} s")
    return model.eval()
