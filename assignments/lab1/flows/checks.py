"""Trusted checks for the normalising-flows part. Runs in the grader, never in the sandbox.

Data: a blurred curve, then a secret smooth map of the plane, drawn anew for every run.
E: two moons (the recipe of scikit-learn's make_moons(noise=0.1), arc parameter drawn uniformly).
C: two spirals (arm a in {0, 1}, s ~ U(0, 1), radius 0.3 + 2.7 s, angle 2 pi s + pi a, + N(0, 0.12^2 I)).
Each run turns the curve by a secret angle and bends it with two secret sinusoidal shears. Every step of
that map preserves area, so the true density is the curve's density at the unbent point, known exactly
(quadrature along the curve), and its entropy stays what the handout quotes; but no formula from the
handout describes a run's data, so a flow must be learned from it.

Scoring works on the very rows that are scored (docs/architecture.md): every point whose likelihood or
density counts is sent with its four finite-difference neighbours, shuffled among all other rows of the
round, so every scored log_det is compared with the Jacobian of the student's own forward, and every
point's latent comes back through inverse in a later round (a fresh process). The samples must be the
flow's inverse of the seed's prescribed standard-normal draw, which the grader sends to inverse in the
later round without the seed. Every number is computed here from z, log_det and the returned points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checklib import jacobians
from grader.checklib.batches import Interleaved, secret_subset
from grader.checklib.copies import memorised_fraction, nn_distance_ratio
from grader.checklib.numerics import as_sent, rel_errors

N_TRAIN = 10000
N_TEST = 8000           # scored for the NLL, each with its finite-difference neighbours
N_MASS = 12000          # importance-sampling points for the density's mass, alike to the test points
N_SAMPLES = 4000        # per seed; the energy distance's noise at this size is about 0.0007
N_FRESH = 3 * N_SAMPLES  # never sent: the real samples the energy distances compare with
N_DUPLICATES = 500      # test points sent again in round 2 (a fresh process): they must get the same answer
N_ROUND_TRIP_OTHERS = 10000  # besides every test point, a secret share of the neighbours and mass points
N_LATENTS, N_TAIL_LATENTS = 2000, 100
CHUNK = 8192            # rows per call: a student's model may keep an autograd graph per call

# Validity, the same limits for both tiers (a likelihood counts only for a valid flow).
ROUND_TRIP_LIMIT, LOG_DET_LIMIT = 1e-4, 0.01
# The log_det limit holds at these quantiles of the scored points, so a log_det wrong on more than 5 % of
# them (10 % for C) fails, while the few points where a ReLU kink spoils the finite differences do not count.
# Measured on honest flows (reference, spline_coupling, mixture_cdf; seeds 1, 2, 4): the E gap's 95th
# percentile at most 1.2e-3 nats; the 16-coupling C reference's 90th at most 2.0e-3 (its 95th reached 7.9e-3).
LOG_DET_QUANTILE, LOG_DET_QUANTILE_C = 0.95, 0.90
DETERMINISM_LIMIT = 1e-5
NEGLIGIBLE_LOG_DENSITY = -20.0  # where the round trip is not asked for (nothing is scored there)
# Where a log_det differs from the finite-difference value by more than this, the NLL uses the latter
# (+- this): a rare kink of a ReLU network costs nothing, a made-up log_det gains at most this much.
LOG_DET_CLIP = 0.05
MASS_TOLERANCE = 0.03
SAMPLE_TOLERANCE = 1e-4
COPY_RATIO, COPY_FRACTION = 0.05, 0.10
# A flag for the examiner, never a fail (g.flag): samples nearer the
# training set than fresh data are.
NEAR_TRAINING_RATIO = 0.8


# ---- the data: a blurred curve under a secret area-preserving map ----

@dataclass(frozen=True)
class Warp:
    """Rotation about `centre`, then x0 += a sin(b x1 + p), then x1 += a' sin(b' x0 + p'): each step has
    Jacobian determinant 1, and each is undone in closed form."""

    centre: tuple[float, float]
    angle: float
    shears: tuple[tuple[float, float, float], tuple[float, float, float]]

    @classmethod
    def draw(cls, rng: np.random.Generator, centre: tuple[float, float], amplitude: tuple[float, float],
             frequency: tuple[float, float]) -> Warp:
        shears = tuple((float(rng.uniform(*amplitude)), float(rng.uniform(*frequency)),
                        float(rng.uniform(0, 2 * math.pi))) for _ in range(2))
        return cls(centre, float(rng.uniform(0, 2 * math.pi)), shears)

    def _rotation(self) -> torch.Tensor:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        centre = torch.tensor(self.centre, dtype=torch.float64)
        x = (x - centre) @ self._rotation().T + centre
        (a1, b1, p1), (a2, b2, p2) = self.shears
        x0 = x[:, 0] + a1 * torch.sin(b1 * x[:, 1] + p1)
        return torch.stack([x0, x[:, 1] + a2 * torch.sin(b2 * x0 + p2)], dim=1)

    def undo(self, x: torch.Tensor) -> torch.Tensor:
        (a1, b1, p1), (a2, b2, p2) = self.shears
        x1 = x[:, 1] - a2 * torch.sin(b2 * x[:, 0] + p2)
        x = torch.stack([x[:, 0] - a1 * torch.sin(b1 * x1 + p1), x1], dim=1)
        centre = torch.tensor(self.centre, dtype=torch.float64)
        return (x - centre) @ self._rotation() + centre


def moons_centres(t: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Arc parameter t in [0, 1] along moon `arm` (0 outer, 1 inner)."""
    angle = math.pi * t
    outer = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    inner = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    return np.where((arm == 0)[:, None], outer, inner)


