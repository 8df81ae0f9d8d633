"""Trusted checks for the GAN part. Runs in the grader, never in the sandbox.

Data: a ring of 8 Gaussians (radius 2, sigma 0.05) turned by a rotation drawn from the secret run seed.
sigma is 0.05 rather than the 0.02 of the diffusion part: a GAN that trains in seconds on 2 CPU cores
places its samples to within about 0.1, and with sigma = 0.02 the high-quality radius (3 sigma) measured
that precision instead of mode coverage (the reference dropped a mode in 1 of 3 seeds at 0.02 within
the same budget). The modes stay 30 sigma apart, so mode coverage is still the question.

The student's code returns primitives only (loss values, D*, a penalty value, samples for the grader's
own z); every score is computed here:
- the losses at zero logits, on a grid and on random batches, against stable float64 formulas, and the
  slope of both generator losses by central differences of the returned values;
- D* against sigmoid(log p - log q), including log-densities whose exp underflows;
- the gradient penalty of a linear critic (analytic: lam (||w|| - 1)^2) and of a tanh critic (autograd);
- THREE trainings per run on three fresh data sets and rotations ("passes on >= 2 of 3 seeds" is the
  course's rule for stochastic parts): every sample metric is the median of the three, the properties
  that must always hold (budget, no copies, samples a function of z) are judged on the worst of them;
- a fourth, short training (max_seconds = SHORT_BUDGET, its model never scored): a fit that counts steps
  and ignores max_seconds returns within 30 s on the grader's CPUs (the reference's 3000 steps take 8 to
  25 s) and shows only at a smaller budget;
- no copies with `copies.copy_test` (samples nearer the training set than a fresh set of the same size),
  not the distance ratio alone: a generator that replays training points moved by sigma / 16 lies at
  0.66 of fresh data's distance to the training set, above any fair ratio limit, but nearer the training
  set than a fresh set for 70 % of its samples (an honest model: 50 %).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from grader.checking import ResultInvalid
from grader.checklib.copies import copy_test, nn_distance_ratio
from grader.checklib.modes import Modes, ModeStats, Panel, draw_panels, panels_size
from grader.checklib.numerics import as_sent, rel_error

SIGMA, N_MODES = 0.05, 8
N_TRAIN = 4000
N_SAMPLES = 2500  # as in the VEEGAN / PacGAN tables
MIN_COUNT = 20  # a mode is covered with at least 20 of 2500 high-quality samples (PacGAN's rule)
N_FITS = 3
MAX_LATENT = 1024
FD_AT, FD_STEP = -6.0, 0.05
SPREAD_RATIO = 0.25  # G(z) vs G(z') must differ by at least this fraction of what real pairs differ by
STILL_SPREAD = 1e-3  # below this spread ratio the samples do not move with z (one mode's own: 0.035)
SHORT_BUDGET = 2.0  # max_seconds of the fourth training, which only checks that fit obeys max_seconds
COPY_FLOOR, COPY_SDS = 0.6, 4.0  # a share of samples nearer the training set than fresh data above both fails

SAMPLE_CHECKS = ("fit_budget", "uses_z", "no_copies", "modes", "high_quality", "high_quality_c", "mode_balance")


# ---- data ----

def draw_ring(rng: np.random.Generator) -> Modes:
    """This training's ring: a fresh rotation from the secret seed."""
    return Modes.ring(float(rng.uniform(0.0, 2 * math.pi)), sigma=SIGMA, count=N_MODES)


def mean_pair_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).mean())


# ---- the trained generator ----

def function_of_z(g, z: np.ndarray, samples: torch.Tensor, real_spread: float) -> tuple[str, float]:
    """'' when generate is a deterministic, row-wise function of z that really depends on z, else why not;
    and the spread ratio (how much G(z) and G(z') differ relative to two independent real points)."""
    again = g.call("model.generate", z)
    if float((again - samples).abs().max()) > 1e-4:
        return ("generate(z) gave different samples when called twice with the same z. Draw no random "
                "numbers inside generate: the noise is the z the grader passes in."), math.nan
    perm = g.rng.permutation(z.shape[0])[:500]
    part = g.call("model.generate", z[perm])
    if float((part - samples[perm]).abs().max()) > 1e-3:
        return ("generate on a subset of the rows of z, in another order, did not give the same rows. Each "
                "sample must depend only on its own z: no batch statistics (put BatchNorm in eval mode) and "
                "no mixing across the batch."), math.nan
    other = g.call("model.generate", g.rng.standard_normal(z.shape)).numpy()
    ratio = mean_pair_distance(samples.numpy(), other) / real_spread
    return "", ratio


