"""LAB1: diffusion models and flow matching on a constellation of narrow Gaussians.

Fill in the TODOs. Conventions (the grader relies on them):
    t = 0 is noise, t = 1 is data;   x_t = alpha_t * x1 + sigma_t * x0,  x0 ~ N(0, I),  x1 ~ data
    points are float32 tensors [B, 2]; times are float32 tensors [B, 1]
    path is "linear" (alpha_t = t, sigma_t = 1 - t) or "cosine" (alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2))

The grader imports this file and calls
    schedule(t, path=...), conditional_path(x0, x1, t, path=...), conditional_vector_field(x, x1, t, path=...),
    conditional_score(x, x1, t, path=...), flow_matching_loss(v_pred, x0, x1, t, path=...)
    model = fit(x, seed=..., max_seconds=...)        # x: float32 [N, 2]
    model.velocity(x, t)                             # -> [B, 2]
    model.sample(n, steps=..., seed=...)             # -> [n, 2]
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import copy  # noqa: F401  (you may want it for a weight average)
import math
import time  # noqa: F401

import torch
from torch import nn

PATHS = ("linear", "cosine")


def schedule(t: torch.Tensor, path: str = "linear"):
    """Return (alpha_t, sigma_t, d alpha_t / dt, d sigma_t / dt), each shaped like t."""
    # TODO: both paths. Write the derivatives by hand (the grader checks them through the vector field).
    raise NotImplementedError("schedule")


def conditional_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    """A sample of p_t(x | x1) = N(alpha_t x1, sigma_t^2 I): [B,2], [B,2], [B,1] -> [B,2]."""
    # TODO
    raise NotImplementedError("conditional_path")


def conditional_vector_field(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                             path: str = "linear") -> torch.Tensor:
    """u_t(x | x1): the velocity of the point x, which lies on a conditional path towards x1. [B,2] -> [B,2].

    Differentiate x_t = alpha_t x1 + sigma_t x0 with respect to t, then eliminate x0 using the point x.
    Only called with t < 1 (sigma_t > 0)."""
    # TODO
    raise NotImplementedError("conditional_vector_field")


def conditional_score(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str = "linear") -> torch.Tensor:
    """grad_x log p_t(x | x1) for p_t(x | x1) = N(x; alpha_t x1, sigma_t^2 I). [B,2] -> [B,2]. t < 1."""
    # TODO
    raise NotImplementedError("conditional_score")


def flow_matching_loss(v_pred: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       path: str = "linear") -> torch.Tensor:
    """Mean over the batch of || v_pred - u_t(x_t | x1) ||^2 (summed over the 2 coordinates), where
    x_t = conditional_path(x0, x1, t) is the point at which v_pred was predicted. Returns a scalar tensor.

    Hint: on the path, u_t(x_t | x1) can be written without dividing by sigma_t, which matters as t -> 1."""
    # TODO
    raise NotImplementedError("flow_matching_loss")


class VelocityField(nn.Module):
    """v_theta(x, t): an MLP on x and sinusoidal features of t. You may change the architecture."""

    def __init__(self, hidden: int = 64, n_freq: int = 8):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"hidden": hidden, "n_freq": n_freq}
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32) / 2)
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * n_freq, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1).to(x.dtype).expand(x.shape[0], 1)
        ft = t * self.freqs
        return self.net(torch.cat([x, ft.sin(), ft.cos()], dim=-1))

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B,2], [B,1] -> [B,2]. The grader integrates this field itself, with its own Euler loop."""
        return self(x.float(), t.float())

    @torch.no_grad()
    def sample(self, n: int, *, steps: int = 100, seed: int = 0) -> torch.Tensor:
        """n samples: x ~ N(0, I) drawn with torch.Generator().manual_seed(seed), then dx/dt = v(x, t)
        integrated from t = 0 to t = 1 with at most `steps` evaluations of the velocity per sample."""
        # TODO: Euler: x <- x + h * v(x, t_k), t_k = k h, h = 1 / steps, k = 0 .. steps - 1.
        # A tier: with steps=4, do better than uniform Euler steps.
        raise NotImplementedError("sample")


def build_model(config: dict) -> VelocityField:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return VelocityField(**config)


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> VelocityField:
    """Train a VelocityField by flow matching on the data x [N, 2]; return it (in eval mode).

    Stop before `max_seconds` have passed (use time.monotonic()): the grader measures it."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a network this small gains nothing from more threads
    # TODO: loop until the time budget is used up:
    #   x1 = a mini-batch of data, x0 = torch.randn_like(x1), t ~ U(0, 1) of shape [B, 1]
    #   loss = flow_matching_loss(model(conditional_path(x0, x1, t), t), x0, x1, t)
    #   an Adam step; print a line at the end (you see what fit prints in your results)
    raise NotImplementedError("fit")
