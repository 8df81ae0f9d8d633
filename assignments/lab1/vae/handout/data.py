"""The data of this part and the grader's bounds, for your own experiments.

The grader never scores you on the public digits: a held-out split of a public set is not secret (the
public set minus your training rows *is* the held-out set). Every image of a grading run is drawn afresh
from a secret source of digit-like images whose exact density the grader knows, and every likelihood is
reported as its *excess* over that source's own NLL on the same images (see the README).

`practice_source(seed)` builds a source of the same kind from the public digits (a mixture of
independent-pixel components, so its exact log p(x) is known too): draw training and held-out images from
it, and `excess(model, source, x)` reports your bounds minus the source's NLL the way the grader does. It
is not the grader's source (which is secret and changes every run), and it is harder for a VAE: its
components are 1024 separate digits, where the grader's lie on smooth regions of a latent space (the
reference VAE: about 6 nats above this source, about 2 above the grader's). Compare your changes on it.
`split(seed)` still gives a random split of the public digits for quick experiments. Needs scikit-learn on
your machine (pip install scikit-learn); the grader's sandbox does not have it, so your vae.py must not
import this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.functional import logsigmoid, softplus

N_TEST = 400
N_TRAIN = 2000       # the number of images the grader's fit() call gets


def load_binary_digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits, binarised at 8 (pixel >= 8 -> 1): float32 [1797, 64] in {0, 1}."""
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data >= 8).astype(np.float32))


def split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [1397, 64], held-out [400, 64]): a random split of the public digits."""
    x = load_binary_digits()
    order = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
    return x[order[N_TEST:]], x[order[:N_TEST]]


@dataclass(frozen=True)
class MixtureSource:
    """A uniform mixture of independent-pixel Bernoulli components, logits [M, 64]: exact density."""

    logits: torch.Tensor

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n images float32 [n, 64] in {0, 1}: a component uniformly, then every pixel independently."""
        gen = torch.Generator().manual_seed(seed)
        component = torch.randint(0, len(self.logits), (n,), generator=gen)
        return torch.bernoulli(torch.sigmoid(self.logits[component]), generator=gen).float()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) [n] in nats, float64."""
        ones, zeros = logsigmoid(self.logits), logsigmoid(-self.logits)
        per_component = x.double() @ (ones - zeros).T + zeros.sum(-1)
        return torch.logsumexp(per_component, dim=1) - math.log(len(self.logits))


def practice_source(seed: int = 0, components: int = 1024) -> MixtureSource:
    """A digit-like source of the grader's kind, built from the public grey-level digits: each component is
    one random digit's ink, sharpened by a factor drawn from the seed (blank and full pixels get
    probabilities of about 0.001 and 0.999, the grey edges in between). The grader's own source is secret and per run: it is made the same way from a staff
    model's latent space, so its digits, styles and sharpness differ."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    grey = torch.from_numpy(load_digits().data / 16.0)
    chosen = grey[torch.from_numpy(rng.choice(len(grey), components, replace=False))]
    return MixtureSource((chosen - 0.5) * float(rng.uniform(12.0, 16.0)))


@torch.no_grad()
def bounds(model, x: torch.Tensor, k: int = 300, seed: int = 0, chunk: int = 16384) -> dict[str, float]:
    """The grader's computation, in nats per image (lower is better):
    -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) and -IWAE-k = -log (1/k) sum_j w_j,
    with w_j = p(x|z_j) p(z_j) / q(z_j|x), z_j = mu + exp(log_var / 2) * eps_j drawn here
    (the grader draws separate z for each bound; here they share the draws)."""
    gen = torch.Generator().manual_seed(seed)
    x = x.double()
    mu, log_var = (t.double() for t in model.encode(x.float()))
    b, d = mu.shape
    std = (0.5 * log_var).exp()
    z = (mu + std * torch.randn(k, b, d, generator=gen, dtype=torch.float64)).float().double()
    flat = z.reshape(k * b, d)
    logits = torch.cat([model.decode(rows.float()).double() for rows in flat.split(chunk)]).reshape(k, b, -1)
    log_px = -(x * softplus(-logits) + (1 - x) * softplus(logits)).sum(-1)          # [k, b]
    log_pz = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * ((z - mu) / std) ** 2 - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_w = log_px + log_pz - log_qz
    kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(-1)
    out = {"-ELBO": float(-(log_px.mean(0) - kl).mean()), "reconstruction": float(-log_px.mean()),
           "KL": float(kl.mean())}
    for kk in (10, 100, k):
        groups = log_w[: (k // kk) * kk].reshape(-1, kk, b)
        out[f"-IWAE-{kk}"] = float(-(torch.logsumexp(groups, dim=1) - math.log(kk)).mean())
    return out


def excess(model, source: MixtureSource, x: torch.Tensor, k: int = 300, seed: int = 0) -> dict[str, float]:
    """bounds(model, x) minus the source's exact NLL of the same images: what the grader's likelihood
    checks compare with their thresholds (0 is the best any model can do on average)."""
    nll = float(-source.log_prob(x).mean())
    return {name: value - nll for name, value in bounds(model, x, k=k, seed=seed).items() if name.startswith("-")}


def nats_to_bits_per_dim(nats_per_image: float, dims: int = 64) -> float:
    """17 nats per image = 17 / (64 ln 2) = 0.383 bits per pixel."""
    return nats_per_image / (dims * math.log(2))
