"""Honest alternative for the GAN part, written against the handout's interface without the reference
solution: a regularised discriminator instead of an averaged generator, and a wider latent space.

- Losses: as in the handout, written with binary_cross_entropy_with_logits and logsigmoid; D* with
  logaddexp; the gradient penalty with torch.lerp and torch.linalg.vector_norm.
- Discriminator: PacGAN-2 (pairs of samples side by side), ReLU, with the R1 penalty of Mescheder et al.
  (2018), gamma/2 E ||grad_x D(x_real)||^2, taken with the same autograd machinery as gradient_penalty
  and applied every fourth step with 4 gamma (lazy regularisation, as in StyleGAN2): it stops D from
  growing sharp cliffs around the data, which is what makes a GAN oscillate around a mode.
- Generator: ReLU, two hidden layers of 128 units, Z = 4, used as trained (no averaging).
- Training: two time scales (D's learning rate twice G's: 2e-3 and 1e-3), Adam betas (0.5, 0.999), batch
  of 256 pairs, both rates decayed along a cosine to a twentieth over the steps or 80 % of the budget.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- losses, from logits


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with real = 1 and fake = 0, each batch averaged on its own."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """mean log(1 - D) = mean logsigmoid(-l)."""
    return F.logsigmoid(-fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean log D = -mean logsigmoid(l)."""
    return -F.logsigmoid(fake_logits).mean()


def optimal_discriminator(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """p / (p + q) in log space: exp(log p - log(p + q)), with logaddexp for log(p + q)."""
    return torch.exp(log_p - torch.logaddexp(log_p, log_q))


def gradient_penalty(critic, x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor | None = None,
                     lam: float = 10.0) -> torch.Tensor:
    """lam * mean (||grad critic(x_hat)|| - 1)^2 at x_hat = alpha x_real + (1 - alpha) x_fake."""
    if alpha is None:
        alpha = torch.rand(x_real.shape[0], 1, dtype=x_real.dtype)
    x_hat = torch.lerp(x_fake, x_real, alpha).detach().requires_grad_(True)  # x_fake + alpha (x_real - x_fake)
    scores = critic(x_hat)
    grad = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)[0]
    return lam * (torch.linalg.vector_norm(grad, dim=1) - 1).pow(2).mean()


def two_layer_critic(x, w, W1, b1, w2):
    """f(x) = x.w + tanh(x W1^T + b1).w2 (given; with W1 = 0 it is the linear critic x.w plus a constant)."""
    return x @ w + torch.tanh(x @ W1.T + b1) @ w2


def critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    """Given, do not change: the grader calls this to check your gradient_penalty on known critics."""
    penalty = gradient_penalty(lambda x: two_layer_critic(x, w, W1, b1, w2), x_real, x_fake, alpha, lam)
    return float(torch.as_tensor(penalty).detach())


# ---------------------------------------------------------------- the model


def relu_net(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


R1_EVERY = 4


class GAN(nn.Module):
    def __init__(self, z_dim: int = 4, hidden: int = 128, d_hidden: int = 128, pack: int = 2):
        super().__init__()
        self.config = {"z_dim": z_dim, "hidden": hidden, "d_hidden": d_hidden, "pack": pack}
        self.z_dim, self.pack = z_dim, pack
        self.G = relu_net(z_dim, 2, hidden)
        self.D = relu_net(2 * pack, 1, d_hidden)

    def latent_dim(self) -> int:
        return self.z_dim

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z), row by row: no randomness, no batch statistics."""
        return self.G(z.to(torch.float32))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B] for B pairs of samples, x [B * pack, 2]."""
        return self.D(x.reshape(-1, 2 * self.pack)).squeeze(-1)


def build_model(config: dict) -> GAN:
    return GAN(**config)


def r1_penalty(model: GAN, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma / 2 * mean ||grad_x D(x)||^2 on real data (differentiable: create_graph=True)."""
    real = real.detach().requires_grad_(True)
    logits = model.discriminate(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * gamma * grad.reshape(logits.shape[0], -1).pow(2).sum(dim=1).mean()


def fit(x: torch.Tensor, *, seed: int, max_seconds: float, steps: int = 3000, pairs: int = 256,
        lr_g: float = 1e-3, lr_d: float = 2e-3, gamma: float = 0.1) -> GAN:
    """Non-saturating PacGAN-2 with R1 on D; stops after `steps` or at 80 % of max_seconds."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    began = time.monotonic()
    deadline = 0.8 * max_seconds
    data = torch.as_tensor(x, dtype=torch.float32)
    model = GAN()
    n = pairs * model.pack
    opt_g = torch.optim.Adam(model.G.parameters(), lr=lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=lr_d, betas=(0.5, 0.999))
    done = 0
    while done < steps:
        used = max(done / steps, (time.monotonic() - began) / deadline)
        if used >= 1.0:
            break
        scale = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * used))
        opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"] = lr_g * scale, lr_d * scale
        real = data[torch.randint(len(data), (n,))]
        fake = model.G(torch.randn(n, model.z_dim))
        loss_d = discriminator_loss(model.discriminate(real), model.discriminate(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        if done % R1_EVERY == 0:  # lazy regularisation (StyleGAN2): the penalty every few steps, scaled up
            loss_d = loss_d + R1_EVERY * r1_penalty(model, real, gamma)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss_nonsaturating(model.discriminate(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        done += 1
        if done % 1000 == 0:
            print(f"step {done}: D loss {loss_d.item():.3f}, G loss {loss_g.item():.3f}")
    print(f"{done} steps in {time.monotonic() - began:.1f} s")
    return model.eval()
