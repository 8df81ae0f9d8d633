"""Trusted checks for the VAE part. Runs in the grader, never in the sandbox.

Data: scikit-learn's bundled 8x8 digits (1797 images), binarised at 8 (pixel >= 8 -> 1; 32 % ones).
The images are public, so the grader derives a **secret split** from the run's secret seed: 400 images
are held out for evaluation and the student's fit() sees only the other 1397. The split changes with
every grading run, so no fixed set of test images exists to tune on or to memorise; a submission
that embedded the whole public data set in its code and trained on it would be dishonest (the
declaration and the oral cover it), and the staff note of the ELBO check reports the train/held-out
gap (1-2 nats for the reference, trained on the training part only) so staff can spot it. A gating
leakage check was considered and rejected: per-image -ELBO varies by about 6 nats, so the gap between
two sets of 400 images carries about 0.4 nats of split noise, and an honest but briefly trained model
has a gap of only about 1 nat: no threshold separates the two reliably.

The student returns primitives only: (mu, log_var) from the encoder and Bernoulli logits from the
decoder. The grader draws every eps itself, forms z = mu + exp(log_var / 2) * eps, and computes
log w = log p(x|z) + log p(z) - log q(z|x) in float64, then the ELBO and the importance-weighted
bounds IWAE-K (Burda et al. 2016) in nats per image. Students' kl_normal, reparameterise and
bernoulli_nll are checked on their own against analytic values and torch.distributions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checking import ResultInvalid, format_number
from grader.checklib.copies import exact_copy_fraction
from grader.checklib.digits import bernoulli_nll, secret_split
from grader.checklib.numerics import as_sent, rel_errors

PIXELS = 64
N_TEST = 400
CHUNK = 16384                     # rows of z per decode call (a 16384 x 64 float32 result is 4 MB)
K_ELBO, K_IW10, K_IW = 50, 100, 500   # draws of z per held-out image for the three independent estimates
N_SAMPLES = 4000
COPY_LIMIT = 0.30                 # largest fraction of samples allowed to equal a training image exactly
LN2 = math.log(2.0)
LOG_2PI = math.log(2 * math.pi)

BOUND_CHECKS = ("elbo", "elbo_c", "iwae_c", "iwae_a")


# ---- the grader's own formulas (float64) ----

def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per row, by torch.distributions."""
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


# ---- calling the model ----

def encode(g, x: torch.Tensor, audience: str = "staff") -> tuple[torch.Tensor, torch.Tensor]:
    out = g.call("model.encode", x, audience=audience)
    return out["mu"], out["log_var"]


def decode(g, z: torch.Tensor, audience: str = "staff") -> torch.Tensor:
    return torch.cat([g.call("model.decode", rows, audience=audience) for rows in z.split(CHUNK)])