def copies_found(g, modes: Modes, samples: np.ndarray, x_train: np.ndarray) -> tuple[float, float]:
    """The share of samples nearer the training set than a fresh set of the same size, and the largest
    share an honest model may reach for these samples (copies.CopyTest.limit)."""
    found = copy_test(samples, x_train, lambda n: modes.sample(g.rng, n))
    return found.fraction, found.limit(COPY_FLOOR, COPY_SDS)


def record_budget(g, fit_times: list[float], short, note: str) -> None:
    """fit_budget: the three full trainings within max_seconds + grace, and the short one within its own."""
    stop_in_time = ("fit must stop when max_seconds is used up, whatever its value: check time.monotonic() in "
                    "the training loop instead of counting a fixed number of steps.")
    if not short.ok:
        advice = stop_in_time if short.error.kind == "limit" else "fit must work with any max_seconds, also a short one."
        g.record("fit_budget", False, note=note, feedback=(
            f"The grader also trains once with max_seconds = {SHORT_BUDGET:g}, and there: "
            f"{short.error.student_message.rstrip().rstrip('.')}. {advice}"))
    elif short.seconds > g.training_limit(SHORT_BUDGET):
        g.metric("fit_budget", short.seconds, threshold=g.training_limit(SHORT_BUDGET), note=note,
                 hint=f"That was the training with max_seconds = {SHORT_BUDGET:g}; with {g.train_seconds:g} s your fit took "
                      f"{max(fit_times):.1f} s at most. " + stop_in_time)
    else:
        g.metric("fit_budget", max(fit_times), threshold=g.training_limit(), note=note,
                 hint="Stop training when max_seconds is used up (check time.monotonic() in your loop); the "
                      "grader trains three times.")


def probe_generator(ask) -> tuple[str, tuple, dict]:
    """The restore check: generate on fixed z of the model's own latent size."""
    z_dim = int(ask("model.latent_dim"))
    return "model.generate", (torch.linspace(-2, 2, 16 * max(1, min(z_dim, MAX_LATENT)), dtype=torch.float64)
                              .view(16, -1),), {}


def record_uses_z(g, problems: list[str], spreads: list[float], note: str) -> None:
    """uses_z: the first property that failed in any training, else the median spread against SPREAD_RATIO.
    A spread below it is told apart by its size: samples that do not move with z at all (a generate that
    ignores z) and samples that move within a small part of the ring (collapse). Two independent points
    of the ring differ by 2.5 on average, two points of one mode by 0.09 (a ratio of 0.035), two points
    of neighbouring modes by 1.5 (0.6)."""
    median_spread = statistics.median(spreads)
    if problems:
        g.record("uses_z", False, problems[0], note=note)
        return
    if median_spread >= SPREAD_RATIO:
        g.record("uses_z", True, "generate is a deterministic, row-wise function of z, and z matters.",
                 value=median_spread, note=note)
        return
    measured = (f"Samples for two independent draws of z differ by {median_spread:.3f} of what two independent "
                "real points differ by (median of three trainings: "
                + ", ".join(f"{spread:.3f}" for spread in spreads) + f"; at least {SPREAD_RATIO} needed). ")
    if median_spread < STILL_SPREAD:
        why = ("Your generator gives the same point whatever z is: generate must compute each sample from its "
               "own row of z. Check that z reaches the network.")
    else:
        why = ("Your samples move with z, but stay on a small part of the ring (two points of one mode differ by "
               "0.035 of that, of two neighbouring modes by 0.6): the generator has collapsed onto one mode or a "
               "short stretch between modes. Plot G(z) for many z during training.")
    g.record("uses_z", False, measured + why, value=median_spread, note=note)


