"""Trusted checks for the normalising-flows part. Runs in the grader, never in the sandbox.

E data: two moons, the recipe of scikit-learn's make_moons(noise=0.1) with the arc parameter drawn
uniformly (make_moons spaces it evenly), so training and test points are i.i.d. from one density:
    outer moon (cos t, sin t), inner moon (1 - cos t, 0.5 - sin t), t ~ U(0, pi), + N(0, 0.1^2 I).
C data: two spirals (handout/data.py), arm a in {0, 1}, s ~ U(0, 1), radius 0.3 + 2.7 s, angle
2 pi s + pi a, + N(0, 0.12^2 I); its exact log-density by quadrature in s, entropy about 2.295 nats.
The C model comes from a second entry point, fit_c, stored as `model_c`.
Everything is drawn from the secret run seed. The student's models return z and log|det dz/dx|; every
number (NLL, grid mass, finite-difference Jacobians, energy distances) is computed here from those.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checklib.copies import memorised_fraction
from grader.checklib.numerics import as_sent, rel_errors

N_TRAIN = 10000
N_TEST = 20000
N_SAMPLES = 2000
NOISE = 0.1
CHUNK = 16384  # rows per forward call: a student's model may keep an autograd graph per call

# Grid for the mass check: midpoints of cells of side GRID_STEP over a box that covers the data
# (x in about [-1.4, 2.4], y in [-0.9, 1.4]) with more than 1 unit of room on every side.
GRID_BOX = (-2.5, 3.5, -2.0, 2.5)
GRID_STEP = 0.02
MASS_LOW, MASS_HIGH = 0.98, 1.01

# Central differences in float32: with step h the truncation error grows like h^2 and the rounding
# error like eps_32 / h; h = 1e-3 balances both at about 1e-3 nats of log|det| for a smooth flow.
FD_STEP = 1e-3
N_FD_DATA, N_FD_BOX = 256, 44

COPY_RATIO, COPY_FRACTION = 0.05, 0.10

# The C data set: two spirals. Their points lie within radius R1 + 4 SIGMA = 3.5 of the origin.
SPIRAL_ARMS, SPIRAL_TURNS, SPIRAL_R0, SPIRAL_R1, SPIRAL_SIGMA = 2, 1.0, 0.3, 3.0, 0.12
C_GRID_BOX = (-4.5, 4.5, -4.5, 4.5)
# The E thresholds of validity, applied to the C model too: a likelihood counts only for a valid flow.
ROUND_TRIP_LIMIT, LOG_DET_LIMIT = 1e-4, 0.01


# ---- data and reference quantities ----

def arc_points(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    return outer, inner


def make_moons(rng: np.random.Generator, n: int) -> torch.Tensor:
    n_outer = n // 2
    outer, _ = arc_points(rng.uniform(0.0, math.pi, n_outer))
    _, inner = arc_points(rng.uniform(0.0, math.pi, n - n_outer))
    x = np.concatenate([outer, inner]) + NOISE * rng.normal(size=(n, 2))
    return torch.from_numpy(x[rng.permutation(n)])


def true_log_prob(x: torch.Tensor, k: int = 200) -> torch.Tensor:
    """log of the data density: the arcs' uniform measure blurred by N(0, 0.1^2 I), by quadrature in t."""
    t = (np.arange(k) + 0.5) / k * math.pi
    centres = torch.from_numpy(np.concatenate(arc_points(t)))
    out = []
    for rows in x.split(4000):
        d2 = torch.cdist(rows, centres) ** 2
        log_n = -d2 / (2 * NOISE**2) - math.log(2 * math.pi * NOISE**2)
        out.append(torch.logsumexp(log_n, dim=1) - math.log(2 * k))
    return torch.cat(out)


def spiral_centres(s: np.ndarray, arm: np.ndarray) -> np.ndarray:
    r = SPIRAL_R0 + (SPIRAL_R1 - SPIRAL_R0) * s
    phi = 2 * math.pi * SPIRAL_TURNS * s + 2 * math.pi * arm / SPIRAL_ARMS
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def make_spirals(rng: np.random.Generator, n: int) -> torch.Tensor:
    centres = spiral_centres(rng.uniform(0.0, 1.0, n), rng.integers(0, SPIRAL_ARMS, n))
    return torch.from_numpy(centres + SPIRAL_SIGMA * rng.normal(size=(n, 2)))


