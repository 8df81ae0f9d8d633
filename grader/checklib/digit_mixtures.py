"""Binary digit images the student cannot hold, from a source whose density the grader knows exactly.

The VAE and autoregressive parts score -log p(x) on held-out binary images. A held-out
split of scikit-learn's public digits is not secret: the public set minus the training rows *is* the
held-out set, and a model that puts its mass on those 400 images scores about log 400 = 6 nats. So every
image the part sends is drawn afresh, per run, from a secret source:

- a **staff decoder** (an MLP from a 4-dimensional latent space to 64 Bernoulli logits, trained once by
  staff as a VAE on the public binarised digits; its weights sit in a part's `hidden/` folder, never in a
  sandbox), together with the latent codes (encoder means) of the 1797 public digits;
- per run, a **secret region of its latent space**: J in 4..8 Gaussian blobs centred on the codes of J
  random public digits, each with its own width and weight, and a sharpening temperature; 4096 latent
  points drawn from the blobs give 4096 components (pixel probabilities sigmoid(decoder(z) / tau)).

A run's source is the uniform mixture of those components: so its density is exact,
log p(x) = logsumexp_m log p(x | m) - log M, which gives every likelihood check a floor (no valid model
can beat the source on average) and lets a check score the *excess* of a model over the source on the
same images, which removes most of the run-to-run spread of the images' difficulty. The source is
digit-like but neither the public digits nor any fixed set: which digits and styles appear, in what
proportions, and how sharp they are changes with every run, and a model pretrained on the public digits
fits it several nats worse than one trained on the run's own images (measured: 3.8-5.0 nats above the
source against 0.9-1.3 for the reference VAE trained in 10 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PIXELS = 64
LATENT = 4
COMPONENTS = 4096
BLOBS = (4, 8)  # how many latent blobs a run's source has (inclusive)
BLOB_WIDTH = (0.2, 0.6)
TEMPERATURE = (0.6, 0.8)


@dataclass(frozen=True)
class StaffDecoder:
    """z [n, LATENT] -> Bernoulli logits [n, 64], an ELU MLP, and the latent codes of the public digits."""

    params: dict[str, torch.Tensor]

    @classmethod
    def load(cls, path: Path) -> StaffDecoder:
        from safetensors.torch import load_file

        params = {k: v.to(torch.float64) for k, v in load_file(str(path)).items()}
        if params["codes"].shape[1] != LATENT:
            raise ValueError(f"{path}: the staff decoder's latent space must have {LATENT} dimensions")
        return cls(params)

    @property
    def codes(self) -> torch.Tensor:
        return self.params["codes"]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        h = z.to(torch.float64)
        for i in range(3):
            h = F.linear(h, self.params[f"dec.{2 * i}.weight"], self.params[f"dec.{2 * i}.bias"])
            if i < 2:
                h = F.elu(h)
        return h


@dataclass(frozen=True)
class DigitMixture:
    """One run's source: a uniform mixture of independent-pixel Bernoulli components (logits [M, 64])."""

    logits: torch.Tensor

    @classmethod
    def draw(cls, decoder: StaffDecoder, rng: np.random.Generator) -> DigitMixture:
        """A secret source for this run (see the module docstring)."""
        blobs = int(rng.integers(BLOBS[0], BLOBS[1] + 1))
        centres = decoder.codes[torch.from_numpy(rng.choice(len(decoder.codes), blobs, replace=False))]
        widths = torch.from_numpy(rng.uniform(*BLOB_WIDTH, size=(blobs, 1)))
        weights = rng.dirichlet(np.full(blobs, 2.0))
        which = torch.from_numpy(rng.choice(blobs, size=COMPONENTS, p=weights))
        z = centres[which] + widths[which] * torch.from_numpy(rng.standard_normal((COMPONENTS, LATENT)))
        return cls(decoder(z) / float(rng.uniform(*TEMPERATURE)))

    def sample(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        """n images float64 [n, 64] in {0, 1}: a component uniformly, then every pixel independently."""
        component = torch.from_numpy(rng.integers(0, len(self.logits), size=n))
        return (torch.from_numpy(rng.random((n, PIXELS))) < torch.sigmoid(self.logits[component])).double()

    def log_prob(self, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """The exact log p(x) [n] of images x [n, 64] in {0, 1}, in nats (float64)."""
        ones, zeros = F.logsigmoid(self.logits), F.logsigmoid(-self.logits)          # [M, 64]
        out = []
        for rows in x.to(torch.float64).split(chunk):
            per_component = rows @ (ones - zeros).T + zeros.sum(-1)                    # [n, M]
            out.append(torch.logsumexp(per_component, dim=1) - math.log(len(self.logits)))
        return torch.cat(out)


def train_staff_decoder(images: torch.Tensor, *, seed: int, steps: int = 6000, hidden: int = 256,
                        batch: int = 128, lr: float = 2e-3) -> dict[str, torch.Tensor]:
    """Train the staff VAE on binary images [N, 64] (run once by a part's hidden/ script; deterministic on
    one thread). Returns the decoder's tensors (`dec.0.*`, `dec.2.*`, `dec.4.*`) and the encoder means of the
    images (`codes`), float32, ready for safetensors."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x = images.to(torch.float32)

    def mlp(n_in: int, n_out: int) -> torch.nn.Sequential:
        return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, hidden),
                                   torch.nn.ELU(), torch.nn.Linear(hidden, n_out))

    encoder, decoder = mlp(PIXELS, 2 * LATENT), mlp(LATENT, PIXELS)
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 1e-4 + (lr - 1e-4) * 0.5 * (1 + math.cos(math.pi * step / steps))
        xb = x[torch.randint(0, len(x), (batch,))]
        mu, log_var = encoder(xb).chunk(2, dim=-1)
        log_var = log_var.clamp(-10, 4)
        z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(decoder(z), xb, reduction="none").sum(-1)
        loss = (recon + 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        codes = encoder(x).chunk(2, dim=-1)[0]
    tensors = {f"dec.{k}": v.detach().clone() for k, v in decoder.state_dict().items()}
    return {**tensors, "codes": codes.contiguous()}
