"""Trusted checks for the MDN part. Runs in the grader, never in the sandbox.

Data: y ~ U(0, 1), x = y + 0.3 sin(2 pi y) + U(-0.1, 0.1) (Bishop's inverse problem); the student
predicts y from x, where p(y | x) has up to three modes. Fresh data is drawn with the secret run seed.
Every score is computed here from the mixture parameters the student's model returns.
"""

from __future__ import annotations

import math

import numpy as np
import torch

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


def grade(g) -> None:
    x_train, y_train = make_data(g.rng, N_TRAIN)
    x_test, y_test = make_data(g.rng, N_TEST)
    budget = g.train_seconds

    with g.checks("fit_budget", "weights_simplex", "nll", "nll_c", "beats_regression", "density_integrates",
                  "exact_conditional"):
        g.progress("training your model")
        # Training output is the student's to see: nothing hidden has been sent yet.
        g.call("fit", x_train, y_train, seed=g.torch_seed(), max_seconds=budget,
               audience="student", timeout=budget * 1.5 + 10)
        g.metric("fit_budget", g.timings["fit"], threshold=budget + 2.0,
                 hint="Stop training when max_seconds is used up (check time.monotonic() in your loop).")

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

    with g.checks("gaussian_nll"):
        mu, log_sigma, y = (torch.from_numpy(g.rng.normal(scale=s, size=(256, 1))).float().double()
                            for s in (1.0, 0.8, 1.5))
        theirs = g.call("gaussian_nll", mu, log_sigma, y)
        ours = mixture_nll(torch.zeros(256, 1, dtype=torch.float64), mu, log_sigma, y)
        g.metric("gaussian_nll", float(((theirs - ours).abs() / (1 + ours.abs())).max()),
                 hint="-log N(y; mu, sigma) = 0.5 ((y - mu) / sigma)^2 + log sigma + 0.5 log(2 pi).")

    with g.checks("mixture_log_prob"):
        # Rounded to float32 first: that is what the student's code receives.
        log_pi, mu, log_sigma, y = (t.float().double() for t in random_mixtures(g.rng, 256, 4))
        theirs = g.call("mixture_log_prob", log_pi, mu, log_sigma, y)
        ours = -mixture_nll(log_pi, mu, log_sigma, y)
        g.metric("mixture_log_prob", float(((theirs - ours).abs() / (1 + ours.abs())).max()),
                 hint="Compare with log-sum-exp over k of log pi_k + log N(y; mu_k, sigma_k); "
                      "use torch.logsumexp for numerical stability.")