def spirals_true_log_prob(x: torch.Tensor, k: int = 1000) -> torch.Tensor:
    """log of the spirals' density: the arms' uniform measure in s blurred by N(0, 0.12^2 I), by the
    midpoint rule in s (k points per arm, at most 0.02 apart along the arm: exact to many digits)."""
    t = (np.arange(k) + 0.5) / k
    centres = torch.from_numpy(np.concatenate([spiral_centres(t, np.full(k, a)) for a in range(SPIRAL_ARMS)]))
    out = []
    for rows in x.split(4000):
        d2 = torch.cdist(rows, centres) ** 2
        log_n = -d2 / (2 * SPIRAL_SIGMA**2) - math.log(2 * math.pi * SPIRAL_SIGMA**2)
        out.append(torch.logsumexp(log_n, dim=1) - math.log(SPIRAL_ARMS * k))
    return torch.cat(out)


def nll_from_flow(z: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
    """-log p(x) = -log N(z; 0, I) - log|det dz/dx|, per row, with the grader's own base density."""
    return 0.5 * (z**2).sum(-1) + math.log(2 * math.pi) - log_det


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased (U-statistic) energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'|; 0 in expectation when equal."""
    def within(u: torch.Tensor) -> torch.Tensor:
        n = u.shape[0]
        return torch.cdist(u, u).sum() / (n * (n - 1))
    return float(2 * torch.cdist(a, b).mean() - within(a) - within(b))


def grid_points(box: tuple[float, float, float, float] = GRID_BOX) -> tuple[torch.Tensor, tuple[int, int]]:
    x0, x1, y0, y1 = box
    xs = x0 + (torch.arange(round((x1 - x0) / GRID_STEP), dtype=torch.float64) + 0.5) * GRID_STEP
    ys = y0 + (torch.arange(round((y1 - y0) / GRID_STEP), dtype=torch.float64) + 0.5) * GRID_STEP
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")  # [len(ys), len(xs)]
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), (len(ys), len(xs))


# ---- talking to the model ----

def forward(g, x: torch.Tensor, model: str = "model") -> tuple[torch.Tensor, torch.Tensor]:
    zs, lds = [], []
    for rows in x.split(CHUNK):
        out = g.call(f"{model}.forward", rows)
        zs.append(out["z"])
        lds.append(out["log_det"])
    return torch.cat(zs), torch.cat(lds)