def mode_angle(modes: Modes, k: int) -> int:
    """Where mode k lies as the figure draws it: its centre's angle in whole degrees, counter-clockwise from
    the right (the x axis). Each training turns the ring afresh, so the angle names a mode in this run's
    figure and says nothing about a later run's ring."""
    x, y = modes.centres[k]
    return round(math.degrees(math.atan2(y, x))) % 360


def modes_below(modes: Modes, counts: np.ndarray, limit: float, of: str) -> str:
    """The modes with fewer than `limit` high-quality samples, in order of angle, `of` after the first count:
    '243° got 0 of 2500, 288° got 12', or 'none'."""
    low = sorted((k for k in range(modes.count) if counts[k] < limit), key=lambda k: mode_angle(modes, k))
    if not low:
        return "none"
    return ", ".join(f"{mode_angle(modes, k)}° got {int(counts[k])}" + (f" {of}" if i == 0 else "")
                     for i, k in enumerate(low))


def dropped_modes_words(rings: list[Modes], stats: list[ModeStats]) -> str:
    """For the modes hint: where each training left a mode (almost) empty, in the figure's terms."""
    return (f"Modes with fewer than {MIN_COUNT} of the {N_SAMPLES} samples within 3 sigma (at the angle of the "
            "mode, counter-clockwise from the right, as in the figure): "
            + "; ".join(f"training {r + 1}: {modes_below(modes, st.counts, MIN_COUNT, f'of {st.n}')}"
                        for r, (modes, st) in enumerate(zip(rings, stats, strict=True))) + ".")


def starved_modes_words(rings: list[Modes], stats: list[ModeStats], least_share: float) -> str:
    """For the mode_balance hint: the modes each training gave less than `least_share` of an even share of
    its high-quality samples (the balance is the emptiest mode's count over that share)."""
    parts = []
    for r, (modes, st) in enumerate(zip(rings, stats, strict=True)):
        share = st.counts.sum() / modes.count
        words = (modes_below(modes, st.counts, least_share * share, f"of an even share of {share:.0f}") if share
                 else "no sample within 3 sigma of any mode")
        parts.append(f"training {r + 1}: {words}")
    return (f"Modes with less than {least_share:g} of an even share of the high-quality samples (at the angle "
            "of the mode, counter-clockwise from the right, as in the figure): " + "; ".join(parts) + ".")


