"""Trusted checks for the MDN part. Runs in the grader, never in the sandbox.

Data: Bishop's inverse problem, drawn anew for every run. y ~ U(0, 1) and x = h(y) + U(-w, w), where the
curve h(y) = y + a1 sin(2 pi f1 y + p1) + a2 sin(2 pi f2 y + p2) and the noise half-width w are secret
(Bishop's own: a1 = 0.3, f1 = 1, a2 = 0, w = 0.1); the student predicts y from x, where p(y | x) has up to
three or four modes. The exact conditional is uniform over {y in [0, 1] : |x - h(y)| <= w}, so the grader
knows its NLL on every test point and scores the student's NLL as the gap to it (an estimate of KL). No
formula in the handout describes a run's data: the mixture has to be learned from it.
Every score is computed here from the mixture parameters the student's model returns; the parameters of
the test points whose densities are compared with the truth, and of test points sent twice, come from the
same shuffled forward call as every other test point.

A tier: inverse kinematics of a planar two-link arm with secret link lengths, whose joint readings are off
by a secret smooth distortion: x = forward_kinematics(theta + d(theta)) + N(0, ARM_NOISE^2 I) with theta
uniform over a box. The exact p(theta | x) is known up to a 2-D integral, which the grader computes on a fine
grid of theta: that gives the exact conditional NLL (the student's gap to it estimates KL(p || q)) and the
exact mass of each elbow branch. The analytic inverse kinematics of the handout's arm does not describe it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checking import ResultInvalid
from grader.checklib.batches import Interleaved, secret_subset
from grader.checklib.numerics import as_sent, rel_error, rel_errors

N_TRAIN = 4000
N_TEST = 5000
N_COMPARED = 32          # test points whose whole density is compared with the truth (a secret subset)
N_INTEGRATED = 8         # ... of which this many are integrated with the student's mixture_log_prob
N_DUPLICATES = 200       # test points sent again in a later round: the same x must get the same mixture
N_BRANCH_POINTS, MIN_PIECE = 1000, 0.05  # test points searched for several pieces; the smallest piece counted
GRID = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)  # covers all of y's support with room
FINE = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000  # y in [0, 1], for the exact normaliser


@dataclass(frozen=True)
class Curve:
    """A run's secret data: x = h(y) + U(-w, w), y ~ U(0, 1)."""

    terms: tuple[tuple[float, float, float], ...]   # (amplitude, frequency, phase) of each sine
    half_width: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Curve:
        # The main wave folds the curve back once, near the middle of [0, 1] (its phase puts the steepest
        # descent at y = 0.5, give or take): folds that slid out of [0, 1] left some runs' curves so weakly
        # multimodal that one Gaussian came within 0.2 nats of the truth, indistinguishable from a mixture.
        # In this family the best single Gaussian (moment-matched to the exact conditional) is 0.5 nats or
        # more above it.
        amplitude, frequency = float(rng.uniform(0.30, 0.35)), float(rng.uniform(1.0, 1.2))
        main = (amplitude, frequency, math.pi * (1 - frequency) + float(rng.uniform(-0.3, 0.3)))
        ripple = (float(rng.uniform(0.02, 0.06)), float(rng.uniform(1.8, 2.6)), float(rng.uniform(0, 2 * math.pi)))
        return cls((main, ripple), float(rng.uniform(0.07, 0.12)))

    def h(self, y: torch.Tensor) -> torch.Tensor:
        return y + sum(a * torch.sin(2 * math.pi * f * y + p) for a, f, p in self.terms)

    def data(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.from_numpy(rng.uniform(0.0, 1.0, size=(n, 1)))
        return self.h(y) + torch.from_numpy(rng.uniform(-self.half_width, self.half_width, size=(n, 1))), y

    def exact_nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(y | x) of the exact conditional at any y it allows: log of the length of the allowed set,
        the share of a fine grid of y in [0, 1] whose h(y) lies within the half-width of x."""
        levels = self.h(FINE).sort().values
        x = x.flatten().contiguous()
        count = (torch.searchsorted(levels, x + self.half_width, right=True)
                 - torch.searchsorted(levels, x - self.half_width, right=False))
        # A point whose allowed set is shorter than the grid's step (y drawn within 1/20000 of 0 or 1, with
        # noise near its limit) would count 0 and make the exact NLL -inf, hence every gap +inf: count one step.
        return (count.clamp(min=1).double() / len(FINE)).log()

    @cached_property
    def on_grid(self) -> torch.Tensor:
        """h at every point of GRID (where y is outside [0, 1], +inf: nothing there explains any x)."""
        return torch.where((GRID >= 0) & (GRID <= 1), self.h(GRID), torch.tensor(math.inf, dtype=torch.float64))

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """The exact p(y | x) on GRID for each x [B] (or [B,1]): [B, G], normalised numerically on GRID."""
        density = ((x.reshape(-1, 1) - self.on_grid).abs() <= self.half_width).double()
        return density / torch.trapezoid(density, GRID, dim=1).unsqueeze(1)


def mixture_nll(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example -log p(y | x) in float64. The weights are normalised here: the score never depends on
    the student's normalisation (the simplex check judges that separately)."""
    log_w = torch.log_softmax(log_pi, dim=-1)
    z = (y - mu) / log_sigma.exp()
    log_normal = -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(log_w + log_normal, dim=-1)


def regression_baseline_nll(x_train, y_train, x_test, y_test, degree: int = 7) -> float:
    """A Gaussian regression: least-squares polynomial mean, one noise variance. It predicts the
    conditional mean, which for this inverse problem falls between the modes."""
    def features(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x**k for k in range(degree + 1)], dim=1)

    coef = torch.linalg.lstsq(features(x_train), y_train).solution
    resid = y_train - features(x_train) @ coef
    sigma2 = resid.pow(2).mean()
    err = y_test - features(x_test) @ coef
    nll = 0.5 * err**2 / sigma2 + 0.5 * torch.log(2 * math.pi * sigma2)
    return float(nll.mean())


