"""Trusted checks for the diffusion / flow-matching part. Runs in the grader, never in the sandbox.

Data: a constellation drawn from the secret run seed (`Modes.constellation`): 6 to 10 narrow Gaussian
modes (sigma 0.02 across, up to 2.5 times that along their own random direction) placed at random in a
disc of radius 3. A ring had three free parameters that a formula fitted by hand as well as any model;
here the number, placement and shape of the modes are the run's own, so writing the answer by hand is
fitting a Gaussian mixture, as much work as the model. The student's code returns primitives only
(schedules, paths, vector fields, velocities, samples); every score is computed here:
- the probability path on hidden inputs, against the grader's own formulas and autograd (d/dt of the
  path for the conditional vector field, grad_x of the log density for the conditional score);
- one model trained in the sandbox within the budget; 3 sampling seeds of 2000 samples each, scored on
  mode coverage, high-quality fraction, reverse KL over modes and MMD to fresh data, next to a
  real-vs-real floor; each sample metric is the median over the seeds (= passes on >= 2 of 3). Training
  three times would not fit the run's budget: training randomness is covered by calibration instead;
- the sampler must agree with the grader's own Euler integration of the student's velocity field;
- evidence of the method itself: the velocity at grader-chosen noisy points (fresh data on the path at
  grader-chosen times) against the run's exact marginal velocity, which a Gaussian mixture has in closed
  form (`Modes.posterior_means`): what flow-matching regression converges to;
- the samples are not the training points replayed (`copies.copy_test`: nearer the training set than a
  fresh set of the same size, on the run's constellation).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np
import torch

from grader.checking import Pending, ResultInvalid
from grader.checklib.batches import secret_subset
from grader.checklib.copies import copy_test
from grader.checklib.modes import Modes, Panel, draw_panels, panels_size
from grader.checklib.numerics import as_sent, rel_error

SIGMA = 0.02
N_TRAIN = 5000
N_SAMPLES = 2000
N_SEEDS = 3  # sampling seeds; every quality figure is the median over them
MIN_SHARE = 0.2  # a mode is covered with a fifth of its fair share of high-quality samples
# With 4 evaluations a sampler may under-weight outer modes, not drop them: the reference's 4-step sampler
# gives its least-served mode 0.16-0.32 of the fair share over 5 seeds (a dropped mode gets ~0), so a fifth
# failed it on 3 of 5 seeds. The A tier's coverage asks for a tenth.
FEW_STEP_MIN_SHARE = 0.1
SAMPLE_STEPS = 100
FEW_STEPS = 4
EULER_STEPS = 100
OTHER_STEPS = (40, 81)  # a secret second step count for the sampler agreement: the E tier's samplers take any
TIMING_CALLS = 8  # of each entry point: the fastest of 8 finds a quiet moment on a busy machine more often than of 6
TIMING_ROWS = (40_000, 60_001)  # rows of every timed call of a run (secret): one batch size, as the sampler's own
# The fastest sample(rows, steps=4) over the fastest velocity on as many rows: about the number of evaluations,
# less in the sandbox since a velocity call also moves its inputs (3 floats a row in, 2 out, where sample only
# returns 2). In the Docker sandbox, on the shared 2-core machine under load: the reference and other 4-evaluation
# samplers 2.4-3.6 (7 runs), a Heun step per `steps` (8 evaluations) 5.2-11.6 (3 runs); the bar sits between.
# The unisolated in-process backend reads higher and wider (the reference up to 5.4, Heun from 5.8): a short
# velocity call finds a quiet moment on a busy machine more easily than a long sample call. A difference of a
# large and a small call would cancel a call's fixed cost but doubles the noise.
MAX_EVALUATIONS = 4.5
REPRODUCED_TOL = 1e-4  # the same seed in another process: the same samples up to float32 rounding
BANDWIDTHS = (0.02, 0.1, 0.5, 2.0)
WIDE_BANDWIDTHS = BANDWIDTHS[1:]  # the constellation's scale, not a mode's width: blind to how sharp the modes are
PATHS = ("linear", "cosine")
N_VELOCITY = 4000  # noisy points at which the velocity is compared with the exact one
VELOCITY_T_MAX = 0.9  # up to here the exact field is smooth enough to compare point by point
# From here on: the DDPM noise-prediction loss weighs an error in the implied velocity by alpha_t^2, which
# vanishes at t = 0, so an honest epsilon model is barely trained there. Measured (one constellation): plain
# DDPM at uniform t scored 0.032 against 0.02, of which t < 0.05 gave 0.038 of 0.048 in a finer count, with
# samples of high quality 0.93 in every mode; the sampler crosses that stretch in a few steps.
VELOCITY_T_MIN = 0.05
COPY_FLOOR, COPY_SDS = 0.6, 4.0  # a share of samples nearer the training set than fresh data above both fails

SAMPLE_CHECKS = ("samples_fresh", "modes_covered", "high_quality", "reverse_kl", "mmd", "high_quality_c", "mmd_c")
MODEL_CHECKS = (*SAMPLE_CHECKS, "no_copies", "sampler_uses_model", "few_step_sampler", "velocity_field")


# ---- data and the grader's own formulas ----

def make_data(rng: np.random.Generator, n: int, modes: Modes) -> torch.Tensor:
    return torch.from_numpy(modes.sample(rng, n))


def min_count(modes: Modes, share: float = MIN_SHARE) -> float:
    return share * N_SAMPLES / modes.count


def alpha_sigma(t: torch.Tensor, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    if path == "linear":
        return t, 1 - t
    return torch.sin(0.5 * math.pi * t), torch.cos(0.5 * math.pi * t)


def path_and_velocity(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str):
    """x_t and d x_t / dt by autograd: row i of x_t depends on t_i only, so the gradient of a column's
    sum with respect to t is that column's time derivative."""
    tt = t.clone().requires_grad_(True)
    alpha, sigma = alpha_sigma(tt, path)
    xt = alpha * x1 + sigma * x0
    cols = [torch.autograd.grad(xt[:, j].sum(), tt, retain_graph=True)[0][:, 0] for j in range(2)]
    return xt.detach(), torch.stack(cols, dim=1)