def sample_quality(g) -> None:
    # The three trainings first, one after another in one training sandbox (each on its own data and
    # rotation); then each trained generator is scored in a fresh sandbox rebuilt from its own state.
    fit_times, notes, stats, rings, copies, spreads, panels, problems = [], [], [], [], [], [], [], []
    floor: ModeStats | None = None
    trained = []
    for r in range(N_FITS):
        modes = draw_ring(g.rng)
        x_train = modes.sample(g.rng, N_TRAIN)
        fresh = modes.sample(g.rng, N_SAMPLES)
        g.progress(f"training your GAN ({r + 1} of {N_FITS})")
        trained.append((g.train("fit", x_train, check=None, probe=probe_generator), modes, x_train, fresh))
    g.progress("training your GAN with a short max_seconds")
    short = g.train("fit", draw_ring(g.rng).sample(g.rng, N_TRAIN), check=None, budget=SHORT_BUDGET)
    for r, (training, modes, x_train, fresh) in enumerate(trained):
        if not training.ok:
            raise training.error
        fit_times.append(training.seconds)
        g.use(training)
        g.progress(f"sampling from your GAN ({r + 1} of {N_FITS})")
        z_dim = g.call("model.latent_dim")
        if not 1 <= z_dim <= MAX_LATENT:
            raise ResultInvalid(f"model.latent_dim() returned {z_dim}; it must be between 1 and {MAX_LATENT}.")
        z = g.rng.standard_normal((N_SAMPLES, z_dim))
        samples = g.call("model.generate", z)
        if samples.shape[0] != N_SAMPLES:
            raise ResultInvalid(f"model.generate returned {samples.shape[0]} rows for {N_SAMPLES} rows of z.")
        s = samples.numpy()
        st = modes.stats(s, min_count=MIN_COUNT)
        stats.append(st)
        rings.append(modes)
        copies.append(copies_found(g, modes, s, x_train))
        real_spread = mean_pair_distance(fresh, modes.sample(g.rng, N_SAMPLES))
        problem, spread = function_of_z(g, z, samples, real_spread)
        spreads.append(spread)
        if problem:
            problems.append(problem)
        if floor is None:
            floor = modes.stats(fresh, min_count=MIN_COUNT)
        notes.append(f"fit {r + 1}: {fit_times[-1]:.1f} s, Z={z_dim}, modes {st.covered}, hq {st.hq:.3f}, "
                     f"balance {st.balance:.2f}, nearer training {copies[-1][0]:.3f} (limit {copies[-1][1]:.3f}, "
                     f"distance ratio {nn_distance_ratio(s, x_train, fresh):.2f}), spread {spread:.2f}, "
                     f"counts {st.counts.tolist()}")
        panels.append(Panel(f"training {r + 1}: {st.covered} modes, HQ {st.hq:.2f}", s, x_train, modes))

    note = "; ".join(notes)
    record_budget(g, fit_times, short, note)
    record_uses_z(g, problems, spreads, note)

    nearer, limit = max(copies, key=lambda found: found[0] - found[1])  # the training nearest to failing
    g.metric("no_copies", nearer, threshold=limit, note=note,
             hint=f"{nearer:.0%} of your samples lie nearer a training point than any point of a fresh sample of "
                  f"the same size (a model of the distribution has seen neither: about 50%, at most {limit:.0%} "
                  "allowed). The generator replays training points, perhaps moved a little, instead of modelling "
                  "the distribution.")
    floor_text = (f"Real data at the same sample size: {floor.covered} modes, {floor.hq:.3f} high-quality, "
                  f"balance {floor.balance:.2f}. Per training: "
                  + ", ".join(f"{st.covered} modes / {st.hq:.2f} HQ / balance {st.balance:.2f}" for st in stats)
                  + ".")
    g.metric("modes", statistics.median(st.covered for st in stats), note=note,
             hint=floor_text + " " + dropped_modes_words(rings, stats)
                  + " Too few modes is mode collapse: use the non-saturating loss, Adam with beta1 = 0.5, and consider "
                    "PacGAN (the discriminator judges pairs of samples).")
    g.metric("high_quality", statistics.median(st.hq for st in stats), note=note,
             hint=floor_text + " Samples between the modes: train longer, decay the learning rate towards the end.")
    g.metric("high_quality_c", statistics.median(st.hq for st in stats), note=note,
             hint=floor_text + " Decay the learning rate towards the end of training, and use the whole budget.")
    g.metric("mode_balance", statistics.median(st.balance for st in stats), note=note,
             hint=floor_text + " " + starved_modes_words(rings, stats, g.part.checks["mode_balance"].threshold)
                  + " Some modes get far fewer samples than others (partial mode collapse): PacGAN or minibatch "
                    "features let the discriminator see how diverse a batch is.")
    g.figure("samples", "Your samples (blue) for the grader's z after each of the three trainings, the training "
             "data (grey) and the 3-sigma circles around the true modes (red); the last panel zooms on one mode. "
             "Samples outside the first three panels are drawn on their edges.",
             lambda fig: draw_panels(fig, panels, zoom=0.5), size=panels_size(len(panels)))


# ---- the losses ----

def d_loss(real: torch.Tensor, fake: torch.Tensor) -> float:
    return float(F.softplus(-real).mean() + F.softplus(fake).mean())


def g_sat(fake: torch.Tensor) -> float:
    return float(-F.softplus(fake).mean())


def g_ns(fake: torch.Tensor) -> float:
    return float(F.softplus(-fake).mean())


def random_logits(g, n: int) -> torch.Tensor:
    """Logits of every size: moderate ones and confident ones up to +-30."""
    scale = g.rng.choice([1.0, 5.0, 15.0], size=n)
    return as_sent(np.clip(scale * g.rng.standard_normal(n), -30, 30))