def mixture_densities(params: dict, rows: torch.Tensor) -> torch.Tensor:
    """The student's mixtures at `rows` evaluated on GRID, weights normalised by the grader: [len(rows), G]."""
    out = []
    for chunk in rows.split(64):
        log_w = torch.log_softmax(params["log_pi"][chunk], dim=-1).unsqueeze(1)          # [b,1,K]
        mu, log_sigma = params["mu"][chunk].unsqueeze(1), params["log_sigma"][chunk].unsqueeze(1)
        z = (GRID.view(1, -1, 1) - mu) / log_sigma.exp()
        out.append(torch.logsumexp(log_w - 0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi), dim=-1).exp())
    return torch.cat(out)


def random_mixtures(rng: np.random.Generator, batch: int, k: int):
    log_pi = torch.from_numpy(rng.normal(size=(batch, k))).log_softmax(-1)
    mu = torch.from_numpy(rng.uniform(-1, 2, size=(batch, k)))
    log_sigma = torch.from_numpy(rng.uniform(-3, 0.5, size=(batch, k)))
    y = torch.from_numpy(rng.uniform(-1, 2, size=(batch, 1)))
    return log_pi, mu, log_sigma, y


# ---- warm-up: EM for an unconditional 1-D mixture, against scikit-learn ----
EM_N = 2000
EM_K = 5
EM_STEPS = 40


def em_step(x: torch.Tensor, log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor):
    """The grader's EM iteration in float64: x [N,1], parameters [K] -> new parameters [K]."""
    z = (x - mu) / log_sigma.exp()
    r = torch.softmax(log_pi + (-0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)), dim=-1)   # [N,K]
    counts = r.sum(0)
    new_mu = (r * x).sum(0) / counts
    variance = (r * (x - new_mu) ** 2).sum(0) / counts
    return (counts / x.shape[0]).log(), new_mu, 0.5 * variance.log()


def mean_log_likelihood(x: torch.Tensor, log_pi, mu, log_sigma) -> float:
    """Average log p(x) of an unconditional mixture ([K] parameters), weights normalised by the grader."""
    n = x.shape[0]
    return float(-mixture_nll(log_pi.expand(n, -1), mu.expand(n, -1), log_sigma.expand(n, -1), x).mean())


