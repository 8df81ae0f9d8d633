"""LAB1 part 3: a normalising flow (RealNVP-style affine couplings) for 2-D data.

Fill in the TODOs. The grader imports this file and calls, in this order:
    model = fit(x, seed=..., max_seconds=...)     # E, two moons. x: float32 tensor [N, 2]
    model_c = fit_c(x, seed=..., max_seconds=...) # C, two spirals (optional): the same kind of object
    z, log_det = model.forward(x)                 # [B, 2] and [B]: data -> latent, log|det dz/dx|
    x = model.inverse(z)                          # [B, 2]: latent -> data
    x = model.sample(n, seed=...)                 # [n, 2]: inverse of the seed's standard draw (below)
and forward, inverse and sample of model_c the same way.
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
from torch import nn


class AffineCoupling(nn.Module):
    """Changes coordinate d (0 or 1) by an affine map whose scale and shift depend on the other one:
        forward:  v = u * exp(s(c)) + t(c)       inverse:  u = (v - t(c)) * exp(-s(c))
    where u is x[:, d] and c is x[:, 1 - d], which passes through unchanged."""

    def __init__(self, d: int, hidden: int = 32):
        super().__init__()
        self.d, self.c = d, 1 - d
        # TODO: a small MLP from the 1 conditioning coordinate to 2 outputs (s and t).
        # Smooth activations (SiLU, tanh) make training and the grader's Jacobian check behave best.
        # Tip: zero-initialise its last layer so the coupling starts as the identity map, and bound the
        # log-scale softly, s = tanh(raw), so that exp(s) cannot overflow.
        raise NotImplementedError("AffineCoupling.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B,2] -> (y [B,2], log|det dy/dx| [B])."""
        # TODO: s, t from x[:, c]; change x[:, d]; the log-determinant of this step is s.
        raise NotImplementedError("AffineCoupling.forward")

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """y [B,2] -> x [B,2], undoing forward exactly."""
        # TODO: the conditioning coordinate is unchanged, so you can recompute s and t from it.
        raise NotImplementedError("AffineCoupling.inverse")


class Flow(nn.Module):
    """A stack of couplings that alternate which coordinate they change, with a N(0, I) base."""

    def __init__(self, n_layers: int = 8, hidden: int = 32):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"n_layers": n_layers, "hidden": hidden}
        # TODO: n_layers couplings; alternate d = 0, 1, 0, 1, ...
        raise NotImplementedError("Flow.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to latent: x [B,2] -> (z [B,2], log|det dz/dx| [B]), the log-dets of all steps summed."""
        # TODO
        raise NotImplementedError("Flow.forward")

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Latent to data: z [B,2] -> x [B,2]."""
        # TODO: undo the layers in reverse order.
        raise NotImplementedError("Flow.inverse")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(f(x); 0, I) + log|det df/dx|, per row [B], in nats."""
        # TODO: the change-of-variables formula. (The grader computes this itself from forward.)
        raise NotImplementedError("Flow.log_prob")

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n samples [n,2]: exactly inverse(z) for z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).
        The grader repeats that very draw and checks that your samples are its inverse."""
        # TODO
        raise NotImplementedError("Flow.sample")


def build_model(config: dict) -> Flow:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return Flow(**config)


def build_model_c(config: dict) -> Flow:
    """As build_model, for the C model (fit_c)."""
    return Flow(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> Flow:
    """Train on x [N,2] by minimising -log_prob(x).mean(); return the model in eval mode.

    Stop before `max_seconds` have passed (use time.monotonic()): the grader measures it.
    """
    torch.manual_seed(seed)
    # TODO: create the flow and an optimiser, loop over mini-batches minimising the mean NLL,
    #       and respect the time budget.
    raise NotImplementedError("fit")


def fit_c(x: torch.Tensor, *, seed: int, max_seconds: float) -> Flow:
    """C tier: the same for the two spirals (data.make_spirals), x [N,2]; return the model in eval mode.

    Leave it raising NotImplementedError if you do not attempt the C tier: only the C checks fail.
    """
    # TODO: start with your moons recipe (put the training loop in a function that both fits call),
    #       measure how far it is from the truth with data.spirals_log_prob, then improve the flow:
    #       the README's C section says what makes the spirals harder.
    raise NotImplementedError("fit_c")