def finite_difference_log_det(g, points: torch.Tensor, model: str = "model") -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's log_det, log|det J| from central differences), both at `points` (float32 values).

    One forward call on the points and their 4 neighbours x +- h e_j. The neighbours are rounded to
    float32 before the call and the true step x+ - x- is used in the quotient."""
    p = points.shape[0]
    plus, minus = [], []
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = FD_STEP
        plus.append(as_sent(points + e))
        minus.append(as_sent(points - e))
    z, log_det = forward(g, torch.cat([points, *plus, *minus]), model)
    z_plus = z[p : 3 * p].view(2, p, 2)
    z_minus = z[3 * p :].view(2, p, 2)
    steps = torch.stack([plus[j][:, j] - minus[j][:, j] for j in range(2)])  # [2, P]
    columns = (z_plus - z_minus) / steps.unsqueeze(-1)  # [j, P, out]: dz/dx_j
    jacobian = columns.permute(1, 2, 0)  # [P, out, in]
    return log_det[:p], torch.linalg.slogdet(jacobian)[1]


# ---- the figure ----

def figure_size(box: tuple[float, float, float, float]) -> tuple[float, float]:
    x0, x1, y0, y1 = box
    return 10.5, 3.3 * (y1 - y0) / (x1 - x0) + 0.5


def draw_samples_figure(fig: Figure, train: torch.Tensor, density: torch.Tensor | None, shape,
                        samples: torch.Tensor | None, box: tuple[float, float, float, float] = GRID_BOX) -> None:
    x0, x1, y0, y1 = box
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    shown = train[:2000].numpy()
    axes[0].scatter(shown[:, 0], shown[:, 1], s=2, c="tab:blue", alpha=0.5)
    axes[0].set_title("training data (2000 of them)")
    if density is not None:
        shown_density = torch.nan_to_num(density, nan=0.0, posinf=0.0).view(*shape)
        top = float(shown_density.quantile(0.999)) if shown_density.numel() < 2**24 else None
        axes[1].imshow(shown_density.numpy(), origin="lower", extent=(x0, x1, y0, y1), cmap="viridis",
                       aspect="auto", vmin=0.0, vmax=top or None)
    axes[1].set_title("your density exp(log p)")
    if samples is not None:
        s = samples[:2000].numpy()
        axes[2].scatter(s[:, 0], s[:, 1], s=2, c="tab:orange", alpha=0.5)
    axes[2].set_title("your samples")
    for ax in axes:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")


# ---- the checks ----

BUDGET_HINT = ("Stop training when max_seconds is used up (check time.monotonic() in your loop); a model this "
               "small also trains faster with torch.set_num_threads(1).")


def grade(g) -> None:
    train = make_moons(g.rng, N_TRAIN)
    test = make_moons(g.rng, N_TEST)
    box_points = torch.from_numpy(g.rng.uniform([GRID_BOX[0] + 0.5, GRID_BOX[2] + 0.5],
                                                [GRID_BOX[1] - 0.5, GRID_BOX[3] - 0.5], size=(500, 2)))
    latents = torch.from_numpy(g.rng.normal(size=(1000, 2)))
    sample_seeds = [int(s) for s in g.rng.integers(0, 2**31 - 1, size=2)]
    c_train = make_spirals(g.rng, N_TRAIN)
    c_test = make_spirals(g.rng, N_TEST)
    c_latents = torch.from_numpy(g.rng.normal(size=(1000, 2)))
    c_sample_seed = int(g.rng.integers(0, 2**31 - 1))

    # Both trainings come first: what they print is the student's to see, since nothing hidden has been
    # sent yet. The C tier is optional, so a missing fit_c fails only the C checks.
    g.progress("training your model on the two moons")
    g.train("fit", train, check="fit_budget", hint=BUDGET_HINT, probe=("model.forward", (train[:16],), {}))
    g.progress("training your C model on the two spirals")
    g.train("fit_c", c_train, check="c_fit_budget", hint=BUDGET_HINT, probe=("model_c.forward", (c_train[:16],), {}))

    check_moons(g, train, test, box_points, latents, sample_seeds)
    with g.section("c_flow", "c_nll", "c_grid_mass", "c_samples"):
        check_spirals(g, c_train, c_test, c_latents, c_sample_seed)


def check_moons(g, train, test, box_points, latents, sample_seeds) -> None:
    density = samples = None
    grid, grid_shape = grid_points()
    with g.section("nll", "grid_mass", "log_det", "round_trip"):
        g.progress("checking your model")
        z, log_det = forward(g, test)
        nll = float(nll_from_flow(z, log_det).mean())
        optimum = float(-true_log_prob(as_sent(test)).mean())
        context = f" On the same points the true data density scores {optimum:.3f} nats."
        hint = ("Train longer or with more coupling layers, anneal the learning rate, and check that "
                "log_det is log|det dz/dx| (data to latent) summed over every layer." + context)
        g.metric("nll", nll, hint=hint, note=f"true density {optimum:.4f}")

        z_grid, ld_grid = forward(g, grid)
        log_p = -nll_from_flow(z_grid, ld_grid)
        density = log_p.exp()
        record_mass(g, "grid_mass", float(density.sum()) * GRID_STEP**2)

        points = as_sent(torch.cat([test[:N_FD_DATA], box_points[:N_FD_BOX]]))
        theirs, ours = finite_difference_log_det(g, points)
        gap = (theirs - ours).abs()
        g.metric("log_det", float(gap.median()),
                 hint="log_det must be log|det dz/dx| of forward (data to latent), one value per row: for an "
                      "affine coupling that is the sum of the log-scales s over the changed coordinates, "
                      "summed over all layers (plus -sum log std if you standardise inside the flow). "
                      "Compare with torch.autograd.functional.jacobian on a few points, as test_public.py does.",
                 note=f"90th percentile {float(gap.quantile(0.9)):.3e}, max {float(gap.max()):.3e}")

        err_x, err_z = (float(e.max()) for e in round_trip_errors(g, torch.cat([test[:2000], box_points]), latents))
        g.metric("round_trip", max(err_x, err_z),
                 hint=f"inverse(forward(x)) is off by {err_x:.2e} and forward(inverse(z)) by {err_z:.2e}. "
                      "The inverse must undo the layers in reverse order, and each coupling must compute its "
                      "scale and shift from the coordinate it leaves unchanged.",
                 note=f"x {err_x:.3e}, z {err_z:.3e}")

    with g.section("samples", "sample_seed"):
        g.progress("sampling from your model")
        first = g.call("model.sample", N_SAMPLES, seed=sample_seeds[0])
        if first.shape[0] != N_SAMPLES:
            g.record("samples", False, f"sample({N_SAMPLES}, seed=...) returned {first.shape[0]} points.")
            g.record("sample_seed", False, "Not checked: sample returned the wrong number of points.")
        else:
            samples = first
            metric_samples(g, "samples", first, test)

            with g.round():  # a fresh process: a sampler that remembers its answers cannot look reproducible
                again = g.call("model.sample", N_SAMPLES, seed=sample_seeds[0])
            other = g.call("model.sample", N_SAMPLES, seed=sample_seeds[1])
            reproducible = again.shape == first.shape and bool(torch.allclose(again, first, atol=1e-6))
            varies = other.shape == first.shape and float((other - first).abs().max()) > 1e-3
            copied = memorised_fraction(first.numpy(), train.numpy(), COPY_RATIO)
            problems = []
            if not reproducible:
                problems.append("two calls with the same seed gave different samples (seed a torch.Generator "
                                "or torch.manual_seed with the seed argument)")
            if not varies:
                problems.append("a different seed gave the same samples (use the seed argument, not a fixed one)")
            if copied > COPY_FRACTION:
                problems.append(f"{copied:.0%} of the samples sit on a training point (sample from the flow, "
                                "do not return training data)")
            g.record("sample_seed", not problems,
                     "Same seed, same samples; new seed, new samples; no copies of training points."
                     if not problems else "Problems: " + "; ".join(problems) + ".",
                     note=f"copied fraction {copied:.3f}")

    attach_figure(g, "samples", train, density, grid_shape, samples, GRID_BOX,
                  "Two moons: training data, the density your flow assigns (on the grader's grid) and 2000 of "
                  "your samples, on the same axes.")


def check_spirals(g, train, test, latents, sample_seed) -> None:
    """The C tier: the same kinds of checks for model_c, the flow fit_c trained on the two spirals."""
    density = samples = None
    grid, grid_shape = grid_points(C_GRID_BOX)
    try:
        g.progress("checking your C model")
        # Validity first: the likelihood of a map that is not an invertible flow with the right log_det
        # means nothing (z = 0 with log_det = the true log-density would score perfectly otherwise). Where
        # the data and the samples live: far outside the spirals a deep flow is so badly conditioned that
        # float32 cannot undo it, and now and then a latent from the far tail lands there, hence the
        # 99th percentile of the round-trip error instead of the E check's maximum.
        points = as_sent(test[:N_FD_DATA + N_FD_BOX])
        theirs, ours = finite_difference_log_det(g, points, "model_c")
        ld_gap = float((theirs - ours).abs().median())
        errors = torch.cat(round_trip_errors(g, test[:2000], latents, "model_c"))
        rt = float(errors.quantile(0.99))
        valid = ld_gap <= LOG_DET_LIMIT and rt <= ROUND_TRIP_LIMIT
        numbers = (f"median |log_det - log|det J|| over 300 test points {ld_gap:.2e} nats (at most {LOG_DET_LIMIT}); "
                   f"round trip, 99th percentile over 2000 test points and 1000 N(0, I) latents, {rt:.2e} (at most "
                   f"{ROUND_TRIP_LIMIT:.0e})")
        g.record("c_flow", valid, f"model_c: {numbers}."
                 + ("" if valid else " The two-spirals model must be an invertible flow whose log_det is "
                                     "log|det dz/dx| of its forward, like the moons model: see the E checks "
                                     "log_det and round_trip for how to investigate."),
                 note=f"{numbers}; largest round-trip error {float(errors.max()):.2e}")

        z, log_det = forward(g, test, "model_c")
        nll = float(nll_from_flow(z, log_det).mean())
        optimum = float(-spirals_true_log_prob(as_sent(test)).mean())
        g.metric("c_nll", nll - optimum,
                 hint=f"Your test NLL is {nll:.3f} nats per point and the true density scores {optimum:.3f} on "
                      "the same points. Winding a Gaussian into two interleaved spirals takes many alternating "
                      "couplings: try 12-16, train for more steps (the whole budget), with a smaller learning "
                      "rate and gradient clipping if the loss jumps. The figure shows where your density "
                      "differs from the data.",
                 note=f"NLL {nll:.4f}, true density {optimum:.4f}")

        z_grid, ld_grid = forward(g, grid, "model_c")
        density = (-nll_from_flow(z_grid, ld_grid)).exp()
        record_mass(g, "c_grid_mass", float(density.sum()) * GRID_STEP**2, C_GRID_BOX)

        g.progress("sampling from your C model")
        first = g.call("model_c.sample", N_SAMPLES, seed=sample_seed)
        if first.shape[0] != N_SAMPLES:
            g.record("c_samples", False, f"sample({N_SAMPLES}, seed=...) returned {first.shape[0]} points.")
        else:
            samples = first
            metric_samples(g, "c_samples", first, test)
    finally:
        attach_figure(g, "spirals", train, density, grid_shape, samples, C_GRID_BOX,
                      "C, two spirals: training data, the density of your fit_c flow (on the grader's grid) "
                      "and 2000 of its samples, on the same axes.")


# ---- shared pieces of the checks ----

def record_mass(g, name: str, mass: float, box: tuple[float, float, float, float] = GRID_BOX) -> None:
    ok = MASS_LOW <= mass <= MASS_HIGH
    where = f"[{box[0]}, {box[1]}] x [{box[2]}, {box[3]}]"
    g.record(name, ok,
             f"exp(log p) integrates to {mass:.4f} over the box {where}; it needs to lie in [{MASS_LOW}, {MASS_HIGH}]."
             + ("" if ok else " The grader uses log p = log N(z; 0, I) + log_det from your forward: a wrong "
                              "sign of log_det, a missing term (a layer, or the log-det of a fixed "
                              "standardisation, -sum log std) or a forward that is not invertible all show "
                              "up here."),
             value=mass if math.isfinite(mass) else None)


def round_trip_errors(g, x: torch.Tensor, latents: torch.Tensor, model: str = "model"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, |inverse(forward(x)) - x| / (1 + |x|) [N] and the same for forward(inverse(z)) - z [M],
    each the largest over the two coordinates."""
    x_back = g.call(f"{model}.inverse", forward(g, x, model)[0])
    err_x = rel_errors(x_back, as_sent(x)).amax(1)
    z_back = forward(g, g.call(f"{model}.inverse", latents), model)[0]
    err_z = rel_errors(z_back, as_sent(latents)).amax(1)
    return err_x, err_z


def metric_samples(g, name: str, samples: torch.Tensor, test: torch.Tensor) -> None:
    distance = energy_distance(samples, test[:N_SAMPLES])
    floor = energy_distance(test[N_SAMPLES : 2 * N_SAMPLES], test[2 * N_SAMPLES : 3 * N_SAMPLES])
    g.metric(name, distance,
             hint="Sample z ~ N(0, I) and push it through inverse (not forward). The figure shows your samples "
                  "next to the data.",
             detail=f"Two independent real samples of this size: {floor:.4f}.", note=f"real vs real {floor:.2e}")


def attach_figure(g, name: str, train, density, shape, samples, box, caption: str) -> None:
    if density is None and samples is None:
        return  # the model gave nothing to draw
    g.figure(name, caption, lambda fig: draw_samples_figure(fig, train, density, shape, samples, box),
             size=figure_size(box))