def sklearn_em(x: torch.Tensor, start: tuple[torch.Tensor, torch.Tensor, torch.Tensor], steps: int) -> float:
    """scikit-learn's GaussianMixture from the same start for the same number of iterations (tol=0 so it
    never stops early; reg_covar tiny so its M step is the textbook one)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    log_pi, mu, log_sigma = (t.numpy() for t in start)
    weights = np.exp(log_pi) / np.exp(log_pi).sum()  # exactly normalised, as scikit-learn insists
    gm = GaussianMixture(len(mu), max_iter=steps, tol=0.0, reg_covar=1e-12, weights_init=weights,
                         means_init=mu.reshape(-1, 1), precisions_init=np.exp(-2 * log_sigma).reshape(-1, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it "did not converge": tol=0 on purpose
        gm.fit(x.numpy())
    return float(gm.score(x.numpy()))


def check_em(g, x: torch.Tensor) -> None:
    with g.section("em_monotone", "em_sklearn"):
        g.progress("running your EM steps")
        x = as_sent(x)
        quantiles = torch.quantile(x.flatten(), (torch.arange(EM_K, dtype=torch.float64) + 0.5) / EM_K)
        start = (torch.full((EM_K,), -math.log(EM_K), dtype=torch.float64), quantiles,
                 torch.full((EM_K,), 0.5 * math.log(float(x.var()) / EM_K), dtype=torch.float64))
        start = as_sent(*start)
        params, history = start, []
        for _ in range(EM_STEPS):
            out = g.call("em_step", x, *params)
            params = (out["log_pi"], out["mu"], out["log_sigma"])
            history.append(mean_log_likelihood(x, *params))
        drops = [before - after for before, after in zip(history, history[1:], strict=False)]
        g.metric("em_monotone", max([0.0, *drops]),
                 hint="The log-likelihood went down after one of your EM steps, which EM never does. Check that "
                      "the E step uses the current weights and that the variances use the new means.")
        reference = sklearn_em(x, start, EM_STEPS)
        g.metric("em_sklearn", abs(history[-1] - reference),
                 hint="After the same number of steps from the same start, scikit-learn's EM reaches a different "
                      "likelihood: compare your E step (responsibilities sum to 1 over components) and M step.",
                 note=f"student {history[-1]:.6f}, sklearn {reference:.6f}, first step {history[0]:.6f}")


# ---- A tier: the two-link arm ----
ARM_N_TRAIN = 20000
ARM_N_TEST = 800
ARM_NOISE = 0.03                         # std of the hand position's noise
THETA1 = (-math.pi / 2, math.pi / 2)     # shoulder range (radians)
THETA2 = (-2.6, 2.6)                     # elbow range: both bends, never fully folded
ARM_GRID = (torch.linspace(*THETA1, 200, dtype=torch.float64),   # spacing 0.016 and 0.026 rad, about
            torch.linspace(*THETA2, 300, dtype=torch.float64))   # a third of the posterior's width
ARM_SAMPLES = 20                         # samples of theta per test target for the reach check


@dataclass(frozen=True)
class Arm:
    """A planar two-link arm with secret link lengths whose joint readings are off by a secret smooth amount:
    the joints really stand at theta + d(theta), d_1 = a sin(f theta_2 + p), d_2 = a' sin(f' theta_1 + p')."""

    l1: float
    l2: float
    bends: tuple[tuple[float, float, float], tuple[float, float, float]]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Arm:
        bends = tuple((float(rng.uniform(0.08, 0.15)), float(rng.uniform(1.0, 2.5)), float(rng.uniform(0, 2 * math.pi)))
                      for _ in range(2))
        return cls(float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.5, 0.9)), bends)

    def joints(self, theta: torch.Tensor) -> torch.Tensor:
        """Where the joints really stand for readings theta [...,2]."""
        (a1, f1, p1), (a2, f2, p2) = self.bends
        return torch.stack([theta[..., 0] + a1 * torch.sin(f1 * theta[..., 1] + p1),
                            theta[..., 1] + a2 * torch.sin(f2 * theta[..., 0] + p2)], dim=-1)

    def hand(self, theta: torch.Tensor) -> torch.Tensor:
        """Forward kinematics of the readings: theta [...,2] -> hand position [...,2]."""
        real = self.joints(theta)
        shoulder, elbow = real[..., 0], real[..., 0] + real[..., 1]
        return torch.stack([self.l1 * torch.cos(shoulder) + self.l2 * torch.cos(elbow),
                            self.l1 * torch.sin(shoulder) + self.l2 * torch.sin(elbow)], dim=-1)

    def data(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        theta = torch.from_numpy(np.stack([rng.uniform(*THETA1, n), rng.uniform(*THETA2, n)], axis=1))
        x = self.hand(theta) + ARM_NOISE * torch.from_numpy(rng.normal(size=(n, 2)))
        return x, theta

    def log_likelihood(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """log N(x; hand(theta), ARM_NOISE^2 I), broadcasting x [...,2] against theta [...,2]."""
        d2 = (x - self.hand(theta)).pow(2).sum(-1)
        return -0.5 * d2 / ARM_NOISE**2 - 2 * math.log(ARM_NOISE) - math.log(2 * math.pi)

    def exact_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each target x [B,2]: log Z(x) = log of the integral over the box of N(x; hand(theta), .),
        so that -log p(theta | x) = -log_likelihood(x, theta) + log Z(x); and the exact probability that
        the elbow angle is positive. Trapezoid rule on ARM_GRID (error < 1e-4 nats at this spacing)."""
        g1, g2 = ARM_GRID
        hands = self.hand(torch.stack(torch.meshgrid(g1, g2, indexing="ij"), dim=-1))   # [200,300,2]
        log_z, elbow_up = [], []
        for chunk in x.split(50):
            d2 = (chunk[:, None, None, :] - hands).pow(2).sum(-1)                        # [b,200,300]
            log_lik = -0.5 * d2 / ARM_NOISE**2 - 2 * math.log(ARM_NOISE) - math.log(2 * math.pi)
            peak = log_lik.amax(dim=(1, 2), keepdim=True)
            density = (log_lik - peak).exp()
            mass = torch.trapezoid(torch.trapezoid(density, g2, dim=2), g1, dim=1)        # [b]
            mass_up = torch.trapezoid(torch.trapezoid(density * (g2 > 0), g2, dim=2), g1, dim=1)
            log_z.append(peak.flatten() + mass.log())
            elbow_up.append(mass_up / mass)
        return torch.cat(log_z), torch.cat(elbow_up)


def arm_nll(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """-log q(theta | x) for a mixture of diagonal Gaussians, float64, weights normalised by the grader:
    [B,K], [B,K,2], [B,K,2], [B,2] -> [B]."""
    log_w = torch.log_softmax(log_pi, dim=-1)
    z = (theta.unsqueeze(1) - mu) / log_sigma.exp()
    log_normal = (-0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)
    return -torch.logsumexp(log_w + log_normal, dim=-1)


def sample_mixture(rng: np.random.Generator, log_pi, mu, log_sigma, n: int) -> torch.Tensor:
    """n draws of theta per row from the student's mixture, made by the grader: [B,n,2]."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    component = torch.multinomial(torch.softmax(log_pi, dim=-1), n, replacement=True, generator=gen)  # [B,n]
    pick = component.unsqueeze(-1).expand(-1, -1, 2)
    means, scales = mu.gather(1, pick), log_sigma.exp().gather(1, pick)                              # [B,n,2]
    return means + scales * torch.randn(means.shape, generator=gen, dtype=means.dtype)


def elbow_up_mass(log_pi, mu, log_sigma) -> torch.Tensor:
    """The student's probability that the elbow angle is positive, exactly: sum_k pi_k P(N(mu_k2, s_k2) > 0)."""
    normal = torch.distributions.Normal(0.0, 1.0)
    return (torch.softmax(log_pi, dim=-1) * normal.cdf(mu[..., 1] / log_sigma[..., 1].exp())).sum(-1)


def draw_arms(fig: Figure, arm: Arm, targets: torch.Tensor, samples: torch.Tensor, titles: list[str]) -> None:
    """For a few targets: the arm in each of the student's sampled configurations, and the target."""
    axes = fig.subplots(1, len(targets))
    reach = arm.l1 + arm.l2
    for ax, target, thetas, title in zip(axes, targets, samples, titles, strict=True):
        ax.set_title(title, fontsize=8)
        shoulder = arm.joints(thetas)[:, 0]
        elbows = torch.stack([arm.l1 * torch.cos(shoulder), arm.l1 * torch.sin(shoulder)], -1)
        hands = arm.hand(thetas)
        for elbow, hand in zip(elbows, hands, strict=True):
            ax.plot([0, elbow[0], hand[0]], [0, elbow[1], hand[1]], color="tab:blue", alpha=0.3, lw=1)
        ax.plot(*target, marker="x", color="tab:red", ms=10, mew=2)
        ax.plot(0, 0, marker="o", color="black")
        ax.set(xlim=(-0.3 * reach, 1.1 * reach), ylim=(-1.1 * reach, 1.1 * reach), aspect="equal", xticks=[],
               yticks=[])


def check_arm(g, arm: Arm, x_test: torch.Tensor, theta_test: torch.Tensor, answer, again, twice: torch.Tensor) -> None:
    """The A checks, from arm_model.forward's answers on the test targets; `again` holds a later round's
    answers for the targets `twice` picks out, which must be the same."""
    out = answer.value
    log_pi, mu, log_sigma = out["log_pi"], out["mu"], out["log_sigma"]
    log_z, elbow_up = arm.exact_posterior(x_test)
    exact = -arm.log_likelihood(x_test, theta_test) + log_z
    theirs = arm_nll(log_pi, mu, log_sigma, theta_test)
    unstable = answers_differ(out, again.value, twice)
    kl = float((theirs - exact).mean())
    if unstable:
        g.record("arm_kl", False, f"Not counted: arm_model.forward gave the same target different mixtures in two "
                 f"processes ({unstable}); a conditional density must depend on x alone (model.eval()?).", value=kl)
    else:
        g.metric("arm_kl", kl, hint=arm_kl_hint(float(log_sigma.exp().median())),
                 note=f"student NLL {float(theirs.mean()):.4f}, exact NLL {float(exact.mean()):.4f}, "
                      f"links {arm.l1:.3f}, {arm.l2:.3f}, bends {arm.bends}")

    samples = sample_mixture(g.rng, log_pi, mu, log_sigma, ARM_SAMPLES)          # [B,S,2]
    miss = (arm.hand(samples) - x_test.unsqueeze(1)).norm(dim=-1)                # [B,S]
    g.metric("arm_reach", float(miss.median()),
             hint="Joint angles drawn from your p(theta | x) put the hand far from the target. A model that "
                  "averages the elbow-up and elbow-down solutions, or components with large sigma, does this; so "
                  "does a formula for the arm instead of a model learned from the data (this arm's links and "
                  "joint readings are not the handout's).")

    both = (elbow_up > 0.2) & (elbow_up < 0.8)  # targets where both solutions are inside the joint limits
    theirs_up = elbow_up_mass(log_pi, mu, log_sigma)
    gap = (theirs_up - elbow_up)[both].abs()
    one_sided = float(((theirs_up[both] < 0.05) | (theirs_up[both] > 0.95)).double().mean())
    g.metric("arm_branches", float(gap.mean()), hint=arm_branches_hint(one_sided),
             note=f"{int(both.sum())} of {len(elbow_up)} targets have both solutions; one-sided on {one_sided:.0%}")

    shown = torch.tensor([int(i) for i in torch.nonzero(both).flatten()[:3]])
    if len(shown) == 3:
        titles = [f"elbow up: yours {float(theirs_up[i]):.0%}, exact {float(elbow_up[i]):.0%}" for i in shown]
        g.figure("arm-samples", f"Arm configurations drawn from your p(theta | x) for three targets (red cross, links "
                 f"{arm.l1:.2f} and {arm.l2:.2f}); a good model puts the hand on the cross, with both elbows.",
                 lambda fig: draw_arms(fig, arm, x_test[shown], samples[shown], titles), size=(7.5, 3.2), dpi=90)


def arm_kl_hint(median_sigma: float) -> str:
    if median_sigma > 0.3:
        return (f"Your components are wide (median sigma {median_sigma:.2f} rad), far wider than the exact conditional: "
                "do the components' log-scales train, and does your log-density sum the two coordinates' "
                "log-densities?")
    return ("Your conditional density is far from the exact one. Check that your log-density sums the two "
            "coordinates' Gaussian log-densities, use enough components for both elbow solutions (and for the "
            "tilted shape of each), and train for the whole budget with a decaying learning rate.")


def arm_branches_hint(one_sided: float) -> str:
    if one_sided > 0.5:
        return (f"On {one_sided:.0%} of the targets with two solutions your model puts (almost) all its mass on one "
                "elbow: give the mixture components for both, and train on all the data.")
    return ("Where both elbow-up and elbow-down reach the target, your model should give each about the probability "
            "the data does; yours is off on average. More components and more training help.")


def answers_differ(first: dict, again: dict, twice: torch.Tensor) -> str:
    """'' when the rows `twice` picks out got the same answer in both calls, else how far apart they were."""
    gap = max(float(rel_errors(again[k], first[k][twice]).max()) for k in first)
    return "" if gap <= 1e-5 else f"up to {gap:.1e} apart"


MODEL_CHECKS = ("weights_simplex", "nll", "nll_c", "beats_regression", "exact_conditional", "branches")


def grade(g) -> None:
    curve, arm = Curve.draw(g.rng), Arm.draw(g.rng)
    x_train, y_train = curve.data(g.rng, N_TRAIN)
    arm_train = arm.data(g.rng, ARM_N_TRAIN)

    # Both trainings come first: what they print is the student's to see, since nothing hidden has
    # been sent yet. The A tier is optional, so a missing fit_arm fails only the arm checks.
    g.progress("training your model")
    g.train("fit", x_train, y_train, check="fit_budget",
                      probe=("model.forward", (torch.linspace(-0.3, 1.3, 16, dtype=torch.float64).view(-1, 1),), {}))
    g.progress("training your arm model (A tier)")
    g.train("fit_arm", *arm_train, check="arm_fit_budget",
            probe=("arm_model.forward", (torch.linspace(-1.5, 1.5, 32, dtype=torch.float64).view(16, 2),), {}))

    x_test, y_test = curve.data(g.rng, N_TEST)
    arm_test = arm.data(g.rng, ARM_N_TEST)
    x_test, arm_x = as_sent(x_test), as_sent(arm_test[0])
    inputs = function_inputs(g.rng)
    g.progress("checking your models")
    with g.round() as r:
        first = {"model": r.call("model.forward", x_test), "arm": r.call("arm_model.forward", arm_x),
                 **{name: r.call(name, *inputs[name]) for name in ("gaussian_nll", "em_step", "arm_log_prob")}}
    twice, arm_twice = secret_subset(g.rng, N_TEST, N_DUPLICATES), secret_subset(g.rng, ARM_N_TEST, N_DUPLICATES)
    compared = secret_subset(g.rng, N_TEST, N_COMPARED)
    mixtures = MixtureCall(g.rng, first["model"], compared[:N_INTEGRATED])
    # A fresh process: the same points again, and the model's mixtures through mixture_log_prob. The EM
    # warm-up's 40 chained steps (each step's output is the next one's input) run at once in the same
    # process, which saves a sandbox start per run; they see only fresh x of the curve, never a y.
    with g.round() as r:
        again = {"model": r.call("model.forward", x_test[twice]), "arm": r.call("arm_model.forward", arm_x[arm_twice])}
        mixtures.ask(r)
        check_em(g, curve.data(g.rng, EM_N)[0])
    with g.section(*MODEL_CHECKS, "density_integrates"):
        params = first["model"].value
        record_simplex(g, params)
        record_nll(g, curve, params, again["model"].value, twice, x_train, y_train, x_test, y_test)
        record_exact_conditional(g, curve, params, x_test, compared)
        record_branches(g, curve, params, x_test, g.rng)
    check_functions(g, inputs, first, mixtures)
    with g.section("arm_kl", "arm_reach", "arm_branches"):
        check_arm(g, arm, arm_x, arm_test[1], first["arm"], again["arm"], arm_twice)


def record_simplex(g, params: dict) -> None:
    log_pi, log_sigma = params["log_pi"], params["log_sigma"]
    deviation = float((log_pi.exp().sum(-1) - 1).abs().max())
    if not bool((log_sigma.exp() > 0).all() and torch.isfinite(log_sigma.exp()).all()):
        g.record("weights_simplex", False, "Some exp(log_sigma) is zero or infinite: keep log_sigma in a sane range.",
                 value=deviation)
        return
    g.metric("weights_simplex", deviation, hint=simplex_hint(log_pi))


def simplex_hint(log_pi: torch.Tensor) -> str:
    if bool((log_pi > 1e-6).any()):
        return "Some log_pi are positive, so they are not log-probabilities: return log_softmax of the logits."
    return "Return log_pi from log_softmax over the components, not raw logits or an unnormalised log."


def record_nll(g, curve: Curve, params: dict, again: dict, twice: torch.Tensor, x_train, y_train, x_test, y_test) -> None:
    per_point = mixture_nll(params["log_pi"], params["mu"], params["log_sigma"], y_test)
    exact = curve.exact_nll(x_test)
    nll, optimum = float(per_point.mean()), float(exact.mean())
    gap, noise = nll - optimum, float((per_point - exact).std()) / math.sqrt(len(exact))
    baseline = regression_baseline_nll(x_train, y_train, x_test, y_test)
    note = f"NLL {nll:.4f}, exact {optimum:.4f}, baseline {baseline:.4f}, se {noise:.4f}; curve {curve}"
    unstable = answers_differ(params, again, twice)
    if unstable or gap < -max(0.02, 5 * noise):
        if not unstable:
            g.flag(f"NLL {gap:.3f} nats below the exact conditional's")
        why = not_counted_reason(unstable, gap)
        for name in ("nll", "nll_c", "beats_regression"):
            g.record(name, False, f"Not counted: {why}.", value=gap if name != "beats_regression" else baseline - nll,
                     note=note)
        return
    context = f"Your NLL is {nll:.3f} nats per example; the exact conditional scores {optimum:.3f} on the same points."
    g.metric("nll", gap, hint=context + " " + nll_hint(params, baseline - nll), note=note)
    g.metric("nll_c", gap, note=note,
             hint=context + " More components, a learning-rate schedule and using the whole time budget help; "
                            "compare training and test NLL to see whether you underfit. The exact conditional has "
                            "sharp edges that a few Gaussians can only approximate.")
    g.metric("beats_regression", baseline - nll, note=note, hint=beats_hint(baseline, baseline - nll))


def not_counted_reason(unstable: str, gap: float) -> str:
    if unstable:
        return (f"model.forward gave the same x different mixtures in two processes ({unstable}): a conditional "
                "density must depend on x alone (dropout or a batch statistic left in training mode? call "
                "model.eval() before fit returns)")
    return (f"your NLL is {-gap:.3f} nats below the exact conditional's on the same fresh points, far more than "
            "chance allows: no density of y given x can do that. Staff have been told")


def beats_hint(baseline: float, improvement: float) -> str:
    if improvement < 0.1:
        return (f"A Gaussian regression fitted by the grader reaches {baseline:.3f} nats; yours is no better: does "
                "your model have several components, and do their weights depend on x?")
    return (f"A Gaussian regression fitted by the grader reaches {baseline:.3f} nats; a mixture should capture the "
            "several modes of y given x and do clearly better.")


def nll_hint(params: dict, improvement: float) -> str:
    """What the measured mixtures say about why the NLL is high."""
    k = params["log_pi"].shape[1]
    sigma = params["log_sigma"].exp()
    weights = params["log_pi"].exp()
    used = float((weights > 0.05).double().sum(1).mean())
    if k == 1 or used < 1.2:
        return ("Your model puts all its weight on one component: that is a Gaussian regression with learned noise, "
                "which cannot represent the several branches of y given x. Use several components.")
    if float((weights * sigma).sum(1).median()) > 0.15:
        return ("Your components are wide (a typical weighted sigma above 0.15) compared with the branches of y given "
                "x: train longer, with a smaller final learning rate, and check that log_sigma can go low enough "
                "(and that forward returns log(sigma), not sigma).")
    if improvement < 0.3:
        return ("You barely beat a Gaussian regression: check your loss (the mean of -mixture_log_prob over the "
                "batch) and that the mixture's weights, means and scales all depend on x.")
    return ("Train longer, use more components, or check your loss: it should be the mean of -mixture_log_prob "
            "over the batch.")


class MixtureCall:
    """One mixture_log_prob call in round 2: the grader's random mixtures (with as many components as the
    model's), some with every component far from y, shuffled with a fine grid of y for the mixtures the model
    gave some test points in round 1. Every row is compared with the grader's formula; the grid rows are also
    integrated over y."""

    def __init__(self, rng: np.random.Generator, model_answer, integrated: torch.Tensor):
        self.rng, self.integrated, self.answer = rng, integrated, None
        model_ok = model_answer.error is None
        k = model_answer.value["log_pi"].shape[1] if model_ok else 4
        self.random = random_mixture_rows(rng, k)
        groups = [torch.cat([t.reshape(len(t), -1) for t in self.random], dim=1)]
        self.n_grid = 0
        if model_ok:
            params = model_answer.value
            n = GRID.shape[0]
            grid_rows = [params[name][integrated].repeat_interleave(n, dim=0) for name in ("log_pi", "mu", "log_sigma")]
            self.grid = (*as_sent(*grid_rows), GRID.repeat(len(integrated)).view(-1, 1))
            groups.append(torch.cat(self.grid, dim=1))
            self.n_grid = len(groups[1])
        self.model_error = model_answer.error
        self.k = k
        self.batch = Interleaved(rng, *groups)

    def ask(self, r) -> None:
        rows, k = self.batch.rows, self.k
        self.answer = r.call("mixture_log_prob", rows[:, :k], rows[:, k : 2 * k], rows[:, 2 * k : 3 * k], rows[:, 3 * k :])

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """Every row sent, in the groups' order: the random rows, then the grid rows."""
        groups = [self.random] + ([self.grid] if self.n_grid else [])
        return tuple(torch.cat([group[i] for group in groups]) for i in range(4))

    def split(self) -> list[torch.Tensor]:
        return self.batch.split(self.answer.value)


def random_mixture_rows(rng: np.random.Generator, k: int) -> tuple[torch.Tensor, ...]:
    """256 random mixtures of k components and a y each; in the first 32 every component is narrow and far
    from y, an operating point where log(sum(exp(...))) underflows and only a log-sum-exp keeps the answer."""
    log_pi, mu, log_sigma, y = random_mixtures(rng, 256, k)
    far = slice(0, 32)
    log_sigma[far] = torch.from_numpy(rng.uniform(-3.0, -2.3, size=(32, k)))
    y[far] = mu[far].max(1, keepdim=True).values + torch.from_numpy(rng.uniform(1.0, 2.0, size=(32, 1)))
    return as_sent(log_pi, mu, log_sigma, y)


def record_integrals(g, mixtures: MixtureCall) -> None:
    if mixtures.model_error is not None:
        raise mixtures.model_error
    log_p = mixtures.split()[1].view(len(mixtures.integrated), GRID.shape[0])
    masses = torch.trapezoid(log_p.exp(), GRID, dim=1)
    worst = int((masses - 1).abs().argmax())
    row = worst * GRID.shape[0]
    pi, sigma = mixtures.grid[0][row].exp(), mixtures.grid[2][row].exp()
    g.metric("density_integrates", float((masses - 1).abs().max()), hint=integral_hint(float(masses[worst]), pi, sigma),
             note="masses " + ", ".join(f"{float(m):.4f}" for m in masses))


def integral_hint(mass: float, pi: torch.Tensor, sigma: torch.Tensor) -> str:
    """Which common slip would make this mixture integrate to `mass`, if one does."""
    suspects = {
        "the -log(sigma) term is missing": float((pi / pi.sum() * sigma).sum()),
        "the -0.5 log(2 pi) term is missing": math.sqrt(2 * math.pi),
        "log_pi is not added (every component gets weight 1)": float(len(pi)),
    }
    for slip, predicted in suspects.items():
        if abs(predicted - mass) < 0.02 * predicted:
            return f"Its integral over y is {mass:.3f}, as if {slip}."
    return ("Your density does not integrate to 1 over y: check the normalising constant -log(sigma) - 0.5 log(2 pi), "
            "that log_pi is added, and that you log-sum-exp over the components.")


def record_exact_conditional(g, curve: Curve, params: dict, x_test: torch.Tensor, compared: torch.Tensor) -> None:
    truth, model = curve.conditionals(x_test[compared]), mixture_densities(params, compared)
    tv = (0.5 * torch.trapezoid((truth - model).abs(), GRID, dim=1)).tolist()
    g.metric("exact_conditional", float(np.mean(tv)), hint=conditional_hint(float(np.max(tv))),
             note="per-x TV: " + ", ".join(f"{v:.3f}" for v in tv))


def conditional_hint(worst: float) -> str:
    if worst > 0.9:
        return ("At some points your density and the true one barely overlap (total variation near 1): your mixture "
                "sits where y cannot be for that x. Does your model use x, and is y predicted on its own scale?")
    return ("Plot your p(y | x) against a histogram of y for x in a narrow slice: the true conditional has sharp "
            "edges and up to four separate pieces.")


def conditional_pieces(truth: torch.Tensor) -> list[tuple[int, int, float]]:
    """The separate pieces of an exact conditional on GRID: (start, stop, mass) each."""
    inside = truth > 0
    edges = torch.nonzero(inside[1:] != inside[:-1]).flatten().tolist()
    bounds = ([0] if inside[0] else []) + [e + 1 for e in edges] + ([len(truth)] if inside[-1] else [])
    return [(a, b, float(torch.trapezoid(truth[a:b], GRID[a:b])) if b - a > 1 else 0.0)
            for a, b in zip(bounds[::2], bounds[1::2], strict=False)]


def record_branches(g, curve: Curve, params: dict, x_test: torch.Tensor, rng: np.random.Generator) -> None:
    """Where y given x has several pieces, each piece should get a fair share of the model's mass: a mixture
    can match the NLL on average while leaving out a small piece everywhere."""
    rows = secret_subset(rng, len(x_test), N_BRANCH_POINTS)
    truths = curve.conditionals(x_test[rows])
    several = [(row, [p for p in conditional_pieces(truth) if p[2] >= MIN_PIECE]) for row, truth in zip(rows, truths, strict=True)]
    several = [(row, pieces) for row, pieces in several if len(pieces) >= 2]
    pieces = missed = 0
    if several:
        model = mixture_densities(params, torch.stack([row for row, _ in several]))
        steps = 0.5 * (model[:, 1:] + model[:, :-1]) * (GRID[1:] - GRID[:-1])          # trapezoids per cell
        cumulative = torch.nn.functional.pad(steps.cumsum(1), (1, 0))                     # integral from GRID[0]
        for density, (_, found) in zip(cumulative, several, strict=True):
            for a, b, mass in found:
                pieces += 1
                missed += float(density[b - 1] - density[a]) < mass / 3
    share = missed / max(pieces, 1)
    g.metric("branches", share, hint=branches_hint(share),
             note=f"{missed} of {pieces} pieces missed, over the points with several pieces")


def branches_hint(share: float) -> str:
    return (f"At the points where y given x has several separate pieces, your model gives {share:.0%} of the pieces "
            "less than a third of their probability: it leaves a branch out. Use more components (the conditional "
            "has up to four pieces) and keep every component's weight from collapsing early in training.")


def function_inputs(rng: np.random.Generator) -> dict[str, tuple]:
    """The grader's random inputs for gaussian_nll, em_step and arm_log_prob (float32 values, as sent)."""
    gaussian = as_sent(*(rng.normal(scale=s, size=(256, 1)) for s in (1.0, 0.8, 1.5)))
    em = (as_sent(rng.normal(size=(500, 1))), as_sent(torch.from_numpy(rng.normal(size=4)).log_softmax(-1)),
          *as_sent(rng.normal(size=4), rng.uniform(-1, 0.5, size=4)))
    a_log_pi, a_mu, a_log_sigma, theta = random_mixtures(rng, 256, 3)
    a_mu = torch.stack([a_mu, torch.from_numpy(rng.uniform(-3, 3, size=a_mu.shape))], dim=-1)
    a_log_sigma = torch.stack([a_log_sigma, torch.from_numpy(rng.uniform(-3, 0.5, size=a_log_sigma.shape))], dim=-1)
    theta = torch.cat([theta, torch.from_numpy(rng.uniform(-3, 3, size=theta.shape))], dim=1)
    return {"gaussian_nll": gaussian, "em_step": em, "arm_log_prob": as_sent(a_log_pi, a_mu, a_log_sigma, theta)}


def diagnose(theirs: torch.Tensor, slips: dict[str, torch.Tensor], general: str) -> str:
    """The slip whose result the student's answer matches (within float32 rounding), or the general hint."""
    for slip, result in slips.items():
        if result.shape == theirs.shape and rel_error(theirs, result) < 1e-4:
            return f"Your answer is what {slip} gives. {general}"
    return general


def gaussian_slips(mu, log_sigma, y) -> dict[str, torch.Tensor]:
    z = ((y - mu) / log_sigma.exp()).squeeze(1)
    ls, c = log_sigma.squeeze(1), 0.5 * math.log(2 * math.pi)
    return {"leaving out log(sigma)": 0.5 * z**2 + c, "leaving out 0.5 log(2 pi)": 0.5 * z**2 + ls,
            "the log-density (not its negative)": -(0.5 * z**2 + ls + c),
            "taking log_sigma as the log-variance": 0.5 * z**2 * ls.exp() + 0.5 * ls + c}


def mixture_slips(log_pi, mu, log_sigma, y) -> dict[str, torch.Tensor]:
    z = (y - mu) / log_sigma.exp()
    c = 0.5 * math.log(2 * math.pi)
    return {"leaving out -log(sigma)": torch.logsumexp(log_pi - 0.5 * z**2 - c, -1),
            "leaving out -0.5 log(2 pi)": torch.logsumexp(log_pi - 0.5 * z**2 - log_sigma, -1),
            "leaving out log_pi": torch.logsumexp(-0.5 * z**2 - log_sigma - c, -1)}


def em_slips(x, log_pi, mu, log_sigma) -> dict[str, torch.Tensor]:
    z = (x - mu) / log_sigma.exp()
    r = torch.softmax(log_pi - 0.5 * z**2 - log_sigma, dim=-1)
    counts = r.sum(0)
    new_mu = (r * x).sum(0) / counts
    old_mean_var = (r * (x - mu) ** 2).sum(0) / counts
    new_var = (r * (x - new_mu) ** 2).sum(0) / counts
    weights = (counts / x.shape[0]).log()
    return {"the variance around the old means": torch.cat([weights, new_mu, 0.5 * old_mean_var.log()]),
            "log(variance) returned where log(sigma) is meant": torch.cat([weights, new_mu, new_var.log()]),
            "weights N_k instead of N_k / N": torch.cat([counts.log(), new_mu, 0.5 * new_var.log()])}


def arm_slips(log_pi, mu, log_sigma, theta) -> dict[str, torch.Tensor]:
    z = (theta.unsqueeze(1) - mu) / log_sigma.exp()
    per = -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)
    return {"using only the first angle": torch.logsumexp(log_pi + per[..., 0], -1),
            "averaging the two angles' log-densities instead of adding them": torch.logsumexp(log_pi + per.mean(-1), -1),
            "leaving out log_pi": torch.logsumexp(per.sum(-1), -1)}


def check_functions(g, inputs: dict[str, tuple], first: dict, mixtures: MixtureCall) -> None:
    with g.section("gaussian_nll"):
        args, theirs = inputs["gaussian_nll"], first["gaussian_nll"].value
        g.metric("gaussian_nll", rel_error(theirs, mixture_nll(torch.zeros(256, 1, dtype=torch.float64), *args)),
                 hint=diagnose(theirs, gaussian_slips(*args),
                               "-log N(y; mu, sigma) = 0.5 ((y - mu) / sigma)^2 + log sigma + 0.5 log(2 pi)."))

    with g.section("mixture_log_prob", "density_integrates"):
        error = mixtures.answer.error
        if isinstance(error, ResultInvalid) and "NaN or infinite" in error.student_message:
            g.record("mixture_log_prob", False, "Your mixture_log_prob returned -inf or NaN on some rows: where every "
                     "component is far from y, exp(log N) underflows to 0 in float32 and its log is -inf. Compute "
                     "the log-sum-exp with torch.logsumexp, which subtracts the largest term first.")
        else:
            args, theirs = mixtures.inputs(), torch.cat(mixtures.split())
            g.metric("mixture_log_prob", rel_error(theirs, -mixture_nll(*args)),
                     hint=diagnose(theirs, mixture_slips(*args), "Compare with log-sum-exp over k of log pi_k + "
                                   "log N(y; mu_k, sigma_k); use torch.logsumexp for numerical stability."))
        # The integral is about the student's mixture_log_prob being a density; it counts only when that
        # function is the mixture density on every row of the call (the integrated rows among them).
        if "density_integrates" not in g.outcomes and g.requires("density_integrates", "mixture_log_prob",
                      failed="Not counted: your mixture_log_prob is not the mixture's log-density (see "
                             "mixture_log_prob), so its integral says nothing."):
            record_integrals(g, mixtures)

    with g.section("em_step"):
        args, out = inputs["em_step"], first["em_step"].value
        theirs = torch.cat([out["log_pi"], out["mu"], out["log_sigma"]])
        g.metric("em_step", rel_error(theirs, torch.cat(em_step(*args))),
                 hint=diagnose(theirs, em_slips(*args),
                               "E step: r = softmax over components of log pi_k + log N(x; mu_k, sigma_k). M step: "
                               "N_k = sum of r over the data; pi_k = N_k / N; mu_k and sigma_k^2 are r-weighted "
                               "averages, the variance around the new mu_k."))

    with g.section("arm_log_prob"):
        args, theirs = inputs["arm_log_prob"], first["arm_log_prob"].value
        g.metric("arm_log_prob", rel_error(theirs, -arm_nll(*args)),
                 hint=diagnose(theirs, arm_slips(*args), "For each component, add the log-densities of the two "
                               "coordinates (they are independent given the component), then log-sum-exp over "
                               "components with log_pi."))