def check_at_zero(g) -> None:
    worst = 0.0
    for b, m in ((64, 64), (5, 17)):
        worst = max(worst, abs(g.call("discriminator_loss", torch.zeros(b), torch.zeros(m)) - 2 * math.log(2)),
                    abs(g.call("generator_loss_saturating", torch.zeros(m)) + math.log(2)),
                    abs(g.call("generator_loss_nonsaturating", torch.zeros(m)) - math.log(2)))
    g.metric("losses_at_zero", worst,
             hint="At logit 0, D = sigmoid(0) = 1/2: discriminator_loss = -log(1/2) - log(1 - 1/2) = 2 ln 2, "
                  "generator_loss_saturating = log(1 - 1/2) = -ln 2, generator_loss_nonsaturating = -log(1/2) = ln 2. "
                  "Each loss is a mean over its batch.")


def check_discriminator(g) -> None:
    worst = 0.0
    for b, m in ((256, 256), (100, 37), (1, 300)):
        real, fake = random_logits(g, b), random_logits(g, m)
        worst = max(worst, rel_error(g.call("discriminator_loss", real, fake), d_loss(real, fake)))
    for real, fake in (([30.0], [-30.0]), ([-30.0], [30.0]), ([20.0, -20.0], [25.0])):
        real, fake = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
        worst = max(worst, rel_error(g.call("discriminator_loss", real, fake), d_loss(real, fake)))
    g.metric("discriminator_loss", worst,
             hint="D's loss is -mean over the real batch of log D(x) minus mean over the fake batch of "
                  "log(1 - D(G(z))): real samples are labelled 1, fakes 0 (check the signs). The two batches "
                  "may have different sizes. With confident logits sigmoid rounds to exactly 0 or 1 in float32 "
                  "and log gives -inf: use log D = -softplus(-logit), log(1 - D) = -softplus(logit).")


def check_generator(g) -> None:
    worst = 0.0
    grid = torch.linspace(-30, 30, 25, dtype=torch.float64)
    for f in grid:
        one = f.view(1)
        worst = max(worst, rel_error(g.call("generator_loss_saturating", one), g_sat(one)),
                    rel_error(g.call("generator_loss_nonsaturating", one), g_ns(one)))
    for m in (256, 33):
        fake = random_logits(g, m)
        worst = max(worst, rel_error(g.call("generator_loss_saturating", fake), g_sat(fake)),
                    rel_error(g.call("generator_loss_nonsaturating", fake), g_ns(fake)))
    g.metric("generator_losses", worst,
             hint="generator_loss_saturating is mean log(1 - D(G(z))) (the minimax game's term, which G "
                  "minimises: -softplus(logit)); generator_loss_nonsaturating is -mean log D(G(z)) "
                  "(softplus(-logit)). Check them at a few logits by hand, including large ones such as +-30.")


def check_gradient(g) -> None:
    def slope(entry: str) -> float:
        hi = g.call(entry, torch.tensor([FD_AT + FD_STEP], dtype=torch.float64))
        lo = g.call(entry, torch.tensor([FD_AT - FD_STEP], dtype=torch.float64))
        return (hi - lo) / (2 * FD_STEP)

    ns, sat = slope("generator_loss_nonsaturating"), slope("generator_loss_saturating")
    ratio = abs(ns) / abs(sat) if sat != 0 else math.inf
    g.metric("nonsaturating_gradient", ratio, note=f"slopes at {FD_AT}: non-saturating {ns:.5f}, saturating {sat:.6f}",
             hint=f"Your slopes at logit {FD_AT:g} (D(G(z)) = 0.0025, the discriminator is sure the sample is "
                  f"fake): non-saturating {ns:.4f}, saturating {sat:.5f}. The non-saturating loss -log D should "
                  "keep a slope near -1 there, the saturating log(1 - D) a slope near 0.")