def spiral_centres(s: np.ndarray, arm: np.ndarray) -> np.ndarray:
    r = 0.3 + 2.7 * s
    phi = 2 * math.pi * s + math.pi * arm
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


@dataclass(frozen=True)
class Family:
    """Points on `arms` equally likely curves, blurred by N(0, sigma^2 I), then bent by `warp`. `spread`
    is the standard deviation of the broad part of the importance-sampling proposal; `box` the figure's."""

    name: str
    curve: Callable[[np.ndarray, np.ndarray], np.ndarray]
    arms: int
    sigma: float
    quadrature: int
    warp: Warp
    spread: float
    box: tuple[float, float, float, float]

    def sample(self, rng: np.random.Generator, n: int, sigma: float | None = None) -> torch.Tensor:
        centres = self.curve(rng.uniform(0.0, 1.0, n), rng.integers(0, self.arms, n))
        blurred = centres + (sigma or self.sigma) * rng.normal(size=(n, 2))
        return self.warp.apply(torch.from_numpy(blurred))

    def log_prob(self, x: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """The exact log-density, by the midpoint rule along each curve. With quadrature points at most a third
        of sigma apart its error, measured against twenty times as many points, averages below 1e-5 nats over
        data points (at most 0.03 next to the curves' ends)."""
        sigma = sigma or self.sigma
        t = (np.arange(self.quadrature) + 0.5) / self.quadrature
        centres = torch.from_numpy(np.concatenate([self.curve(t, np.full(self.quadrature, a)) for a in range(self.arms)]))
        out = []
        for rows in self.warp.undo(x).split(4000):
            d2 = torch.cdist(rows, centres) ** 2
            out.append(torch.logsumexp(-d2 / (2 * sigma**2), dim=1) - math.log(2 * math.pi * sigma**2)
                       - math.log(len(centres)))
        return torch.cat(out)

    def proposal(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Points for the mass estimate and their log-density under the proposal: 80 % drawn like the data with
        1.5 x the blur (per point alike to a test point), 20 % from a broad Gaussian around the data."""
        broad = rng.random(n) < 0.2
        centre = torch.tensor(self.warp.centre, dtype=torch.float64)
        x = self.sample(rng, n, 1.5 * self.sigma)
        x[broad] = centre + self.spread * torch.from_numpy(rng.normal(size=(int(broad.sum()), 2)))
        x = as_sent(x)
        log_broad = -((x - centre) ** 2).sum(1) / (2 * self.spread**2) - math.log(2 * math.pi * self.spread**2)
        log_q = torch.logaddexp(math.log(0.8) + self.log_prob(x, 1.5 * self.sigma), math.log(0.2) + log_broad)
        return x, log_q


def draw_moons(rng: np.random.Generator) -> Family:
    return Family("two moons", moons_centres, 2, 0.1, 150, Warp.draw(rng, (0.5, 0.25), (0.15, 0.3), (1.0, 2.0)),
                  spread=1.5, box=(-2.1, 3.1, -2.35, 2.85))


def draw_spirals(rng: np.random.Generator) -> Family:
    return Family("two spirals", spiral_centres, 2, 0.12, 300, Warp.draw(rng, (0.0, 0.0), (0.15, 0.3), (0.4, 0.9)),
                  spread=2.5, box=(-4.5, 4.5, -4.5, 4.5))


def nll_from_flow(z: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
    """-log p(x) = -log N(z; 0, I) - log|det dz/dx|, per row, with the grader's own base density."""
    return 0.5 * (z**2).sum(-1) + math.log(2 * math.pi) - log_det


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased (U-statistic) energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'|; 0 in expectation when equal."""
    def within(u: torch.Tensor) -> torch.Tensor:
        n = u.shape[0]
        return torch.cdist(u, u).sum() / (n * (n - 1))
    return float(2 * torch.cdist(a, b).mean() - within(a) - within(b))


def standard_draw(n: int, seed: int) -> torch.Tensor:
    """The latents sample(n, seed) must run backwards (the handout prescribes this very call)."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).to(torch.float64)


def figure_grid(box: tuple[float, float, float, float], step: float = 0.05) -> tuple[torch.Tensor, tuple[int, int]]:
    x0, x1, y0, y1 = box
    xs = x0 + (torch.arange(round((x1 - x0) / step), dtype=torch.float64) + 0.5) * step
    ys = y0 + (torch.arange(round((y1 - y0) / step), dtype=torch.float64) + 0.5) * step
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), (len(ys), len(xs))


# ---- what one model is asked, in two rounds, and what it answered ----

def send_rows(r, entry: str, rows: torch.Tensor) -> list:
    return [r.call(entry, chunk) for chunk in rows.split(CHUNK)]


def gathered(pendings: list) -> object:
    """The answers of a chunked call, joined (a dict of tensors for forward); raises the first failure."""
    values = [p.value for p in pendings]
    if isinstance(values[0], dict):
        return {k: torch.cat([v[k] for v in values]) for k in values[0]}
    return torch.cat(values)


def failed(pendings: list) -> bool:
    return any(p.error is not None for p in pendings)


@dataclass
class Inquiry:
    """Everything asked of one flow (`model` or `model_c`) and the rows behind it.

    Round 1: forward of the scored test points, the mass points, every one of their finite-difference
    neighbours and a coarse grid for the figure, all in one shuffled batch; inverse of fresh latents; two
    samples. Round 2 (a fresh process): inverse of the latents forward returned for every test point and a
    secret share of the other points, mixed with the two seeds' standard draws; forward of what inverse made
    of the fresh latents, of the first sample, and of a secret subset of the test points again."""

    model: str
    family: Family
    test: torch.Tensor
    mass: torch.Tensor
    mass_log_q: torch.Tensor
    latents: torch.Tensor
    seeds: tuple[int, int]
    rng: np.random.Generator
    batch: Interleaved | None = None
    back: Interleaved | None = None
    duplicates: torch.Tensor | None = None  # which test points are sent again in round 2
    round_tripped: torch.Tensor | None = None  # which of forward's latents go back through inverse
    asked: dict[str, list] = field(default_factory=dict)

    @classmethod
    def draw(cls, model: str, family: Family, rng: np.random.Generator) -> Inquiry:
        test = as_sent(family.sample(rng, N_TEST))
        mass, log_q = family.proposal(rng, N_MASS)
        radius = torch.from_numpy(rng.uniform(3.0, 4.0, N_TAIL_LATENTS))
        angle = torch.from_numpy(rng.uniform(0, 2 * math.pi, N_TAIL_LATENTS))
        tails = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
        latents = as_sent(torch.cat([torch.from_numpy(rng.normal(size=(N_LATENTS, 2))), tails]))
        seeds = tuple(int(s) for s in rng.integers(0, 2**31 - 1, size=2))
        return cls(model, family, test, mass, log_q, latents, seeds, rng)

    @property
    def centres(self) -> torch.Tensor:
        """The points whose answers are scored: the test points, then the mass points."""
        return torch.cat([self.test, self.mass])

    def ask_first(self, r) -> None:
        grid, _ = figure_grid(self.family.box)
        self.batch = Interleaved(self.rng, self.centres, *jacobians.neighbours(self.centres), as_sent(grid))
        self.asked["forward"] = send_rows(r, f"{self.model}.forward", self.batch.rows)
        self.asked["inverse_latents"] = [r.call(f"{self.model}.inverse", self.latents)]
        self.asked["samples"] = [r.call(f"{self.model}.sample", N_SAMPLES, seed=s) for s in self.seeds]
        self.asked["forward_draw"] = [r.call(f"{self.model}.forward", standard_draw(N_SAMPLES, self.seeds[0]))]

    def ask_second(self, r) -> None:
        """Queue what needs round 1's answers. A query whose input failed is not sent: reading it raises the
        failure of its input, inside the section that needs it."""
        if failed(self.asked["forward"]):
            self.asked["inverse"] = self.asked["forward"]
        else:
            latents = torch.cat([group["z"] for group in self.forward_groups()[:5]])
            others = N_TEST + secret_subset(self.rng, len(latents) - N_TEST, N_ROUND_TRIP_OTHERS)
            self.round_tripped = torch.cat([torch.arange(N_TEST), others.sort().values])
            self.back = Interleaved(self.rng, torch.cat([latents[self.round_tripped],
                                                         *(standard_draw(N_SAMPLES, s) for s in self.seeds)]))
            self.asked["inverse"] = send_rows(r, f"{self.model}.inverse", self.back.rows)
        if failed(self.asked["inverse_latents"]):
            self.asked["forward_latents"] = self.asked["inverse_latents"]
        else:
            self.asked["forward_latents"] = [r.call(f"{self.model}.forward", gathered(self.asked["inverse_latents"]))]
        self.duplicates = secret_subset(self.rng, N_TEST, N_DUPLICATES)
        self.asked["forward_again"] = [r.call(f"{self.model}.forward", self.test[self.duplicates])]
        first = self.asked["samples"][0]
        if first.error is not None or first.value.shape != (N_SAMPLES, 2):
            self.asked["forward_sample"] = [first]
        else:
            self.asked["forward_sample"] = [r.call(f"{self.model}.forward", first.value)]

    def forward_groups(self) -> list[dict[str, torch.Tensor]]:
        """forward's answers per group: centres, their 4 neighbour sets, the figure grid."""
        return self.batch.split(gathered(self.asked["forward"]))

    def inverted(self) -> torch.Tensor:
        """Round 2's inverse of the latents forward returned for the points `round_tripped` picks out of
        `Answers.sent`, then of the two draws."""
        return self.back.split(gathered(self.asked["inverse"]))[0]

    def answers(self) -> Answers:
        groups = self.forward_groups()
        centres, nbrs, grid = groups[0], groups[1:5], groups[5]
        twice = self.asked["forward_again"][0].value
        n_test = len(self.test)
        jac = jacobians.jacobian(jacobians.neighbours(self.centres), [group["z"] for group in nbrs])
        fd = torch.linalg.slogdet(jac)[1]
        determinism = max(float(rel_errors(twice[k], centres[k][self.duplicates]).max()) for k in ("z", "log_det"))
        return Answers(self, centres["z"][:n_test], centres["log_det"][:n_test], fd[:n_test],
                       centres["z"][n_test:], centres["log_det"][n_test:], fd[n_test:],
                       torch.cat([self.centres, *jacobians.neighbours(self.centres)]), jac, grid, determinism)


@dataclass
class Answers:
    """Round 1's forward answers, in the grader's terms."""

    inquiry: Inquiry
    z: torch.Tensor            # the test points' latents and log_dets, and the finite-difference log|det J|
    log_det: torch.Tensor
    fd: torch.Tensor
    mass_z: torch.Tensor       # the same for the mass points
    mass_log_det: torch.Tensor
    mass_fd: torch.Tensor
    sent: torch.Tensor         # every point forward got in round 1 whose latent went back to inverse
    jacobian: torch.Tensor     # dz/dx at the test and mass points, by finite differences [P, 2, 2]
    grid: dict[str, torch.Tensor]
    determinism: float

    def log_det_gaps(self) -> torch.Tensor:
        return torch.cat([self.log_det - self.fd, self.mass_log_det - self.mass_fd]).abs()

    def nll(self) -> torch.Tensor:
        """Per test point, with log_det held within LOG_DET_CLIP of the finite-difference value."""
        held = torch.maximum(torch.minimum(self.log_det, self.fd + LOG_DET_CLIP), self.fd - LOG_DET_CLIP)
        return nll_from_flow(self.z, held)

    def mass(self) -> tuple[float, float]:
        """The importance-sampling estimate of the integral of exp(log p) with the student's own log_det,
        and its standard error."""
        log_w = -nll_from_flow(self.mass_z, self.mass_log_det) - self.inquiry.mass_log_q
        w = log_w.clamp(max=50).exp()
        return float(w.mean()), float(w.std() / math.sqrt(len(w)))


# ---- the figure ----

def figure_size(box: tuple[float, float, float, float]) -> tuple[float, float]:
    x0, x1, y0, y1 = box
    return 10.5, 3.3 * (y1 - y0) / (x1 - x0) + 0.5


def draw_samples_figure(fig: Figure, train: torch.Tensor, density: torch.Tensor | None, shape,
                        samples: torch.Tensor | None, box: tuple[float, float, float, float]) -> None:
    x0, x1, y0, y1 = box
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    shown = train[:2000].numpy()
    axes[0].scatter(shown[:, 0], shown[:, 1], s=2, c="tab:blue", alpha=0.5)
    axes[0].set_title("training data (2000 of them)")
    if density is not None:
        shown_density = torch.nan_to_num(density, nan=0.0, posinf=0.0).view(*shape)
        top = float(shown_density.quantile(0.999))
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


@dataclass(frozen=True)
class Names:
    """The checks of one tier, by role."""

    fit: str
    round_trip: str
    log_det: str
    mass: str
    nll: str
    samples: str
    sample_seed: str


E_NAMES = Names("fit_budget", "round_trip", "log_det", "density_mass", "nll", "samples", "sample_seed")
C_NAMES = Names("c_fit_budget", "c_flow", "c_flow", "c_density_mass", "c_nll", "c_samples", "c_sample_seed")


def grade(g) -> None:
    moons, spirals = draw_moons(g.rng), draw_spirals(g.rng)
    train, c_train = as_sent(moons.sample(g.rng, N_TRAIN)), as_sent(spirals.sample(g.rng, N_TRAIN))

    # Both trainings come first: what they print is the student's to see, since nothing hidden has been
    # sent yet. The C tier is optional, so a missing fit_c fails only the C checks.
    g.progress("training your model on the two moons")
    g.train("fit", train, check="fit_budget", hint=BUDGET_HINT, probe=("model.forward", (train[:16],), {}))
    g.progress("training your C model on the two spirals")
    g.train("fit_c", c_train, check="c_fit_budget", hint=BUDGET_HINT,
              probe=("model_c.forward", (c_train[:16],), {}))

    inquiries = [Inquiry.draw("model", moons, g.rng), Inquiry.draw("model_c", spirals, g.rng)]
    g.progress("checking your models")
    with g.round() as r:
        for inquiry in inquiries:
            inquiry.ask_first(r)
    with g.round() as r:  # a fresh process: what forward answered comes back through inverse here
        for inquiry in inquiries:
            inquiry.ask_second(r)

    for inquiry, names, data in ((inquiries[0], E_NAMES, train), (inquiries[1], C_NAMES, c_train)):
        fresh = as_sent(inquiry.family.sample(g.rng, N_FRESH))
        examine(g, inquiry, names, data, fresh)


def examine(g, inquiry: Inquiry, names: Names, train: torch.Tensor, fresh: torch.Tensor) -> None:
    drawn: dict[str, torch.Tensor | None] = {"density": None, "samples": None}
    shape = figure_grid(inquiry.family.box)[1]
    with g.section(*dict.fromkeys([names.log_det, names.round_trip, names.mass, names.nll])):
        answers = inquiry.answers()
        drawn["density"] = (-nll_from_flow(answers.grid["z"], answers.grid["log_det"])).exp()
        if names.log_det == names.round_trip:
            record_c_flow(g, names.log_det, inquiry, answers)
        else:
            record_log_det(g, names.log_det, answers)
            record_round_trip(g, names.round_trip, inquiry, answers)
        record_mass(g, names.mass, answers)
        record_nll(g, names, inquiry, answers)
    with g.section(names.sample_seed, names.samples):
        samples = record_sample_seed(g, names.sample_seed, inquiry, train, fresh)
        drawn["samples"] = samples
        if g.requires(names.samples, names.sample_seed,
                      failed="Not counted: these samples are not your flow's inverse of the seed's latents (see "
                             f"{names.sample_seed}), so they say nothing about your model."):
            record_samples(g, names.samples, samples, fresh)
    if drawn["density"] is not None or drawn["samples"] is not None:
        caption = (f"{inquiry.family.name.capitalize()} (bent by this run's secret map): training data, the density "
                   f"of your {inquiry.model} (on a grid) and 2000 of its samples, on the same axes.")
        g.figure("samples" if inquiry.model == "model" else "spirals", caption,
                 lambda fig: draw_samples_figure(fig, train, drawn["density"], shape, drawn["samples"],
                                                 inquiry.family.box),
                 size=figure_size(inquiry.family.box))


# ---- validity ----

def round_trip_errors(inquiry: Inquiry, answers: Answers) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, in latent units: how far forward would move the point that inverse(forward(x)) returned,
    |J (inverse(forward(x)) - x)| / (1 + |z|) with J the finite-difference Jacobian at x, over every test point
    and a secret share of the other points forward got (mass points and the neighbours, each neighbour with
    its point's J); and
    |forward(inverse(z)) - z| / (1 + |z|) over the fresh latents. In latent units the float32 rounding of z
    costs nothing even where a flow squeezes space hard (there an error in x is large but harmless).
    Where the model's density is below e^-20 nothing is scored and nothing is asked."""
    rows = inquiry.round_tripped
    error = inquiry.inverted()[: len(rows)] - answers.sent[rows]
    jac = answers.jacobian.repeat(5, 1, 1)[rows]
    z = torch.cat([answers.z, answers.mass_z]).repeat(5, 1)[rows]
    err_x = ((jac @ error.unsqueeze(-1)).squeeze(-1).abs() / (1 + z.abs())).amax(1)
    log_p = -nll_from_flow(torch.cat([answers.z, answers.mass_z]), torch.cat([answers.log_det, answers.mass_log_det]))
    err_x = err_x[log_p.repeat(5)[rows] > NEGLIGIBLE_LOG_DENSITY]
    err_z = rel_errors(gathered(inquiry.asked["forward_latents"])["z"], inquiry.latents).amax(1)
    return err_x, err_z


def record_log_det(g, name: str, answers: Answers) -> None:
    gap = answers.log_det_gaps()
    log_det = torch.cat([answers.log_det, answers.mass_log_det])
    fd = torch.cat([answers.fd, answers.mass_fd])
    g.metric(name, float(gap.quantile(LOG_DET_QUANTILE)), hint=log_det_hint(log_det, fd, answers.determinism),
             note=f"over {len(gap)} points: median {float(gap.median()):.3e}, 99th percentile "
                  f"{float(gap.quantile(0.99)):.3e}, max {float(gap.max()):.3e}")


def log_det_hint(log_det: torch.Tensor, fd: torch.Tensor, determinism: float) -> str:
    """Why the log_det the model returned is not log|det J| of its forward, from the two at every point."""
    offset = log_det - fd
    if determinism > DETERMINISM_LIMIT:
        return ("forward gives the same point different answers in different processes (see round_trip), so its "
                "Jacobian cannot even be measured: make forward a function of each row alone (model.eval() before "
                "fit returns).")
    if float((log_det + fd).abs().median()) <= LOG_DET_LIMIT:
        return ("Your log_det is minus the log-determinant of forward's Jacobian: it is log|det dx/dz|, the inverse "
                "map's. forward goes data to latent, so each affine coupling adds +s.")
    if float((offset - offset.median()).abs().median()) <= LOG_DET_LIMIT:
        return (f"Your log_det differs from log|det J| by about the same amount at every point "
                f"({float(offset.median()):+.3f} nats): a term that does not depend on x is missing or extra, such as "
                "the -sum log std of a standardisation inside the flow, or the log-scales of layers that are not "
                "added to the total (every layer's log-det must be summed).")
    return ("log_det must be log|det dz/dx| of forward (data to latent), one value per row: for an affine coupling "
            "that is the sum of the log-scales s over the changed coordinates, summed over all layers (plus -sum log "
            "std if you standardise inside the flow). Compare with torch.autograd.functional.jacobian on a few "
            "points, as test_public.py does.")


def record_round_trip(g, name: str, inquiry: Inquiry, answers: Answers) -> None:
    err_x, err_z = round_trip_errors(inquiry, answers)
    x_worst, z_worst = float(err_x.max()), float(err_z.max())
    tail = float(err_z[N_LATENTS:].max())
    typical = float(err_z[:N_LATENTS].quantile(0.99))
    g.metric(name, max(x_worst, z_worst, answers.determinism),
             hint=round_trip_hint(x_worst, z_worst, typical, tail, answers.determinism),
             note=f"x {x_worst:.3e} over {len(err_x)} points, z {z_worst:.3e} (tails {tail:.3e}), "
                  f"same point twice {answers.determinism:.3e}")


def round_trip_hint(x_worst: float, z_worst: float, typical: float, tail: float, determinism: float) -> str:
    """What the measured round trips say: a batch-dependent forward, an inverse that fails only in the tails,
    or one that does not undo forward."""
    if determinism > DETERMINISM_LIMIT:
        return (f"forward gave the same point answers {determinism:.1e} apart in two processes (two different "
                "batches): the model depends on its batch or is random (a BatchNorm or dropout left in training "
                "mode?). Call model.eval() before fit returns, and make forward a function of each row alone.")
    if tail > ROUND_TRIP_LIMIT and typical <= ROUND_TRIP_LIMIT:
        return (f"The round trip holds for typical latents but not for latents 3 to 4 standard deviations out "
                f"(error {tail:.1e}): does inverse clamp z or the log-scales? inverse must undo forward everywhere "
                "the model puts probability.")
    return (f"inverse(forward(x)) is off by {x_worst:.2e} (in latent units) and forward(inverse(z)) by {z_worst:.2e}. "
            "The inverse must undo the layers in reverse order, and each coupling must compute its scale and shift "
            "from the coordinate it leaves unchanged.")


def record_c_flow(g, name: str, inquiry: Inquiry, answers: Answers) -> None:
    """The C model's validity in one check: log_det and the round trip, as the E checks, where the data and
    the samples live. Far outside the spirals a deep flow is so badly conditioned that float32 cannot undo
    it, and now and then a latent from the far tail lands there: hence the 99th percentile of the round trip
    over the data points, their neighbours and the latents."""
    gap = float(answers.log_det_gaps().quantile(LOG_DET_QUANTILE_C))
    err_x, err_z = round_trip_errors(inquiry, answers)
    rt = float(torch.cat([err_x, err_z]).quantile(0.99))
    problems = []
    if gap > LOG_DET_LIMIT:
        problems.append(f"|log_det - log|det J|| is {gap:.2e} nats at the 90th percentile of the scored points "
                        f"(at most {LOG_DET_LIMIT}): log_det "
                        "must be log|det dz/dx| of forward, every layer summed (see the E check log_det)")
    if rt > ROUND_TRIP_LIMIT:
        problems.append(f"the round trip misses by {rt:.2e} at the 99th percentile (at most {ROUND_TRIP_LIMIT:.0e}): "
                        "inverse must undo the layers in reverse order (see the E check round_trip)")
    if answers.determinism > DETERMINISM_LIMIT:
        problems.append("forward gave different answers for the same point in two batches (a layer left in "
                        "training mode?)")
    summary = (f"|log_det - log|det J|| {gap:.2e} nats at the 90th percentile over {len(answers.log_det_gaps())} points; round trip, "
               f"99th percentile, {rt:.2e}")
    g.record(name, not problems, f"model_c: {summary}." + ("" if not problems else " Problems: " + "; ".join(problems) + "."),
             note=f"{summary}; largest round-trip error {float(torch.cat([err_x, err_z]).max()):.2e}; "
                  f"same point twice {answers.determinism:.2e}")


def record_mass(g, name: str, answers: Answers) -> None:
    mass, se = answers.mass()
    ok, text = mass_feedback(mass, se)
    g.record(name, ok, text, value=mass if math.isfinite(mass) else None, note=f"standard error {se:.4f}")


def mass_feedback(mass: float, se: float) -> tuple[bool, str]:
    ok = abs(mass - 1) <= MASS_TOLERANCE
    text = (f"exp(log p) integrates to {mass:.3f} (estimated from {N_MASS} points, standard error {se:.3f}); it needs "
            f"to lie within {MASS_TOLERANCE} of 1.")
    if ok:
        return True, text
    if mass < 1:
        cause = ("Less than 1: log_det is too small somewhere, as with a wrong sign (log|det dx/dz| instead of "
                 "log|det dz/dx|) or a missing layer or -sum log std term, or forward squeezes a region of data into "
                 "latents that are never reached.")
    else:
        cause = ("More than 1: log_det is too large somewhere (a term added twice, a sign flipped), or forward is not "
                 "one-to-one (two regions of data share their latents), which the round trip shows.")
    return False, f"{text} The grader uses log p = log N(z; 0, I) + log_det from your forward. {cause}"


def record_nll(g, names: Names, inquiry: Inquiry, answers: Answers) -> None:
    per_point = answers.nll()
    truth = -inquiry.family.log_prob(inquiry.test)
    nll, optimum = float(per_point.mean()), float(truth.mean())
    gap = nll - optimum
    noise = float((per_point - truth).std()) / math.sqrt(len(truth))
    note = f"NLL {nll:.4f}, true density {optimum:.4f}, standard error of the gap {noise:.4f}"
    not_counted = f"Not counted: {nll:.3f} nats per point would be your NLL, but a likelihood counts only for a valid flow"
    if names.round_trip == names.log_det:
        if not g.requires(names.nll, names.log_det, failed=f"{not_counted} (see {names.log_det})."):
            return
    elif not (g.requires(names.nll, names.log_det, failed=f"{not_counted}: log_det is not the log-determinant of "
                                                          f"your forward (see {names.log_det}).")
              and g.requires(names.nll, names.round_trip, failed=f"{not_counted}: inverse does not undo forward "
                                                                 f"(see {names.round_trip}).")):
        return
    if gap < -max(0.02, 5 * noise):
        g.flag(f"{inquiry.model}: NLL {gap:.3f} nats below the true density's")
        g.record(names.nll, False, below_truth_feedback(nll, optimum), value=gap if names.nll == "c_nll" else nll,
                 note=note)
        return
    context = f"Your test NLL is {nll:.3f} nats per point and the true density scores {optimum:.3f} on the same points."
    if names.nll == "nll":
        g.metric("nll", nll, note=note,
                 hint=context + " Train longer or with more coupling layers, anneal the learning rate, and check "
                                "that log_det is log|det dz/dx| (data to latent) summed over every layer.")
    else:
        g.metric("c_nll", gap, note=note,
                 hint=context + " Winding a Gaussian into two interleaved spirals takes many alternating couplings: "
                                "try 12-16, train for more steps (the whole budget), with a smaller learning rate and "
                                "gradient clipping if the loss jumps. The figure shows where your density differs "
                                "from the data.")


def below_truth_feedback(nll: float, optimum: float) -> str:
    return (f"Your NLL, {nll:.3f} nats per point, is {optimum - nll:.3f} below the true density's {optimum:.3f} on the "
            "same points, far more than chance allows: no valid density can do that on fresh data. Staff have been "
            "told; check that log_det is the log-determinant of forward at every point.")


# ---- samples ----

def record_sample_seed(g, name: str, inquiry: Inquiry, train: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor | None:
    """Sampling is the flow run backwards from the seed's prescribed standard-normal draw: sample(n, seed)
    equals what inverse (in another process, without the seed) makes of that draw, for two seeds."""
    first, second = (p.value for p in inquiry.asked["samples"])
    for samples in (first, second):
        if samples.shape != (N_SAMPLES, 2):
            g.record(name, False, f"sample({N_SAMPLES}, seed=...) returned {samples.shape[0]} points.")
            return None
    inverted = inquiry.inverted()[-2 * N_SAMPLES:]
    gaps = [float(rel_errors(s, inv).max()) for s, inv in zip((first, second), inverted.split(N_SAMPLES), strict=True)]
    copied = memorised_fraction(first.numpy(), train.numpy(), COPY_RATIO)
    nearness = nn_distance_ratio(first.numpy(), train.numpy(), fresh[:N_SAMPLES].numpy())
    if nearness < NEAR_TRAINING_RATIO:
        g.flag(f"{inquiry.model}: samples lie nearer the training set than fresh data (ratio {nearness:.2f})")
    problems = sample_seed_problems(first, second, max(gaps), copied,
                                    lambda: sampler_diagnosis(first, inquiry.asked["forward_draw"][0].value["z"],
                                                              gathered(inquiry.asked["forward_sample"])["z"], max(gaps)))
    g.record(name, not problems,
             "sample(n, seed) is your flow's inverse of the seed's standard-normal draw, and a new seed gives new "
             "samples." if not problems else "Problems: " + "; ".join(problems) + ".",
             value=max(gaps), note=f"largest relative gap to inverse(z) {max(gaps):.2e}; copied fraction {copied:.3f}; "
                                   f"nearest-neighbour distance ratio to training vs fresh {nearness:.2f}")
    return first


def sample_seed_problems(first: torch.Tensor, second: torch.Tensor, gap: float, copied: float,
                         diagnosis: Callable[[], str]) -> list[str]:
    """What is wrong with two seeds' samples, given their largest gap to inverse of the seeds' draws and the
    share of them that sit on training points (`diagnosis` says why samples are not inverse(z))."""
    problems = []
    if float((first - second).abs().max()) <= 1e-3:
        problems.append("a different seed gave the same samples: draw z from a generator seeded with the seed "
                        "argument, not a fixed one")
    elif gap > SAMPLE_TOLERANCE:
        problems.append(diagnosis())
    if copied > COPY_FRACTION:
        problems.append(f"{copied:.0%} of the samples sit on a training point (sample from the flow, do not return "
                        "training data)")
    return problems


def sampler_diagnosis(samples: torch.Tensor, forward_of_draw: torch.Tensor, z_of_samples: torch.Tensor, gap: float) -> str:
    """Why sample(n, seed) is not inverse(z_seed): forward used instead of inverse, other latents, or no flow."""
    if float(rel_errors(samples, forward_of_draw).max()) <= SAMPLE_TOLERANCE:
        return ("your samples are forward(z), the data-to-latent direction: sampling runs the flow backwards, "
                "x = inverse(z)")
    mean, cov = z_of_samples.mean(0), torch.cov(z_of_samples.T)
    centred = float(mean.abs().max()) < 0.15
    scale = float(cov.diagonal().mean())
    isotropic = float((cov / scale - torch.eye(2, dtype=cov.dtype)).abs().max()) < 0.2
    if centred and isotropic and abs(scale - 1) >= 0.2:
        return (f"forward maps your samples to centred latents with variance {scale:.2f} instead of 1: the latents "
                f"are scaled by about {math.sqrt(scale):.2f} (a temperature?); sample must return inverse(z) for "
                "the seed's standard draw itself, z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))")
    if centred and isotropic:
        return (f"your samples differ from inverse(z) for the seed's draw by {gap:.1e}, yet forward maps them to "
                "standard-normal-looking latents: draw z exactly as the handout says, "
                "z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) (float32, no scaling or "
                "temperature), then return inverse(z)")
    return (f"your samples are not your flow's inverse of standard-normal latents (forward maps them to latents "
            f"with mean {[round(v, 2) for v in mean.tolist()]} and variances "
            f"{[round(v, 2) for v in cov.diagonal().tolist()]}, not 0 and 1): sample must return inverse(z) for "
            "z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))")


def record_samples(g, name: str, samples: torch.Tensor, fresh: torch.Tensor) -> None:
    distance = energy_distance(samples, fresh[:N_SAMPLES])
    floor = energy_distance(fresh[N_SAMPLES : 2 * N_SAMPLES], fresh[2 * N_SAMPLES : 3 * N_SAMPLES])
    g.metric(name, distance,
             hint="Your sampler is your flow run backwards, so your samples show where your density differs from "
                  "the data: the figure puts them side by side. A better fit (see the NLL) gives better samples.",
             detail=f"Two independent real samples of this size: {floor:.4f}.", note=f"real vs real {floor:.2e}")