def score_by_autograd(x: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, path: str) -> torch.Tensor:
    xx = x.clone().requires_grad_(True)
    alpha, sigma = alpha_sigma(t, path)
    log_p = -0.5 * ((xx - alpha * x1) / sigma).pow(2).sum(-1) - 2 * torch.log(sigma[:, 0]) - math.log(2 * math.pi)
    return torch.autograd.grad(log_p.sum(), xx)[0]


# ---- sample metrics ----

def gram_mean(a: torch.Tensor, b: torch.Tensor, *, same: bool = False,
              widths: tuple[float, ...] = BANDWIDTHS) -> float:
    """Mean of a sum of Gaussian kernels over all pairs (excluding i = j when a is b)."""
    d2 = torch.cdist(a, b).pow_(2)
    k = sum(torch.exp(d2 / (-2 * h * h)) for h in widths)
    if same:
        n = a.shape[0]
        return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))
    return float(k.mean())


def mmd2(x: torch.Tensor, y: torch.Tensor, yy: float | None = None, *,
         widths: tuple[float, ...] = BANDWIDTHS) -> float:
    """Unbiased MMD^2 with a sum of Gaussian kernels; `yy` is gram_mean(y, y, same=True) if known."""
    yy = gram_mean(y, y, same=True, widths=widths) if yy is None else yy
    return gram_mean(x, x, same=True, widths=widths) + yy - 2 * gram_mean(x, y, widths=widths)


def draw_samples(g, n: int, steps: int, seed: int) -> torch.Tensor:
    return counted(g.call("model.sample", n, steps=steps, seed=seed), n, steps)


def counted(s: torch.Tensor, n: int, steps: int) -> torch.Tensor:
    """model.sample's answer, if it has the n rows asked for."""
    if s.shape[0] != n:
        raise ResultInvalid(f"model.sample({n}, steps={steps}, seed=...) returned {s.shape[0]} samples, not {n}.")
    return s


