"""Trusted checks for the MDN part. Runs in the grader, never in the sandbox.

Data: y ~ U(0, 1), x = y + 0.3 sin(2 pi y) + U(-0.1, 0.1) (Bishop's inverse problem); the student
predicts y from x, where p(y | x) has up to three modes. Fresh data is drawn with the secret run seed.
Every score is computed here from the mixture parameters the student's model returns.

A tier: inverse kinematics of a planar two-link arm with secret link lengths. The joint angles theta are
uniform over a box and the hand position is x = forward_kinematics(theta) + N(0, ARM_NOISE^2 I), so the
exact p(theta | x) is known up to a 2-D integral, which the grader computes on a fine grid of theta:
that gives the exact conditional NLL (the student's gap to it estimates KL(p || q)) and the exact mass
of each elbow branch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checklib.numerics import as_sent, rel_error

N_TRAIN = 4000
N_TEST = 5000
GRID = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)  # covers all of y's support with room


def make_data(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    y = rng.uniform(0.0, 1.0, size=(n, 1))
    x = y + 0.3 * np.sin(2 * np.pi * y) + rng.uniform(-0.1, 0.1, size=(n, 1))
    return torch.from_numpy(x), torch.from_numpy(y)


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


def exact_conditional(x: float, grid: torch.Tensor) -> torch.Tensor:
    """The true p(y | x) on `grid`: y ~ U(0,1) and x - g(y) ~ U(-0.1, 0.1), so p(y | x) is uniform over
    {y in [0,1] : |x - g(y)| <= 0.1}; normalised numerically on the grid."""
    g = grid + 0.3 * torch.sin(2 * math.pi * grid)
    inside = ((grid >= 0) & (grid <= 1) & ((x - g).abs() <= 0.1)).double()
    return inside / torch.trapezoid(inside, grid)


def mixture_density(log_pi, mu, log_sigma, grid: torch.Tensor) -> torch.Tensor:
    """One mixture (vectors [K]) evaluated on a grid of y, with the weights normalised by the grader."""
    return torch.exp(-mixture_nll(log_pi.expand(grid.shape[0], -1), mu.expand(grid.shape[0], -1),
                                  log_sigma.expand(grid.shape[0], -1), grid.view(-1, 1)))


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


class Arm:
    """A planar two-link arm with link lengths drawn from the secret seed."""

    def __init__(self, l1: float, l2: float):
        self.l1, self.l2 = l1, l2

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Arm:
        return cls(float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.5, 0.9)))

    def hand(self, theta: torch.Tensor) -> torch.Tensor:
        """Forward kinematics: theta [...,2] -> hand position [...,2]."""
        shoulder, elbow = theta[..., 0], theta[..., 0] + theta[..., 1]
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
        elbows = torch.stack([arm.l1 * torch.cos(thetas[:, 0]), arm.l1 * torch.sin(thetas[:, 0])], -1)
        hands = arm.hand(thetas)
        for elbow, hand in zip(elbows, hands, strict=True):
            ax.plot([0, elbow[0], hand[0]], [0, elbow[1], hand[1]], color="tab:blue", alpha=0.3, lw=1)
        ax.plot(*target, marker="x", color="tab:red", ms=10, mew=2)
        ax.plot(0, 0, marker="o", color="black")
        ax.set(xlim=(-0.3 * reach, 1.1 * reach), ylim=(-1.1 * reach, 1.1 * reach), aspect="equal", xticks=[],
               yticks=[])


def check_arm(g, arm: Arm, x_test: torch.Tensor, theta_test: torch.Tensor) -> None:
    g.progress("checking your arm model")
    out = g.call("arm_model.forward", x_test)
    log_pi, mu, log_sigma = out["log_pi"], out["mu"], out["log_sigma"]
    log_z, elbow_up = arm.exact_posterior(x_test)
    exact = -arm.log_likelihood(x_test, theta_test) + log_z
    theirs = arm_nll(log_pi, mu, log_sigma, theta_test)
    g.metric("arm_kl", float((theirs - exact).mean()),
             hint="Your conditional density is far from the exact one. Check that your log-density sums the two "
                  "coordinates' Gaussian log-densities, use enough components for both elbow solutions, and "
                  "train for the whole budget with a decaying learning rate.",
             note=f"student NLL {float(theirs.mean()):.4f}, exact NLL {float(exact.mean()):.4f}, "
                  f"links {arm.l1:.3f}, {arm.l2:.3f}")

    samples = sample_mixture(g.rng, log_pi, mu, log_sigma, ARM_SAMPLES)          # [B,S,2]
    miss = (arm.hand(samples) - x_test.unsqueeze(1)).norm(dim=-1)                # [B,S]
    g.metric("arm_reach", float(miss.median()),
             hint="Joint angles drawn from your p(theta | x) put the hand far from the target. A model that "
                  "averages the elbow-up and elbow-down solutions, or components with large sigma, does this.")

    both = (elbow_up > 0.2) & (elbow_up < 0.8)  # targets where both solutions are inside the joint limits
    theirs_up = elbow_up_mass(log_pi, mu, log_sigma)
    gap = (theirs_up - elbow_up)[both].abs()
    g.metric("arm_branches", float(gap.mean()),
             hint="Where both elbow-up and elbow-down reach the target, your model should give each about the "
                  "probability the data does; yours favours one of them. Do you have components for both?",
             note=f"{int(both.sum())} of {len(elbow_up)} targets have both solutions")

    shown = torch.tensor([int(i) for i in torch.nonzero(both).flatten()[:3]])
    if len(shown) == 3:
        titles = [f"elbow up: yours {float(theirs_up[i]):.0%}, exact {float(elbow_up[i]):.0%}" for i in shown]
        g.figure("arm-samples", f"Arm configurations drawn from your p(theta | x) for three targets (red cross, links "
                 f"{arm.l1:.2f} and {arm.l2:.2f}); a good model puts the hand on the cross, with both elbows.",
                 lambda fig: draw_arms(fig, arm, x_test[shown], samples[shown], titles), size=(7.5, 3.2), dpi=90)


MODEL_CHECKS = ("weights_simplex", "nll", "nll_c", "beats_regression", "density_integrates", "exact_conditional")


def grade(g) -> None:
    x_train, y_train = make_data(g.rng, N_TRAIN)
    x_test, y_test = make_data(g.rng, N_TEST)
    arm = Arm.draw(g.rng)
    arm_train, arm_test = arm.data(g.rng, ARM_N_TRAIN), arm.data(g.rng, ARM_N_TEST)

    # Both trainings come first: what they print is the student's to see, since nothing hidden has
    # been sent yet. The A tier is optional, so a missing fit_arm fails only the arm checks.
    g.progress("training your model")
    g.train("fit", x_train, y_train, check="fit_budget",
            probe=("model.forward", (torch.linspace(0, 1, 16, dtype=torch.float64).view(-1, 1),), {}))
    g.progress("training your arm model (A tier)")
    g.train("fit_arm", *arm_train, check="arm_fit_budget",
            probe=("arm_model.forward", (torch.linspace(-1.5, 1.5, 32, dtype=torch.float64).view(16, 2),), {}))

    check_model(g, x_train, y_train, x_test, y_test)
    with g.section("arm_kl", "arm_reach", "arm_branches"):
        check_arm(g, arm, *arm_test)
    check_functions(g)
    check_em(g, make_data(g.rng, EM_N)[0])


def check_model(g, x_train, y_train, x_test, y_test) -> None:
    with g.section(*MODEL_CHECKS):
        g.progress("checking your model")
        out = g.call("model.forward", x_test)
        log_pi, mu, log_sigma = out["log_pi"], out["mu"], out["log_sigma"]
        deviation = float((log_pi.exp().sum(-1) - 1).abs().max())
        sigma_ok = bool((log_sigma.exp() > 0).all() and torch.isfinite(log_sigma.exp()).all())
        if not sigma_ok:
            g.record("weights_simplex", False, "Some exp(log_sigma) is zero or infinite: keep log_sigma in a sane range.",
                     value=deviation)
        else:
            g.metric("weights_simplex", deviation,
                     hint="Return log_pi from log_softmax over the components, not raw logits.")

        nll = float(mixture_nll(log_pi, mu, log_sigma, y_test).mean())
        g.metric("nll", nll, hint="Train longer, use more components, or check your loss: "
                                  "it should be the mean of -mixture_log_prob over the batch.")
        g.metric("nll_c", nll, hint="More components, a learning-rate schedule and using the whole time "
                                    "budget help; compare training and test NLL to see whether you underfit.")
        baseline = regression_baseline_nll(x_train, y_train, x_test, y_test)
        g.metric("beats_regression", baseline - nll,
                 hint=f"A Gaussian regression fitted by the grader reaches {baseline:.3f} nats; a mixture "
                      "should capture the several modes of y given x and do clearly better.",
                 note=f"baseline {baseline:.4f}, student {nll:.4f}")

        # Several inputs, including ones where y | x has three modes, each on a fine grid of y.
        xs = torch.from_numpy(g.rng.uniform(0.05, 0.95, size=(8, 1)))
        params = g.call("model.forward", xs)
        worst = 0.0
        for i in range(xs.shape[0]):
            rows = GRID.shape[0]
            lp = g.call("mixture_log_prob", params["log_pi"][i].expand(rows, -1),
                        params["mu"][i].expand(rows, -1), params["log_sigma"][i].expand(rows, -1),
                        GRID.view(-1, 1))
            mass = float(torch.trapezoid(lp.exp(), GRID))
            worst = max(worst, abs(mass - 1.0))
        g.metric("density_integrates", worst,
                 hint="Your density does not integrate to 1 over y: check the normalising constant "
                      "-log(sigma) - 0.5 log(2 pi) and that the weights are normalised.")

        tv = []
        for i in range(xs.shape[0]):
            truth = exact_conditional(float(xs[i]), GRID)
            model = mixture_density(params["log_pi"][i], params["mu"][i], params["log_sigma"][i], GRID)
            tv.append(0.5 * float(torch.trapezoid((truth - model).abs(), GRID)))
        g.metric("exact_conditional", float(np.mean(tv)),
                 hint="Plot your p(y | x) against a histogram of y for x in a narrow slice: the true conditional "
                      "has sharp edges and up to three separate pieces.",
                 note="per-x TV: " + ", ".join(f"{v:.3f}" for v in tv))



def check_functions(g) -> None:
    with g.section("gaussian_nll"):
        mu, log_sigma, y = as_sent(*(g.rng.normal(scale=s, size=(256, 1)) for s in (1.0, 0.8, 1.5)))
        theirs = g.call("gaussian_nll", mu, log_sigma, y)
        ours = mixture_nll(torch.zeros(256, 1, dtype=torch.float64), mu, log_sigma, y)
        g.metric("gaussian_nll", rel_error(theirs, ours),
                 hint="-log N(y; mu, sigma) = 0.5 ((y - mu) / sigma)^2 + log sigma + 0.5 log(2 pi).")

    with g.section("mixture_log_prob"):
        log_pi, mu, log_sigma, y = as_sent(*random_mixtures(g.rng, 256, 4))
        theirs = g.call("mixture_log_prob", log_pi, mu, log_sigma, y)
        ours = -mixture_nll(log_pi, mu, log_sigma, y)
        g.metric("mixture_log_prob", rel_error(theirs, ours),
                 hint="Compare with log-sum-exp over k of log pi_k + log N(y; mu_k, sigma_k); "
                      "use torch.logsumexp for numerical stability.")

    with g.section("em_step"):
        x = as_sent(g.rng.normal(size=(500, 1)))
        log_pi = as_sent(torch.from_numpy(g.rng.normal(size=4)).log_softmax(-1))
        mu, log_sigma = as_sent(g.rng.normal(size=4), g.rng.uniform(-1, 0.5, size=4))
        out = g.call("em_step", x, log_pi, mu, log_sigma)
        ours = em_step(x, log_pi, mu, log_sigma)
        error = max(rel_error(out[name], want) for name, want in zip(("log_pi", "mu", "log_sigma"), ours, strict=True))
        g.metric("em_step", error,
                 hint="E step: r = softmax over components of log pi_k + log N(x; mu_k, sigma_k). M step: "
                      "N_k = sum of r over the data; pi_k = N_k / N; mu_k and sigma_k^2 are r-weighted averages.")

    with g.section("arm_log_prob"):
        log_pi, mu, log_sigma, theta = random_mixtures(g.rng, 256, 3)
        mu = torch.stack([mu, torch.from_numpy(g.rng.uniform(-3, 3, size=mu.shape))], dim=-1)
        log_sigma = torch.stack([log_sigma, torch.from_numpy(g.rng.uniform(-3, 0.5, size=log_sigma.shape))], dim=-1)
        theta = torch.cat([theta, torch.from_numpy(g.rng.uniform(-3, 3, size=theta.shape))], dim=1)
        log_pi, mu, log_sigma, theta = as_sent(log_pi, mu, log_sigma, theta)
        theirs = g.call("arm_log_prob", log_pi, mu, log_sigma, theta)
        ours = -arm_nll(log_pi, mu, log_sigma, theta)
        g.metric("arm_log_prob", rel_error(theirs, ours),
                 hint="For each component, add the log-densities of the two coordinates (they are independent "
                      "given the component), then log-sum-exp over components with log_pi.")
