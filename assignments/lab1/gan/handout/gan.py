"""LAB1 part: a generative adversarial network on a ring of 8 Gaussians.

Fill in the TODOs. The grader imports this file and calls:
    discriminator_loss(real_logits, fake_logits)     # -> a number (the mean over each batch)
    generator_loss_saturating(fake_logits)           # -> a number
    generator_loss_nonsaturating(fake_logits)        # -> a number
    optimal_discriminator(log_p, log_q)              # [B], [B] -> [B]
    critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam)   # given: calls your gradient_penalty
and three times over, on three fresh data sets:
    model = fit(x, seed=..., max_seconds=...)        # x: float32 tensor [N, 2]
    model.latent_dim()                               # -> Z, an int
    model.generate(z)                                # z: float32 [n, Z] drawn by the grader -> [n, 2]
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
import torch.nn.functional as F  # noqa: F401  (F.softplus is the stable way to log-sigmoid)
from torch import nn

# ---------------------------------------------------------------- losses, from logits
# The discriminator outputs a logit l; D = sigmoid(l) is its probability that the input is real.
# Logits arrive as tensors of shape [B] (squeeze your discriminator's [B, 1] output).
# Never compute log(1 - sigmoid(l)) or log(sigmoid(l)) directly: in float32, 1 - sigmoid(30) is exactly 0
# and log(0) = -inf (and sigmoid(-110) underflows to 0 the same way). Instead:
#     log D = log sigmoid(l) = -softplus(-l),      log(1 - D) = -softplus(l).


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean_i log D(x_i) - mean_j log(1 - D(G(z_j))): real labelled 1, fake labelled 0.
    The two batches may have different sizes. Returns a scalar tensor; equals 2 ln 2 at zero logits."""
    # TODO
    raise NotImplementedError("discriminator_loss")


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax game's generator loss: mean_j log(1 - D(G(z_j))), which G minimises (-ln 2 at zero logits)."""
    # TODO
    raise NotImplementedError("generator_loss_saturating")


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: -mean_j log D(G(z_j)) (ln 2 at zero logits)."""
    # TODO
    raise NotImplementedError("generator_loss_nonsaturating")


def optimal_discriminator(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """D*(x) = p(x) / (p(x) + q(x)) for the data density p and the generator's density q, given their
    logarithms at B points. Must work when both log-densities are about -1000 (exp underflows to 0)."""
    # TODO
    raise NotImplementedError("optimal_discriminator")


def gradient_penalty(critic, x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor | None = None,
                     lam: float = 10.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): lam * mean_i (||grad_x critic(x_hat_i)|| - 1)^2 at the interpolates
    x_hat_i = alpha_i x_real_i + (1 - alpha_i) x_fake_i, alpha: [B, 1] (drawn from U(0, 1) when None).
    `critic` maps [B, D] to [B]. Return a scalar tensor that training can differentiate (create_graph=True)."""
    # TODO: make x_hat a leaf that requires grad, take torch.autograd.grad of critic(x_hat).sum() w.r.t. x_hat.
    raise NotImplementedError("gradient_penalty")


def two_layer_critic(x, w, W1, b1, w2):
    """f(x) = x.w + tanh(x W1^T + b1).w2 (given; with W1 = 0 it is the linear critic x.w plus a constant)."""
    return x @ w + torch.tanh(x @ W1.T + b1) @ w2


def critic_gradient_penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    """Given, do not change: the grader calls this to check your gradient_penalty on known critics."""
    penalty = gradient_penalty(lambda x: two_layer_critic(x, w, W1, b1, w2), x_real, x_fake, alpha, lam)
    return float(torch.as_tensor(penalty).detach())


# ---------------------------------------------------------------- the model


def mlp(n_in: int, n_out: int, hidden: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))


class GAN(nn.Module):
    def __init__(self, z_dim: int = 2, hidden: int = 128):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"z_dim": z_dim, "hidden": hidden}
        self.z_dim = z_dim
        self.G = mlp(z_dim, 2, hidden)  # generator: z [n, Z] -> x [n, 2]
        self.D = mlp(2, 1, hidden)  # discriminator: x [B, 2] -> logit [B, 1]

    def latent_dim(self) -> int:
        return self.z_dim

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): [n, Z] -> [n, 2]. The grader draws z ~ N(0, I) itself and checks that the same z gives the
        same samples, that each row depends only on its own z, and that different z give different samples."""
        # TODO
        raise NotImplementedError("GAN.generate")

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B] for samples x [B, 2]."""
        return self.D(x).squeeze(-1)


def build_model(config: dict) -> GAN:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return GAN(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> GAN:
    """Train a GAN on x [N, 2] and return it in eval mode. Stop before `max_seconds` (time.monotonic()).

    Each step: (1) a discriminator step on a real batch and a fake batch G(z).detach() with
    discriminator_loss; (2) a generator step on discriminate(G(z)) with generator_loss_nonsaturating.
    Adam with lr about 1e-3 and betas=(0.5, 0.999) is the usual choice for GANs.
    """
    torch.manual_seed(seed)
    # TODO
    raise NotImplementedError("fit")