@dataclass
class OtherProcess:
    """What a second, fresh scoring process answers, in a shuffled order: the first sampling seed again (the
    same samples must come back), the sampler at a secret second step count (it must integrate the same
    flow at any step count, not at 100 only), and the few-step sampler's timed calls (calls that look
    alike: sample and velocity on one secret number of rows; the timed samples are the ones scored, so the
    timed output is the output that counts)."""

    again: Pending
    other_steps: int
    at_other_steps: Pending
    timed: dict[str, list[Pending]] = field(default_factory=dict)  # "sample" / "velocity" -> its timed calls


def path_points(g, modes: Modes, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points x_t on the linear path of fresh data, t uniform in [0, 1): inputs like the sampler's own."""
    t = torch.from_numpy(g.rng.uniform(0.0, 1.0, (n, 1)))
    x = t * torch.from_numpy(modes.sample(g.rng, n)) + (1 - t) * torch.from_numpy(g.rng.standard_normal((n, 2)))
    return as_sent(x, t)


def other_process_round(g, modes: Modes, seeds: list[int]) -> OtherProcess:
    other_steps = int(g.rng.integers(*OTHER_STEPS))
    with g.round() as r:
        queries = OtherProcess(
            again=r.call("model.sample", N_SAMPLES, steps=SAMPLE_STEPS, seed=seeds[0]), other_steps=other_steps,
            at_other_steps=r.call("model.sample", N_SAMPLES, steps=other_steps, seed=g.torch_seed()))
        rows = int(g.rng.integers(*TIMING_ROWS))
        sample_seeds = [*seeds, *(g.torch_seed() for _ in range(TIMING_CALLS - len(seeds)))]
        queries.timed = {"sample": [r.call("model.sample", rows, steps=FEW_STEPS, seed=seed) for seed in sample_seeds],
                         "velocity": [r.call("model.velocity", *path_points(g, modes, rows))
                                      for _ in range(TIMING_CALLS)]}
    return queries


# ---- the checks ----

def grade(g) -> None:
    modes = Modes.constellation(g.rng, sigma=SIGMA)
    x_train = as_sent(make_data(g.rng, N_TRAIN, modes))

    g.progress("training your model")
    # Training output is the student's to see: nothing hidden has been sent yet.
    probe_t = torch.linspace(0, 1, 16, dtype=torch.float64).view(-1, 1)
    g.train("fit", x_train, check="fit_budget", probe=("model.velocity", (x_train[:16], probe_t), {}))

    panels: list[tuple[str, torch.Tensor]] = []
    seeds = [g.torch_seed() for _ in range(N_SEEDS)]
    g.progress("sampling from your model")
    second = other_process_round(g, modes, seeds)
    samples = sample_quality(g, modes, x_train, seeds, second, panels)
    with g.section("no_copies"):
        check_copies(g, modes, x_train, samples[0] if samples else draw_samples(g, N_SAMPLES, SAMPLE_STEPS, seeds[0]))
    sampler_agreement(g, modes, samples, seeds, second, panels)
    judge_quality(g, modes, samples)
    few_step(g, modes, second, panels)
    with g.section("velocity_field"):
        check_velocity_field(g, modes)
    if panels:
        real = make_data(g.rng, N_SAMPLES, modes).numpy()
        shown = [Panel(title, points.numpy(), real, modes) for title, points in panels]
        g.figure("samples", "Samples (blue), real data (grey) and the 3-sigma ellipses around the true modes "
                 "(red); the last panel zooms on one mode of the first.",
                 lambda fig: draw_panels(fig, shown, half_width=3.0), size=panels_size(len(shown)))

    for name, check in (("schedule_endpoints", check_endpoints), ("conditional_path", check_path),
                        ("conditional_vector_field", check_vector_field), ("conditional_score", check_score),
                        ("flow_matching_loss", check_loss)):
        with g.section(name):
            check(g)


def check_fresh(g, samples: list[torch.Tensor], again: torch.Tensor, x_train: torch.Tensor) -> None:
    """Another seed gives other points, the same seed in another process the same points, and no point is a
    training point. The hint names only what was measured to fail."""
    repeated = float(((samples[0] - samples[1]).abs().max(dim=1).values < 1e-6).double().mean())
    unreproduced = float(((again - samples[0]).abs().max(dim=1).values > REPRODUCED_TOL).double().mean())
    copied = float((torch.cdist(samples[0], x_train).min(dim=1).values < 1e-5).double().mean())
    limit = g.part.checks["samples_fresh"].threshold
    hints = []
    if repeated > limit:
        hints.append(f"{repeated:.0%} of the samples come back unchanged under another seed: draw the starting "
                     "noise from a generator seeded with `seed`.")
    if unreproduced > limit:
        hints.append(f"{unreproduced:.0%} of the samples differ when the same seed is asked for again in another "
                     "process: draw the starting noise from torch.Generator().manual_seed(seed), not from the "
                     "global random generator (torch.randn without generator=), so that a seed names one sample.")
    if copied > limit:
        hints.append(f"{copied:.0%} of the samples are training points: integrate from the noise rather than "
                     "returning stored data.")
    g.metric("samples_fresh", max(repeated, unreproduced, copied), hint=" ".join(hints),
             note=f"repeated {repeated:.4f}, not reproduced {unreproduced:.4f}, copies {copied:.4f}")


def sample_quality(g, modes: Modes, x_train, seeds, second: OtherProcess, panels) -> list[torch.Tensor]:
    """Draw the three seeds' samples and judge samples_fresh at once; the quality checks are judged by
    judge_quality, after sampler_uses_model."""
    samples: list[torch.Tensor] = []
    with g.section(*SAMPLE_CHECKS):
        for seed in seeds:
            samples.append(draw_samples(g, N_SAMPLES, SAMPLE_STEPS, seed))
        panels.append((f"model.sample(steps={SAMPLE_STEPS})", samples[0]))
        check_fresh(g, samples, counted(second.again.value, N_SAMPLES, SAMPLE_STEPS), x_train)
    return samples


def judge_quality(g, modes: Modes, samples: list[torch.Tensor]) -> None:
    """The samples' quality counts only for a sampler shown to integrate the model's own velocity
    (sampler_uses_model): samples drawn some other way (a mixture fitted to the data and sampled directly)
    say nothing about the flow that was learned, so they earn nothing here."""
    quality = [name for name in SAMPLE_CHECKS if name != "samples_fresh"]
    if len(samples) < N_SEEDS or any(name in g.outcomes for name in quality):
        return  # the sampling section already failed them, with its reason
    not_counted = ("Not counted: samples count only when model.sample integrates your model.velocity, which "
                   "sampler_uses_model did not show (see its feedback and the plot).")
    if not all([g.requires(name, "sampler_uses_model", failed=not_counted) for name in quality]):
        return
    with g.section(*quality):
        fresh, other = make_data(g.rng, N_SAMPLES, modes), make_data(g.rng, N_SAMPLES, modes)
        fresh_gram = gram_mean(fresh, fresh, same=True)
        floor_mmd = mmd2(other, fresh, fresh_gram)  # real vs real at the same size
        stats = [modes.stats(s, min_count=min_count(modes)) for s in samples]
        mmds = [mmd2(s, fresh, fresh_gram) for s in samples]
        real = modes.stats(other, min_count=min_count(modes))
        per_seed = "; ".join(f"{st.covered} modes, HQ {st.hq:.3f}, KL {st.reverse_kl:.4f}, MMD2 {m:.4f}"
                             for st, m in zip(stats, mmds, strict=True))
        note = (f"per seed: {per_seed}. Real data: {real.covered} modes, HQ {real.hq:.3f}, KL {real.reverse_kl:.4f}, "
                f"MMD2 floor {floor_mmd:.4f}")
        covered = statistics.median(st.covered for st in stats)
        hq = statistics.median(st.hq for st in stats)
        kl = statistics.median(st.reverse_kl for st in stats)
        mmd = statistics.median(mmds)
        floor = f"Real data at the same size: {real.covered} modes, high-quality fraction {real.hq:.3f}"
        look = "Look at the sample plot: "
        g.record("modes_covered", covered >= modes.count, value=covered, note=note, feedback=(
            f"Modes covered (median over {N_SEEDS} sampling seeds): {covered:g} of {modes.count}"
            + ("." if covered >= modes.count else
               f"; all must be covered. {floor}. {look}a missing mode usually means too little training or a "
               "sampler that stops early; samples smeared between the modes mean the velocity field is not "
               "sharp yet.")))
        g.metric("high_quality", hq, note=note,
                 hint=f"{floor}. {look}samples spread around the modes need a sharper velocity field near t = 1 "
                      "(train longer, sample t more often near 1, average the weights), or more sampling steps.")
        g.metric("reverse_kl", kl, note=note,
                 hint=f"Real data at the same size scores {real.reverse_kl:.4f} nats. Some modes get far more "
                      "samples than others: train longer, with larger batches.")
        g.metric("mmd", mmd, note=note,
                 hint=f"Two fresh real samples of the same size score {floor_mmd:.4f}. {look}"
                      "are the modes too wide, too narrow or unequal?")
        g.metric("high_quality_c", hq, note=note, hint=f"{floor}.")
        g.metric("mmd_c", mmd, note=note,
                 hint=f"Two fresh real samples of the same size score {floor_mmd:.4f}.")


def sampler_agreement(g, modes: Modes, samples, seeds, second: OtherProcess, panels) -> None:
    """model.sample(steps=100) against the grader's own Euler integration of model.velocity, and model.sample at a
    secret second step count against model.sample(steps=100): a sampler must integrate the same flow from t = 0
    to t = 1 whatever `steps` is. The second comparison is with the student's own sampler, not the grader's
    Euler, and with the kernels of the constellation's scale only: an honest solver may be sharper at one step
    count than at another (a midpoint rule ending on an Euler step: high quality 0.995 at 69 steps, 0.967 at
    100), while a sampler that stops short of t = 1 is off by a tenth of the distances between modes or more."""
    with g.section("sampler_uses_model"):
        g.progress("integrating your velocity field")
        theirs = samples[0] if samples else draw_samples(g, N_SAMPLES, SAMPLE_STEPS, seeds[0])
        other_steps = second.other_steps
        at_other_steps = counted(second.at_other_steps.value, N_SAMPLES, other_steps)
        x = torch.from_numpy(g.rng.standard_normal((N_SAMPLES, 2)))
        for k in range(EULER_STEPS):
            t = torch.full((N_SAMPLES, 1), k / EULER_STEPS, dtype=torch.float64)
            x = x + g.call("model.velocity", x, t) / EULER_STEPS
        panels.append((f"grader's Euler ({EULER_STEPS} steps) on your velocity", x))
        to_grader, across_steps = mmd2(theirs, x), mmd2(at_other_steps, theirs, widths=WIDE_BANDWIDTHS)
        ours, mine = modes.stats(x, min_count=min_count(modes)), modes.stats(theirs, min_count=min_count(modes))
        at_other = modes.stats(at_other_steps, min_count=min_count(modes))
        tv = 0.5 * float(np.abs(ours.histogram - mine.histogram).sum())
        note = (f"MMD2 to the grader's Euler {to_grader:.4f}, steps={other_steps} vs steps={SAMPLE_STEPS} "
                f"{across_steps:.4f}; grader's Euler: {ours.covered} modes, HQ {ours.hq:.3f}; model.sample: "
                f"{mine.covered} modes, HQ {mine.hq:.3f} (steps={other_steps}: {at_other.covered} modes, HQ "
                f"{at_other.hq:.3f}); mode-histogram TV {tv:.3f}")
        if to_grader >= across_steps:
            hint = (f"Integrating your model.velocity from noise at t = 0 to t = 1, the grader gets {ours.hq:.0%} "
                    f"high-quality samples in {ours.covered} modes; your model.sample gets {mine.hq:.0%} in "
                    f"{mine.covered} modes (see the plot). Check that sample starts from N(0, I), runs forward in "
                    "time from t = 0 to t = 1, updates x at every step, and calls the same velocity.")
        else:
            hint = (f"Your model.sample(n, steps={other_steps}) gives {at_other.hq:.0%} high-quality samples in "
                    f"{at_other.covered} modes, where steps={SAMPLE_STEPS} gives {mine.hq:.0%} in {mine.covered} "
                    f"(MMD^2 between them, at the scale of the constellation, {across_steps:.3f}). With any number of steps, sample must carry the noise "
                    "from t = 0 all the way to t = 1 (the steps together cover [0, 1], each of size about 1/steps "
                    "on a uniform grid), so fewer steps change the samples only a little.")
        g.metric("sampler_uses_model", max(to_grader, across_steps), note=note, hint=hint)


def evaluations(timed: dict[str, list[Pending]]) -> float:
    """The few-step sampler's cost in velocity calls on as many rows: the fastest sample call over the fastest
    velocity call (another process on the machine only ever slows a call down, so the fastest is the truest)."""
    fastest = {entry: min(call.seconds for call in calls) for entry, calls in timed.items()}
    return fastest["sample"] / max(fastest["velocity"], 1e-6)


def few_step(g, modes: Modes, second: OtherProcess, panels) -> None:
    with g.section("few_step_sampler"):
        g.progress("trying your sampler with 4 steps")
        runs = []
        for call in second.timed["sample"]:
            rows = int(call.args[0])
            runs.append(counted(call.value, rows, FEW_STEPS)[secret_subset(g.rng, rows, N_SAMPLES)])
        for call in second.timed["velocity"]:
            _ = call.value  # a velocity call that failed fails the check with its own error
        panels.append((f"model.sample(steps={FEW_STEPS})", runs[0]))
        stats = [modes.stats(s, min_count=min_count(modes, FEW_STEP_MIN_SHARE)) for s in runs]
        hq = statistics.median(st.hq for st in stats)
        covered = statistics.median(st.covered for st in stats)
        cost = evaluations(second.timed)
        seconds = {entry: [round(call.seconds, 3) for call in calls] for entry, calls in second.timed.items()}
        note = (f"per seed HQ {[round(st.hq, 3) for st in stats]}, modes {[st.covered for st in stats]}; cost of "
                f"sample(steps={FEW_STEPS}) {cost:.2f} velocity calls; seconds {seconds}")
        if cost > MAX_EVALUATIONS:
            g.record("few_step_sampler", False, value=hq, note=note, feedback=(
                f"model.sample(n, steps={FEW_STEPS}) takes as long as {cost:.1f} model.velocity calls on as many "
                f"points (the fastest of {TIMING_CALLS} calls each): with steps={FEW_STEPS} it may evaluate the "
                f"velocity at most {FEW_STEPS} times per sample. A Heun or midpoint step costs 2 evaluations."))
        elif covered < modes.count:
            g.record("few_step_sampler", False, value=hq, note=note, feedback=(
                f"With steps={FEW_STEPS} your samples cover {covered:g} of {modes.count} modes (median over "
                f"{len(runs)} seeds) with at least a tenth of their fair share; all must be covered."))
        else:
            g.metric("few_step_sampler", hq, note=note,
                     hint="Euler with 4 uniform steps leaves the samples between the modes. Where along t does "
                          "the flow bend the most? Spend the evaluations there, or use a second-order step.")


def check_copies(g, modes: Modes, x_train: torch.Tensor, samples: torch.Tensor) -> None:
    """Samples nearer the training points than a fresh draw of the same size: replayed training data."""
    found = copy_test(samples.numpy(), x_train.numpy(), lambda n: modes.sample(g.rng, n))
    limit = found.limit(COPY_FLOOR, COPY_SDS)
    g.metric("no_copies", found.fraction, threshold=limit,
             note=f"share nearer the training set {found.fraction:.3f}; null spread {found.null_sd:.4f}",
             hint="A model of the data is as near a fresh sample as the training sample (1/2 of the samples each "
                  "way); yours sit next to training points: it replays (noisy) training data instead of sampling.")


def exact_velocity(modes: Modes, x: np.ndarray, t: np.ndarray, path: str) -> np.ndarray:
    """The run's exact marginal velocity u_t(x) = E[d_alpha x1 + d_sigma x0 | x_t = x] on a path."""
    tt = torch.from_numpy(t).view(-1, 1).requires_grad_(True)
    alpha, sigma = alpha_sigma(tt, path)
    d_alpha = torch.autograd.grad(alpha.sum(), tt, retain_graph=True)[0]
    d_sigma = torch.autograd.grad(sigma.sum(), tt)[0]
    mean_x1, mean_x0 = modes.posterior_means(x, alpha.detach().numpy()[:, 0], sigma.detach().numpy()[:, 0])
    return d_alpha.numpy() * mean_x1 + d_sigma.numpy() * mean_x0


def check_velocity_field(g, modes: Modes) -> None:
    """What flow matching learns and a formula for the samples does not give: the marginal velocity at
    grader-chosen noisy points. Half the points lie on each path's marginal; the score is the better path's
    (the student trains on one), each on its own points, in one call."""
    g.progress("comparing your velocity with the exact one")
    x1, x0 = modes.sample(g.rng, N_VELOCITY), g.rng.standard_normal((N_VELOCITY, 2))
    t = torch.from_numpy(g.rng.uniform(VELOCITY_T_MIN, VELOCITY_T_MAX, (N_VELOCITY, 1)))
    on_path = {path: rows for path, rows in zip(PATHS, np.array_split(g.rng.permutation(N_VELOCITY), 2), strict=True)}
    x = np.empty((N_VELOCITY, 2))
    for path, rows in on_path.items():
        alpha, sigma = alpha_sigma(t[rows], path)
        x[rows] = alpha.numpy() * x1[rows] + sigma.numpy() * x0[rows]
    x, t = as_sent(torch.from_numpy(x), t)
    theirs = g.call("model.velocity", x, t).double().numpy()
    errors = {}
    for path, rows in on_path.items():
        exact = exact_velocity(modes, x.numpy()[rows], t.numpy()[rows, 0], path)
        errors[path] = float(((theirs[rows] - exact) ** 2).sum(1).mean() / (exact**2).sum(1).mean())
    path = min(errors, key=errors.get)
    g.metric("velocity_field", errors[path], note="relative squared error per path: "
             + ", ".join(f"{p} {e:.4f}" for p, e in errors.items()),
             hint=f"On the {path} path (your better one), your model.velocity at noisy points of the data (t from "
                  f"{VELOCITY_T_MIN:g} to {VELOCITY_T_MAX:g}) is far from the exact marginal velocity E[u_t(x | x1) | x_t = x] of this "
                  "run's data. Train by flow matching on the data passed to fit, for the whole budget; samples "
                  "can look right while the field is not the one the loss converges to.")


# ---- the probability path on hidden inputs ----

def random_inputs(g, batch: int, t_max: float):
    x0 = torch.from_numpy(g.rng.standard_normal((batch, 2)))
    x1 = torch.from_numpy(g.rng.uniform(-3, 3, size=(batch, 2)))
    t = torch.from_numpy(g.rng.uniform(0, t_max, size=(batch, 1)))
    t[0] = 0.0
    return as_sent(x0, x1, t)


def check_endpoints(g) -> None:
    worst, reversed_time, where = 0.0, False, ""
    for path in PATHS:
        out = g.call("schedule", torch.tensor([[0.0], [1.0]]), path=path)
        a, s = out["alpha"][:, 0], out["sigma"][:, 0]
        err = max(abs(float(a[0])), abs(float(s[0]) - 1), abs(float(a[1]) - 1), abs(float(s[1])))
        if err > worst:
            worst, where = err, path
        reversed_time |= abs(float(a[0]) - 1) < 1e-3 and abs(float(s[0])) < 1e-3
    hint = (f"On the {where} path: alpha_0 = 0 and sigma_0 = 1 (pure noise), alpha_1 = 1 and sigma_1 = 0 (data).")
    if reversed_time:
        hint += (" Your time runs the other way (data at t = 0): in this lab, as in flow matching, t = 0 is noise "
                 "and t = 1 is data; many diffusion papers use the opposite convention.")
    g.metric("schedule_endpoints", worst, hint=hint)


def check_path(g) -> None:
    worst = 0.0
    for path in PATHS:
        x0, x1, t = random_inputs(g, 256, 1.0)
        ours, _ = path_and_velocity(x0, x1, t, path)
        worst = max(worst, rel_error(g.call("conditional_path", x0, x1, t, path=path), ours))
    g.metric("conditional_path", worst,
             hint="x_t = alpha_t * x1 + sigma_t * x0, with alpha_t, sigma_t from schedule(t, path) (t has shape [B, 1]).")


def check_vector_field(g) -> None:
    worst, dropped_alpha, where = 0.0, True, ""
    for path in PATHS:
        x0, x1, t = random_inputs(g, 256, 0.95)
        xt, ours = path_and_velocity(x0, x1, t, path)
        xt = as_sent(xt)
        theirs = g.call("conditional_vector_field", xt, x1, t, path=path)
        err = rel_error(theirs, ours)
        if err > worst:
            worst, where = err, path
        # The classic slip: x - x1 where x - alpha_t x1 belongs.
        tt = t.clone().requires_grad_(True)
        a, s = alpha_sigma(tt, path)
        da = torch.autograd.grad(a.sum(), tt, retain_graph=True)[0]
        ds = torch.autograd.grad(s.sum(), tt)[0]
        slip = (da * x1 + ds / s * (xt - x1)).detach()
        dropped_alpha &= rel_error(theirs, slip) < 1e-3
    hint = (f"On the {where} path: differentiate x_t = alpha_t x1 + sigma_t x0 with respect to t, then write x0 "
            "in terms of the point: x0 = (x - alpha_t x1) / sigma_t.")
    if dropped_alpha:
        hint += " Your field matches (x - x1) in place of (x - alpha_t x1): the alpha_t factor is missing."
    g.metric("conditional_vector_field", worst, hint=hint)


def check_score(g) -> None:
    worst, where = 0.0, ""
    for path in PATHS:
        x0, x1, t = random_inputs(g, 256, 0.9)
        xt, _ = path_and_velocity(x0, x1, t, path)
        x = as_sent(xt + torch.from_numpy(g.rng.normal(0, 0.5, size=xt.shape)))  # on and off the path
        err = rel_error(g.call("conditional_score", x, x1, t, path=path), score_by_autograd(x, x1, t, path))
        if err > worst:
            worst, where = err, path
    g.metric("conditional_score", worst,
             hint=f"On the {where} path: p_t(x | x1) = N(x; alpha_t x1, sigma_t^2 I); its score is the gradient of "
                  "the log density with respect to x (mind the square on sigma_t).")


def check_loss(g) -> None:
    worst, ratios = 0.0, []
    for path in PATHS:
        x0, x1, t = random_inputs(g, 256, 0.95)
        _, u = path_and_velocity(x0, x1, t, path)
        v_pred = as_sent(u + torch.from_numpy(g.rng.normal(0, 1.0, size=u.shape)))
        ours = float((v_pred - u).pow(2).sum(-1).mean())
        theirs = g.call("flow_matching_loss", v_pred, x0, x1, t, path=path)
        ratios.append(theirs / ours)
        worst = max(worst, abs(theirs - ours) / ours)
    hint = ("The loss is the mean over the batch of || v_pred - u_t(x_t | x1) ||^2, summed over the 2 coordinates, "
            "where x_t = conditional_path(x0, x1, t).")
    if all(abs(r - 0.5) < 1e-3 for r in ratios):
        hint += " Yours is half of that: sum the squares over the coordinates before averaging over the batch."
    g.metric("flow_matching_loss", worst, hint=hint)