def check_optimal(g) -> None:
    lp = g.rng.normal(-3, 5, size=64)
    lq = lp + g.rng.normal(0, 3, size=64)
    extreme_p = np.array([-1000.0, -1000.0, -1001.0, -750.0, -90.0, 80.0, 0.0, -30.0])
    extreme_q = np.array([-1001.0, -1000.0, -1000.0, -760.0, -100.0, 90.0, 0.0, -30.0])
    log_p, log_q = as_sent(np.concatenate([lp, extreme_p]), np.concatenate([lq, extreme_q]))
    try:
        theirs = g.call("optimal_discriminator", log_p, log_q)
    except ResultInvalid as exc:
        if "NaN" not in exc.student_message:
            raise
        # the unguarded p / (p + q) gives 0 / 0 = NaN exactly where the hint below explains it
        g.record("optimal_discriminator", False, f"{exc.student_message.rstrip('.')}. {ZERO_OVER_ZERO}")
        return
    ours = torch.sigmoid(log_p - log_q)
    g.metric("optimal_discriminator", float((theirs - ours).abs().max()), hint="D*(x) = p(x) / (p(x) + q(x)). "
             + ZERO_OVER_ZERO)


ZERO_OVER_ZERO = ("You get log-densities: when both are about -1000, exp gives 0 and p / (p + q) is 0 / 0. Divide "
                  "numerator and denominator by p: 1 / (1 + q / p) = sigmoid(log p - log q).")


def penalty(w, W1, b1, w2, x_real, x_fake, alpha, lam) -> float:
    x_hat = (alpha * x_real + (1 - alpha) * x_fake).requires_grad_(True)
    f = x_hat @ w + torch.tanh(x_hat @ W1.T + b1) @ w2
    (grad,) = torch.autograd.grad(f.sum(), x_hat)
    return float(lam * ((grad.norm(dim=1) - 1) ** 2).mean())


def critic_case(g, d: int, h: int, b: int, linear: bool):
    w = g.rng.standard_normal(d) * (0.3 if not linear else g.rng.uniform(0.2, 1.5))
    W1 = np.zeros((h, d)) if linear else g.rng.standard_normal((h, d))
    b1 = g.rng.normal(0, 0.5, size=h)
    w2 = g.rng.standard_normal(h)
    x_real = np.concatenate([draw_ring(g.rng).sample(g.rng, b), g.rng.standard_normal((b, d - 2))], axis=1)
    x_fake = 1.5 * g.rng.standard_normal((b, d))
    alpha = g.rng.uniform(0, 1, size=(b, 1))
    lam = float(g.rng.choice([1.0, 10.0]))
    return (*as_sent(w, W1, b1, w2, x_real, x_fake, alpha), lam)


def check_penalty_linear(g) -> None:
    worst = 0.0
    for d in (2, 3, 2):
        args = critic_case(g, d, 8, 64, linear=True)
        w, lam = args[0], args[-1]
        worst = max(worst, rel_error(g.call("critic_gradient_penalty", *args), lam * (w.norm() - 1) ** 2))
    g.metric("gradient_penalty_linear", worst,
             hint="For a linear critic f(x) = w.x the gradient with respect to x is w everywhere, so the penalty "
                  "lam * mean (||grad|| - 1)^2 equals lam (||w|| - 1)^2. Take the gradient with torch.autograd.grad "
                  "of critic(x_hat).sum() with respect to x_hat, and the Euclidean norm of each row.")


def check_penalty(g) -> None:
    worst = 0.0
    for d in (2, 3):
        args = critic_case(g, d, 16, 128, linear=False)
        worst = max(worst, rel_error(g.call("critic_gradient_penalty", *args), penalty(*args)))
    g.metric("gradient_penalty", worst,
             hint="The gradient is taken at x_hat_i = alpha_i x_real_i + (1 - alpha_i) x_fake_i, one alpha per row "
                  "(alpha has shape [B, 1]), and the penalty is lam * mean_i (||grad_i|| - 1)^2 with the norm, not "
                  "the squared norm. Use create_graph=True so that training can differentiate the penalty.")


def grade(g) -> None:
    with g.section(*SAMPLE_CHECKS):
        sample_quality(g)
    for name, check in (("losses_at_zero", check_at_zero), ("discriminator_loss", check_discriminator),
                        ("generator_losses", check_generator), ("nonsaturating_gradient", check_gradient),
                        ("optimal_discriminator", check_optimal), ("gradient_penalty_linear", check_penalty_linear),
                        ("gradient_penalty", check_penalty)):
        with g.section(name):
            check(g)
