"""Trusted checks of the example part: a Gaussian mixture fitted to a ring of 8 modes.

The grader draws the ring (a secret rotation) and all data from the run's secret seed, trains the
student's model in the sandbox, and computes every score here from what the model returns.
"""

from __future__ import annotations

import math

import torch

from grader.checklib.copies import nn_distance_ratio
from grader.checklib.modes import Modes, Panel, draw_panels, panels_size
from grader.checklib.numerics import as_sent, rel_error

GRID_STEP = 0.02


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, log_sigma: float) -> torch.Tensor:
    """The grader's own formula, in float64."""
    return -0.5 * ((x - mu) ** 2).sum(-1) / math.exp(2 * log_sigma) - 2 * log_sigma - math.log(2 * math.pi)


def grade(g) -> None:
    modes = Modes.ring(float(g.rng.uniform(0, 2 * math.pi)), sigma=0.1)
    train = as_sent(modes.sample(g.rng, 4000))
    test, fresh = as_sent(modes.sample(g.rng, 4000)), modes.sample(g.rng, 2000)

    with g.section("gaussian_log_prob"):  # a pure function, compared with the grader's formula
        x, mu = as_sent(g.rng.normal(size=(256, 2)), g.rng.normal(size=2))
        theirs = g.call("gaussian_log_prob", x, mu, -0.5)
        g.metric("gaussian_log_prob", rel_error(theirs, gaussian_log_prob(x, mu, -0.5)),
                 hint="log N(x; mu, sigma^2 I) in 2-D = -|x - mu|^2 / (2 sigma^2) - 2 log sigma - log(2 pi).")

    g.progress("training your model")
    # Times the training, scores its budget, freezes the model's state, and checks that the model rebuilt
    # from that state answers the probe as the trained one did.
    g.train("fit", train, check="fit_budget", probe=("model.log_prob", (train[:16],), {}))

    with g.section("density_mass", "nll"):  # validity first: a likelihood counts only for a density
        axis = torch.arange(-3, 3, GRID_STEP, dtype=torch.float64) + GRID_STEP / 2
        grid = torch.cartesian_prod(axis, axis)
        mass = float(g.call("model.log_prob", grid).exp().sum()) * GRID_STEP**2
        g.metric("density_mass", abs(mass - 1), hint="Normalise every component and the mixture weights.")
        nll = float(-g.call("model.log_prob", test).mean())
        if g.outcomes["density_mass"].passed:
            g.metric("nll", nll, hint="More components, or more EM iterations.")
        else:
            g.record("nll", False, f"Not counted: {nll:.3f} nats is not the NLL of a density (see density_mass).")

    with g.section("modes_covered", "not_copies"):
        samples = g.call("model.sample", 2000, seed=g.torch_seed()).numpy()
        g.metric("modes_covered", modes.stats(samples, min_count=50).covered,
                 hint="Some modes get (almost) no samples: draw the component from the mixture weights.")
        g.metric("not_copies", nn_distance_ratio(samples, train.numpy(), fresh),
                 hint="Your samples sit on training points: sample from the model, do not return data.")
        g.figure("samples", "Your samples (blue), the training data (grey) and the modes' 3-sigma circles.",
                 lambda fig: draw_panels(fig, [Panel("your samples", samples, train.numpy(), modes)]),
                 size=panels_size(1))