def log_weights(g, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor, k: int,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """log w = log p(x|z) + log p(z) - log q(z|x) and log p(x|z), for k fresh draws z ~ q(z|x) per
    image: both [k, B]. z is rounded to float32 before anything is computed from it, since that is
    what the decoder sees. The decoder is called in chunks of CHUNK rows, and each chunk of logits is
    reduced to log p(x|z) at once, so memory stays small."""
    b, d = mu.shape
    eps = torch.from_numpy(rng.standard_normal((k, b, d)))
    std = (0.5 * log_var).exp()
    z = as_sent(mu + std * eps)                                                   # [k, B, D]
    flat = z.reshape(k * b, d)
    log_px = torch.empty(k * b, dtype=torch.float64)
    for start in range(0, k * b, CHUNK):
        rows = flat[start : start + CHUNK]
        logits = g.call("model.decode", rows)
        log_px[start : start + rows.shape[0]] = -bernoulli_nll(logits, x[torch.arange(start, start + rows.shape[0]) % b])
    log_px = log_px.reshape(k, b)
    log_pz = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(-1)
    eps_seen = (z - mu) / std
    log_qz = (-0.5 * eps_seen**2 - 0.5 * log_var - 0.5 * LOG_2PI).sum(-1)
    return log_px + log_pz - log_qz, log_px


def iwae(lw: torch.Tensor, k: int) -> torch.Tensor:
    """Per-image IWAE-k estimates from [K, B] log-weights: the mean over K/k disjoint groups of
    log (1/k) sum_group w."""
    groups = lw[: (lw.shape[0] // k) * k].reshape(-1, k, lw.shape[1])
    return (torch.logsumexp(groups, dim=1) - math.log(k)).mean(0)


# ---- checks of the module-level functions ----

def check_kl(g, rng: np.random.Generator) -> None:
    d = 4
    cases = [  # (description, mu, log_var)
        ("mu = (2, 0, 0, 0) with unit variance (KL = 2.0)", [2.0, 0, 0, 0], [0.0, 0, 0, 0]),
        ("mu = 0 with unit variance (KL = 0)", [0.0, 0, 0, 0], [0.0, 0, 0, 0]),
        ("mu = 0, variance 4 in the first dimension (KL = 0.5 (4 - 1 - ln 4) = 0.8069)",
         [0.0, 0, 0, 0], [math.log(4.0), 0, 0, 0]),
        ("mu = 0, variance 1/4 in the first dimension (KL = 0.5 (1/4 - 1 + ln 4) = 0.3181)",
         [0.0, 0, 0, 0], [-math.log(4.0), 0, 0, 0]),
    ]
    mu = torch.tensor([c[1] for c in cases], dtype=torch.float64)
    log_var = torch.tensor([c[2] for c in cases], dtype=torch.float64)
    mu = as_sent(torch.cat([mu, torch.from_numpy(rng.normal(0, 1.5, size=(252, d)))]))
    log_var = as_sent(torch.cat([log_var, torch.from_numpy(rng.uniform(-4, 2, size=(252, d)))]))
    theirs = g.call("kl_normal", mu, log_var, audience="student")
    ours = kl_standard_normal(mu, log_var)
    gap = rel_errors(theirs, ours)
    hint = ""
    bad = [i for i in range(len(cases)) if gap[i] > 1e-4]
    if bad:
        i = bad[0]
        hint = f"For {cases[i][0]} your kl_normal returned {float(theirs[i]):.4f}. "
    if float(gap.max()) > 1e-4:
        as_log_std = ((mu**2 + (2 * log_var).exp()) / 2 - 0.5 - log_var).sum(-1)
        diagnoses = [
            (-ours, "It looks like the sign is flipped: KL is never negative."),
            (2 * ours, "It is twice the right value: the factor 1/2 is missing."),
            (as_log_std, "It treats log_var as log sigma: the variance is exp(log_var), so sigma = exp(log_var / 2)."),
            (ours / d, "It is the mean over the latent dimensions: sum them instead."),
        ]
        for guess, words in diagnoses:
            if float(rel_errors(theirs, guess).max()) < 1e-3:
                hint += words + " "
                break
        hint += ("KL(N(mu, sigma^2) || N(0, 1)) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2) per dimension, summed "
                 "over the latent dimensions.")
    g.metric("kl_normal", float(gap.max()), hint=hint)


def check_reparameterise(g, rng: np.random.Generator) -> None:
    mu = as_sent(torch.from_numpy(rng.normal(0, 1.5, size=(256, 6))))
    log_var = as_sent(torch.from_numpy(rng.uniform(-5, 2, size=(256, 6))))
    eps = as_sent(torch.from_numpy(rng.standard_normal((256, 6))))
    theirs = g.call("reparameterise", mu, log_var, eps, audience="student")
    ours = mu + (0.5 * log_var).exp() * eps
    gap = float(rel_errors(theirs, ours).max())
    hint = ""
    if gap > 1e-4:
        diagnoses = [
            (mu + log_var.exp() * eps, "Your z uses exp(log_var), the variance, as the scale: sigma = exp(log_var / 2)."),
            (mu + log_var * eps, "Your z uses log_var itself as the standard deviation: sigma = exp(log_var / 2)."),
            (mu + eps, "Your z ignores log_var."),
        ]
        for guess, words in diagnoses:
            if float(rel_errors(theirs, guess).max()) < 1e-3:
                hint = words + " "
                break
        hint += "Return mu + exp(0.5 * log_var) * eps with the eps you are given (do not draw your own)."
    g.metric("reparameterise", gap, hint=hint)


def check_bernoulli_nll(g, rng: np.random.Generator) -> None:
    x = as_sent(torch.from_numpy((rng.random((256, PIXELS)) < 0.35).astype(np.float64)))
    logits = torch.from_numpy(rng.normal(0, 4, size=(256, PIXELS)))
    logits[:32] = 0.0                                            # the zero decoder: 64 ln 2 for any x
    logits[32:64] = torch.from_numpy(rng.choice([-30.0, -20.0, 20.0, 30.0], size=(32, PIXELS)))
    logits = as_sent(logits)
    theirs = g.call("bernoulli_nll", logits, x, audience="student")
    ours = bernoulli_nll(logits, x)
    gap = rel_errors(theirs, ours)
    hint = ""
    if float(gap.max()) > 1e-4:
        zero = float(gap[:32].max())
        if float(rel_errors(theirs, ours / PIXELS).max()) < 1e-3:
            hint = "Your values are the mean over the 64 pixels: sum them (nats per image, not per pixel). "
        elif zero > 1e-4:
            hint = (f"With all logits 0 (p = 1/2 for every pixel) the NLL is 64 ln 2 = {64 * LN2:.4f} nats whatever "
                    f"the image; yours returned {float(theirs[int(gap[:32].argmax())]):.4f}. Treat the input as "
                    "logits, not probabilities. ")
        elif float(gap[32:64].max()) > 1e-4:
            hint = ("Your values are right for moderate logits but wrong for large ones (|logit| 20-30): "
                    "sigmoid rounds to exactly 0 or 1 in float32 there. Compute it from the logits directly "
                    "(softplus, or torch.nn.functional.binary_cross_entropy_with_logits). ")
        hint += "-log p(x | l) = sum over pixels of softplus(l) - x * l."
    g.metric("bernoulli_nll", float(gap.max()), hint=hint)


# ---- checks of the trained model ----

def check_deterministic(g, rng: np.random.Generator, train: torch.Tensor) -> tuple[int, dict]:
    """Encode/decode some rows alone and inside a shuffled larger batch; returns the latent size and
    what the figure needs."""
    rows = as_sent(train[:16])
    mu, log_var = encode(g, rows, audience="student")
    d = mu.shape[1]
    batch = torch.cat([rows, as_sent(train[16:200])])
    order = torch.from_numpy(rng.permutation(batch.shape[0]))
    mu_b, log_var_b = encode(g, batch[order], audience="student")
    where = torch.argsort(order)[:16]                           # rows 0..15 of `batch` in the shuffled batch
    z = as_sent(torch.from_numpy(rng.standard_normal((16, d))))
    logits = decode(g, z, audience="student")
    logits_again = decode(g, torch.cat([as_sent(torch.from_numpy(rng.standard_normal((100, d)))), z]),
                          audience="student")[100:]
    changes = {
        "encode's mu": float(rel_errors(mu_b[where], mu).max()),
        "encode's log_var": float(rel_errors(log_var_b[where], log_var).max()),
        "decode": float(rel_errors(logits_again, logits).max()),
    }
    worst = max(changes, key=changes.get)
    g.metric("deterministic", changes[worst],
             hint=f"The largest change was in {worst}. Call model.eval() before returning from fit() (dropout and "
                  "batch normalisation behave differently in training mode), and return (mu, log_var) and logits "
                  "from encode/decode, not random samples.",
             note=", ".join(f"{k} {v:.2e}" for k, v in changes.items()))
    recon = decode(g, mu, audience="student")
    return d, {"originals": rows[:10], "reconstructions": torch.sigmoid(recon[:10])}


def check_samples(g, rng: np.random.Generator, train: torch.Tensor, d: int) -> dict:
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=3)]

    def draw(n: int, seed: int) -> torch.Tensor:
        s = g.call("model.sample", n, seed=seed, audience="student")
        if s.shape[0] != n:
            raise ResultInvalid(f"model.sample({n}, seed=...) returned {s.shape[0]} images instead of {n}.")
        return s

    many = draw(N_SAMPLES, seeds[0])
    binary = bool(((many == 0) | (many == 1)).all())
    z = as_sent(torch.from_numpy(rng.standard_normal((N_SAMPLES, d))))
    probs = torch.sigmoid(decode(g, z, audience="student"))
    gap = (many.mean(0) - probs.mean(0)).abs()
    pixel = int(gap.argmax())
    hint = (f"At pixel {pixel} (row {pixel // 8}, column {pixel % 8}) {float(many[:, pixel].mean()):.3f} of your "
            f"samples are 1, but your decoder predicts {float(probs[:, pixel].mean()):.3f} on average for z ~ N(0, I). "
            "Draw z from the prior N(0, I), decode it and draw each pixel from Bernoulli(sigmoid(logit)) "
            "(torch.bernoulli); do not threshold at 0.5 and do not return training images.")
    if not binary:
        hint = "Some sampled values are not 0 or 1: return Bernoulli draws, not probabilities. " + hint
    g.metric("samples", float(gap.max()), hint=hint)

    first = draw(256, seeds[1])
    again = draw(256, seeds[1])
    other = draw(256, seeds[2])
    copied = exact_copy_fraction(many.numpy(), train.numpy()) if binary else 0.0
    problems = []
    if not binary:
        problems.append("some values are not 0 or 1 (sample x ~ Bernoulli(sigmoid(logits)) with torch.bernoulli)")
    if not torch.equal(first, again):
        problems.append("two calls with the same seed gave different images (seed a torch.Generator with the "
                        "seed argument and pass it to torch.randn and torch.bernoulli)")
    if float((first != other).any(dim=-1).double().mean()) < 0.5:
        problems.append("another seed gave mostly the same images (use the seed argument, not a fixed seed)")
    if copied > COPY_LIMIT:
        problems.append(f"{copied:.0%} of the samples are exact copies of training images (at most "
                        f"{COPY_LIMIT:.0%} allowed): sample from the model, never return stored data")
    g.record("sample_seed", not problems,
             "Binary samples; the same seed reproduces them and another seed changes them; "
             f"{copied:.1%} equal a training image." if not problems else "Problems: " + "; ".join(problems) + ".",
             value=copied, note=f"exact copies of training images {copied:.4f}")
    return {"samples": many[:10], "prior_means": probs[:10]}


def check_bounds(g, rng: np.random.Generator, train: torch.Tensor, test: torch.Tensor) -> dict:
    x = as_sent(test)
    mu, log_var = encode(g, x)
    _, log_px = log_weights(g, x, mu, log_var, K_ELBO, rng)
    lw_10, _ = log_weights(g, x, mu, log_var, K_IW10, rng)
    lw_k, _ = log_weights(g, x, mu, log_var, K_IW, rng)

    # ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)): the expectation by Monte Carlo, the KL in closed form.
    kl = kl_standard_normal(mu, log_var)
    elbo_i = log_px.mean(0) - kl                              # per image
    recon = float(-log_px.mean())
    iw10_i, iw100_i, iwk_i = iwae(lw_10, 10), iwae(lw_k, 100), iwae(lw_k, K_IW)
    neg = {"ELBO": float(-elbo_i.mean()), "IWAE-10": float(-iw10_i.mean()),
           "IWAE-100": float(-iw100_i.mean()), f"IWAE-{K_IW}": float(-iwk_i.mean())}
    summary = (", ".join(f"-{k} {format_number(v)}" for k, v in neg.items())
               + f" (reconstruction {format_number(recon)} + KL {format_number(float(kl.mean()))})")

    # Whether the decoder's outputs look like probabilities rather than logits.
    x_mu = decode(g, as_sent(mu))
    inside = float(((x_mu >= 0) & (x_mu <= 1)).double().mean())
    hint = (f"A decoder whose logits are all 0 scores 64 ln 2 = {64 * LN2:.2f} nats; one that ignores z and predicts "
            "each pixel's frequency about 25.")
    if inside > 0.99:
        hint = (f"{inside:.1%} of your decoder's outputs lie in [0, 1]: it looks like decode returns probabilities "
                "(a sigmoid at the end). Return the logits: the grader applies the sigmoid, and training should use "
                "binary_cross_entropy_with_logits. ") + hint
    g.metric("decoder_logits", recon, hint=hint, note=f"fraction of decoded outputs in [0,1]: {inside:.3f}; {summary}")

    step_10 = float((iw10_i - elbo_i).mean())                 # IWAE-10 - ELBO, in nats per image
    step_100 = float((iw100_i - iw10_i).mean())
    ordered = g.metric("bounds_ordered", min(step_10, step_100),
                       hint=f"The grader measured {summary}. Each bound should be at least as tight as the one before: "
                            "check that encode and decode give the same answer for the same input whatever the batch "
                            "(model.eval(), no randomness inside).",
                       detail=f"The grader measured {summary} nats per image.",
                       note=f"IWAE-10 - ELBO {step_10:.4f}, IWAE-100 - IWAE-10 {step_100:.4f}")

    # A leakage indicator for staff: the same bound on 400 training images.
    x_tr = as_sent(train[:N_TEST])
    mu_tr, log_var_tr = encode(g, x_tr)
    train_elbo = float(-(log_weights(g, x_tr, mu_tr, log_var_tr, 10, rng)[1].mean(0)
                         - kl_standard_normal(mu_tr, log_var_tr)).mean())
    gap_note = (f"{summary}; -ELBO on 400 training images {train_elbo:.3f}, generalisation gap "
                f"{neg['ELBO'] - train_elbo:.3f} nats (the reference: 1-2; near 0 or below with a "
                "low held-out bound suggests training on the public held-out images)")

    if not ordered:
        for name in BOUND_CHECKS:
            g.record(name, False, f"Not counted: the bounds are not ordered (see that check), so {neg['ELBO']:.3f} "
                     "nats is not a trustworthy bound.", value=neg["ELBO"] if "elbo" in name else neg[f"IWAE-{K_IW}"],
                     note=gap_note)
        return neg
    elbo_hint = (f"The grader measured {summary}. Train longer or with a learning-rate schedule, use a KL warm-up, "
                 "and check that your loss is bernoulli_nll + kl_normal per image (summed over pixels and latent "
                 "dimensions, then averaged over the batch).")
    g.metric("elbo", neg["ELBO"], hint=elbo_hint, note=gap_note)
    g.metric("elbo_c", neg["ELBO"], hint=elbo_hint, note=gap_note)
    iw_hint = (f"The grader measured {summary}. The IWAE bound rewards a good decoder and a posterior approximation "
               "that covers the true posterior: more latent dimensions, a wider network, a longer schedule or the "
               "IWAE objective itself help.")
    g.metric("iwae_c", neg[f"IWAE-{K_IW}"], hint=iw_hint, note=gap_note)
    g.metric("iwae_a", neg[f"IWAE-{K_IW}"], hint=iw_hint, note=gap_note)
    return neg


# ---- feedback figure ----

def figure_size(images: dict) -> tuple[float, float]:
    return 10, 1.1 * max(len(images), 3) + 0.4


def draw_feedback(fig: Figure, images: dict, bounds: dict | None, limits: dict[str, float] | None = None) -> None:
    rows = [(key, title) for key, title in (
        ("originals", "training images"), ("reconstructions", "reconstructions, sigmoid(decode(mu))"),
        ("prior_means", "sigmoid(decode(z)), z ~ N(0, I)"), ("samples", "your model.sample")) if key in images]
    width = 0.68 if bounds else 0.98
    for r, (key, title) in enumerate(rows):
        pics = images[key]
        for c in range(min(10, pics.shape[0])):
            ax = fig.add_axes([0.01 + c * width / 10, 1 - (r + 1) / len(rows) * 0.92, width / 10 * 0.95,
                               0.92 / len(rows) * 0.8])
            ax.imshow(pics[c].reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(title, fontsize=8, loc="left")
    if bounds:
        ax = fig.add_axes([0.76, 0.18, 0.22, 0.7])
        labels = list(bounds)
        ax.plot(range(len(labels)), [bounds[k] for k in labels], "o-")
        ax.set_xticks(range(len(labels)), [k.replace("IWAE-", "IW") for k in labels], fontsize=7)
        values = [bounds[k] for k in labels]
        low, high = min(values), max(values)
        for name, limit in (limits or {}).items():   # thresholds that fall near the plotted values
            if low - 0.5 <= limit <= high + 0.5:
                ax.axhline(limit, color="gray", ls="--", lw=0.8)
                ax.text(len(labels) - 1, limit, name, fontsize=6, color="gray", ha="right", va="bottom")
        ax.set_title("held-out bound, nats/image", fontsize=8)
        ax.tick_params(labelsize=7)


# ---- the grading run ----

def grade(g) -> None:
    # Independent streams from the secret seed: the split, the probes of the functions, and the draws of z.
    split_rng, probe_rng, model_rng, mc_rng = (np.random.default_rng(int(s)) for s in g.rng.integers(2**62, size=4))
    train, test = secret_split(split_rng, N_TEST)

    # The pure functions first, as the student's audience: nothing hidden is involved.
    with g.section("kl_normal"):
        check_kl(g, probe_rng)
    with g.section("reparameterise"):
        check_reparameterise(g, probe_rng)
    with g.section("bernoulli_nll"):
        check_bernoulli_nll(g, probe_rng)

    g.progress("training your model")
    g.train("fit", as_sent(train), check="fit_budget", probe=("model.encode", (as_sent(train[:8]),), {}))

    images: dict = {}
    d = None
    g.progress("checking your encoder and decoder")
    with g.section("deterministic", "samples", "sample_seed"):
        d, shown = check_deterministic(g, model_rng, train)
        images.update(shown)
    if d is not None:
        g.progress("auditing your sampler")
        with g.section("samples", "sample_seed"):
            images.update(check_samples(g, model_rng, train, d))

    # Held-out images last, as staff: nothing printed from here on reaches the student.
    g.progress("computing the ELBO and IWAE bounds on held-out images")
    bounds = None
    with g.section("decoder_logits", "bounds_ordered", *BOUND_CHECKS):
        bounds = check_bounds(g, mc_rng, train, test)

    if images or bounds:
        limits = {f"{spec.tier} {'IWAE' if 'iwae' in name else 'ELBO'} {spec.threshold:g}": spec.threshold
                  for name, spec in g.part.checks.items() if name in BOUND_CHECKS}
        g.figure("vae-digits", "Rows: training images, your reconstructions (pixel probabilities), decoded prior "
                 "draws and your binary samples. Right: the grader's held-out bounds (lower is better; "
                 "each IWAE-K should sit below the ELBO).",
                 lambda fig: draw_feedback(fig, images, bounds, limits), size=figure_size(images), layout=None)
