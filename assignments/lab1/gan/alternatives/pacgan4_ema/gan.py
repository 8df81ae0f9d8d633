"""Honest alternative for the GAN part, written against the handout's interface without the reference
solution: other networks, larger packs and an averaged generator.

- Losses, written from the handout's formulas: -log D = logaddexp(0, -l) (a two-term log-sum-exp, stable
  for any logit) and -log(1 - D) the same at -l; D* as the first entry of a softmax over (log p, log q);
  the gradient penalty with autograd of the summed critic at the interpolates and the row norms.
- Discriminator: PacGAN with packs of 4 samples (a feature extractor on the pack, then a separate head),
  instead of pairs.
- Generator: three hidden layers of 96 units (LeakyReLU), Z = 2. What generate returns is an exponential
  moving average of the generator's weights (decay 0.99, kept as a second network in the state), which
  smooths out the jitter of the last steps. (A SiLU generator, tried first, dropped and merged modes:
  a smooth map from a Gaussian has a hard time splitting into eight separated blobs in 3000 steps.)
- Training: Adam(lr 1e-3, betas (0.5, 0.99)), one D step per G step, 128 packs per batch, 4500 steps with
  the learning rate decayed linearly to 2e-5 over the steps or over 80 % of the time budget, whichever runs
  out first.

Why 4500 steps and a rate that ends at 2e-5 (first version: 3000 steps, ending at 1e-4, about 11 s of
its 24 s): what keeps samples off the modes is the bridges a continuous map from a 2-D Gaussian draws
between the blobs (7-13 % of the samples lie more than 0.5 from every centre), and they thin out the
longer and the more quietly training ends. Over 6 trainings in-process the high-quality fraction went from
0.67-0.81 to 0.69-0.88, and the grader's run once caught the old recipe still oscillating at its last
step (D loss 1.18, high-quality 0.33). A slower average (decay 0.999) is no cure: averaging a generator
whose weights still move blurs it (high-quality 0.03-0.12 against 0.68-0.80 for the live weights), so the
average stays short.
"""
from __future__ import annotations

import copy
import time

import torch
from torch import nn

# ---------------------------------------------------------------- losses, from logits


def neg_log_d(logits: torch.Tensor) -> torch.Tensor:
    """-log D = -log(1 / (1 + e^-l)) = log(e^0 + e^-l): a log-sum-exp of two terms, which logaddexp evaluates
    without overflow for any logit; -log(1 - D) is the same with l -> -l."""
    return torch.logaddexp(torch.zeros_like(logits), -logits)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The cross-entropy of real (label 1) and fake (label 0), each term the mean over its own batch."""
    return neg_log_d(real_logits).mean() + neg_log_d(-fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """mean log(1 - D(fake)) = -mean(-log(1 - D))."""
    return -neg_log_d(-fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean log D(fake)."""
    return neg_log_d(fake_logits).mean()


def optimal_discriminator(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """p / (p + q) is the first entry of a softmax over the pair (log p, log q): softmax subtracts the larger
    log-density before exponentiating, so two log-densities of -1000 give 1/2, not 0 / 0."""
    return torch.softmax(torch.stack([log_p, log_q]), dim=0)[0]


def gradient_penalty(critic, x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor | None = None,
                     lam: float = 10.0) -> torch.Tensor:
    """lam * mean (||grad critic(x_hat)|| - 1)^2 at x_hat = alpha x_real + (1 - alpha) x_fake, one alpha a row."""
    if alpha is None:
        alpha = torch.rand(len(x_real), 1, dtype=x_real.dtype)
    points = (alpha * x_real + (1 - alpha) * x_fake).detach().requires_grad_()
    total = critic(points).sum()  # row i of the sum depends on points[i] only, so its gradient is row i's
    grads = torch.autograd.grad(total, points, create_graph=True)[0]
    return lam * torch.mean((grads.norm(p=2, dim=1) - 1).square())


def two_layer_critic(x, w, W1, b1, w2):
    """f(x) = x.w + tanh(x W1^T + b1).w2 (given; with W1 = 0 it is the linear critic x.w plus a constant)."""
    return x @ w + torch.tanh(x @ W1.T + b1) @ w2


def critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    """Given, do not change: the grader calls this to check your gradient_penalty on known critics."""
    penalty = gradient_penalty(lambda x: two_layer_critic(x, w, W1, b1, w2), x_real, x_fake, alpha, lam)
    return float(torch.as_tensor(penalty).detach())


# ---------------------------------------------------------------- the model


def generator_net(z_dim: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = z_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, 2))


class PackDiscriminator(nn.Module):
    """One logit per pack of `pack` samples laid side by side: [B * pack, 2] -> [B]."""

    def __init__(self, hidden: int, pack: int):
        super().__init__()
        self.pack = pack
        self.features = nn.Sequential(nn.Linear(2 * pack, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                      nn.LeakyReLU(0.2))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 2 * self.pack))).squeeze(-1)


class GAN(nn.Module):
    def __init__(self, z_dim: int = 2, hidden: int = 96, depth: int = 3, d_hidden: int = 128, pack: int = 4):
        super().__init__()
        self.config = {"z_dim": z_dim, "hidden": hidden, "depth": depth, "d_hidden": d_hidden, "pack": pack}
        self.z_dim = z_dim
        self.G = generator_net(z_dim, hidden, depth)
        self.G_avg = copy.deepcopy(self.G).requires_grad_(False)  # what generate uses
        self.D = PackDiscriminator(d_hidden, pack)

    def latent_dim(self) -> int:
        return self.z_dim

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """The averaged generator at z: no randomness, no batch statistics."""
        return self.G_avg(z.to(torch.float32))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B] for B packs of samples, x [B * pack, 2]."""
        return self.D(x)

    @torch.no_grad()
    def update_average(self, decay: float) -> None:
        for avg, live in zip(self.G_avg.parameters(), self.G.parameters(), strict=True):
            avg.lerp_(live, 1 - decay)


def build_model(config: dict) -> GAN:
    return GAN(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float, steps: int = 4500, packs: int = 128,
        lr: float = 1e-3, lowest: float = 2e-5, decay: float = 0.99) -> GAN:
    """Non-saturating PacGAN-4; stops after `steps` or at 80 % of max_seconds, whichever comes first."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    began = time.monotonic()
    deadline = 0.8 * max_seconds
    data = torch.as_tensor(x, dtype=torch.float32)
    model = GAN()
    n = packs * model.D.pack
    opt_g = torch.optim.Adam(model.G.parameters(), lr=lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=lr, betas=(0.5, 0.99))
    done = 0
    while done < steps:
        used = max(done / steps, (time.monotonic() - began) / deadline)
        if used >= 1.0:
            break
        for opt in (opt_g, opt_d):
            opt.param_groups[0]["lr"] = lr - (lr - lowest) * used
        real = data[torch.randint(len(data), (n,))]
        fake = model.G(torch.randn(n, model.z_dim))
        loss_d = discriminator_loss(model.discriminate(real), model.discriminate(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss_nonsaturating(model.discriminate(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        model.update_average(decay if done > 200 else 0.0)  # copy G while it moves fast, then average
        done += 1
        if done % 1000 == 0:
            print(f"step {done}: D loss {loss_d.item():.3f}, G loss {loss_g.item():.3f}")
    print(f"{done} steps in {time.monotonic() - began:.1f} s")
    return model.eval()
