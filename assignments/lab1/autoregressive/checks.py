"""Trusted checks for the autoregressive part. Runs in the grader, never in the sandbox.

Data: the copy source. V = 16 tokens, T = 64 positions; x_0..x_7 are uniform; for t >= 8,
x_t = x_{t-8} with probability 0.8, otherwise uniform (which may again give x_{t-8}). So

    p(x_t = x_{t-8} | past) = 0.8 + 0.2/16 = 0.8125 and 0.2/16 = 0.0125 for each other token;
    H_copy = -0.8125 ln 0.8125 - 15 * 0.0125 ln 0.0125 = 0.99034 nats for t >= 8, ln 16 = 2.77259 for t < 8;
    the entropy rate per token, averaged over all 64 positions (what the NLL is compared with):
    (8 ln 16 + 56 H_copy) / 64 = 1.21312 nats/token.

The student returns logits; the grader normalises them (log-softmax), checks causality by perturbing
future tokens, computes the NLL, and audits the sampler against the model's own logits.

C tier, binary digits the student cannot hold. Every image is drawn afresh for the run from a secret
source whose density the grader knows exactly (grader/checklib/digit_mixtures.py: this part's own staff
decoder, hidden/digit_source.safetensors, trained with seed 2 by hidden/train_digit_source.py, never in a
sandbox or the handout, and a secret region of its latent space per run). fit_digits() gets 2000 images;
the 400 held-out images, the decoys and the copy test's fresh images are further draws of the same
source, so nothing in how they were made tells them from the training images, and none exists before
the run. A held-out split of scikit-learn's public digits was dropped: the public set minus the training
rows *is* the held-out set. The student returns Bernoulli logits of p(x_d = 1 | x_<d); the grader checks
causality by flipping pixel d and every pixel from d on for every d, computes -log p(x) itself (softplus
form, float64) on the held-out images sent in one shuffled batch with training images and decoys, and
scores its excess over the source's exact -log p(x) on the same images: a value more than 4 standard
errors below 0 is not a likelihood (logits that depend on the batch, or a leak the probe missed) and
fails with that explanation. It fits two baselines itself on the same training images (independent
pixels, a check; a linear autoregressive model, for the staff note) and audits the sampler against the
model's own logits on its samples; copies of training images count only beyond the copies of as many
fresh images (simple digits of a sharp source recur: 15-28 % of fresh images equal a training image).
Measured (seeds 1-4, in-process): the reference MADE 0.95-1.42 nats above the source, the linear model
1.5-2.2, independent pixels 8-13, MADE trained on the 1797 public digits 3.7-4.5 (on the run's images plus
the public ones 1.3-1.7: the public digits are not this run's source, so holding them earns nothing).

A tier, the KV cache: equality of model.logits_cached and model.logits, and cost. Timing
logits_cached proves nothing (given all the tokens it can be one full pass), and timing model.sample
proves nothing either: its output for a seed cannot be checked, so a pool of sequences generated during
fit (or by any shortcut) would look fast. So the timed call is model.generate(gumbel): the grader draws
the Gumbel noise, token t must be argmax_v log_softmax(logits_t)_v + gumbel_t,v (a draw from
softmax(logits_t)), and every returned token is checked against model.logits asked afterwards, in a
fresh process that never saw the noise: output prepared earlier, kept in the state, or remembered from
an earlier call does not pass, and a cache that drifts from the full pass shows as wrong tokens. The
other side of the ratio is model.logits, one pass over whole fresh sequences: the same rows in and out,
in the same process, in an order shuffled with the secret seed, nothing sent twice. Each of 3 pairs
makes both calls on a secret large number of rows (768-1279) and on 1/8 of it; the large call minus the
small one is the cost of the extra rows, so the fixed cost of a call, and any constant delay a
submission adds to model.logits (wrong/kv_slow_prefixes), cancels. The value is the median pair's ratio,
generation's cost in full passes. What remains open: a model.logits made slow in proportion to its rows
on every call (the function every other check scores) cannot be told from a slow model by timing; that
is left to the declaration and the oral. logits_cached is compared with model.logits from that later
process too, so it must compute the logits itself (a memo of model.logits in its own process is gone).

Measured on the shared 2-core machine under load, as graded (value: generate's cost in full passes):
                                 docker         bwrap
    reference                    2.8            3.8
    wrong/kv_sample_uncached     19.4           30.1
    wrong/kv_slow_prefixes       15.1           15.8
hence the threshold 8: about 2x from both sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.nn.functional import logsigmoid

from grader.checking import Pending, ResultInvalid
from grader.checklib.batches import Interleaved, secret_subset
from grader.checklib.copies import exact_copy_fraction
from grader.checklib.digit_mixtures import DigitMixture, StaffDecoder
from grader.checklib.digits import bernoulli_nll, show_mosaic
from grader.sandbox.session import SandboxError

HIDDEN = Path(__file__).resolve().parent / "hidden"

V, T, LAG, P_COPY = 16, 64, 8, 0.8
Q_OTHER = (1 - P_COPY) / V                     # 0.0125
P_SAME = P_COPY + Q_OTHER                      # 0.8125
H_COPY = -P_SAME * math.log(P_SAME) - (V - 1) * Q_OTHER * math.log(Q_OTHER)
ENTROPY = (LAG * math.log(V) + (T - LAG) * H_COPY) / T   # 1.21312 nats/token

N_TRAIN, N_TEST, TEST_CHUNK = 10_000, 2_000, 500
N_SAMPLE = 256                                  # samples for the copy-rate and temperature checks
N_SAMPLE_DECOYS = 64                            # fresh sequences asked with the samples' logits, never judged
TOL = 1e-4                                      # log-probability tolerance (float32 rounding)
PROBE_POSITIONS = (0, 1, 5, 7, 8, 9, 15, 16, 31, 40, 56, 62, 63)
TOP_KS = (1, 4)
# The sampler's operating points checked against the model's own logits, besides temperature 1 (copy_rate):
# flattened, sharpened, and top-k after the temperature. A temperature measured at one point only let through
# a top-k branch that never divides by it (wrong/top_k_ignores_temperature) and a division made only above 1.
TEMPERATURE_POINTS = ((2.0, 0), (0.5, 0), (2.0, 4))     # (temperature, top_k)
# The seed is checked at every branch a sampler may have: plain, sharpened, top-k (wrong/top_k_ignores_seed).
SEED_POINTS = ((1.0, 0), (0.5, 0), (2.0, 4))

KV_PAIRS = 3                                    # pairs of (large, small) calls of generate and of the full pass
KV_LARGE = (768, 1280)                          # the large calls' rows, drawn per pair (the small: 1/8 of them)
KV_SMALL_FRACTION = 8
KV_CACHE_ROWS = 16                              # fresh sequences for logits_cached (and as many decoys)
KV_CHUNK = 1024                                 # rows per model.logits call of the second round

PIXELS = 64                                     # 8x8 digits, raster order: pixel d = 8 * row + column
N_DIGITS_TRAIN = 2000                           # images fit_digits gets
N_DIGITS_TEST = 400                             # held-out images scored (standard error of the excess ~0.09)
N_DIGITS_GAP = 400                              # training images scored for the staff note
N_DIGITS_DECOYS = 200                           # fresh images sent with the scored ones, never scored
N_DIGITS_VERIFIED = 32                          # scored held-out images re-asked with one pixel flipped (secret subset)
FLIPS_PER_VERIFIED = 8                          # pixels flipped, one at a time, in each of them
DIGITS_FLOOR_SDS = 4.0                          # an NLL this many standard errors below the source's is not one
DIGITS_BUDGET_FRACTION = 0.5                    # fit_digits gets half of fit's budget
N_DIGIT_SAMPLES = 2000
DIGITS_EXTRA_COPIES = 0.10                      # copies of training images beyond those of fresh images allowed


def make_sequences(rng: np.random.Generator, n: int) -> torch.Tensor:
    """n copy-source sequences, int64 [n, T]."""
    x = rng.integers(0, V, size=(n, T))
    keep = rng.random((n, T)) < P_COPY
    for t in range(LAG, T):
        x[:, t] = np.where(keep[:, t], x[:, t - LAG], x[:, t])
    return torch.from_numpy(x).long()


def true_next_token_probs(tokens: torch.Tensor) -> torch.Tensor:
    """p*(x_t = v | x_<t) for every row, position and token: float64 [B, T, V]."""
    p = torch.full((*tokens.shape, V), 1.0 / V, dtype=torch.float64)
    p[:, LAG:] = Q_OTHER + P_COPY * torch.nn.functional.one_hot(tokens[:, :-LAG], V).double()
    return p


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.double(), dim=-1)


def copy_indicator(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens[:, LAG:] == tokens[:, :-LAG]).double()   # [n, T-8]


def get_samples(g, n: int, *, temperature: float, top_k: int, seed: int) -> torch.Tensor:
    """model.sample's tokens [n, T], validated."""
    s = g.call("model.sample", n, temperature=temperature, top_k=top_k, seed=seed, audience="student")
    if s.shape[0] != n:
        raise ResultInvalid(f"model.sample({n}, ...) returned {s.shape[0]} sequences instead of {n}.")
    if s.numel() and (int(s.min()) < 0 or int(s.max()) >= V):
        raise ResultInvalid(f"model.sample returned tokens outside 0..{V - 1} (found {int(s.min())}..{int(s.max())}): "
                            "never return the BOS token, and drop it from the front of your sequences.")
    return s.long()


def causality_probe(rng: np.random.Generator, bases: torch.Tensor):
    """Rows: the bases, then for each base and position j one row with token j changed and one with
    every token from j on redrawn. Returns the rows and (base row, j, what changed) per extra row."""
    rows, meta = [bases], []
    for b in range(bases.shape[0]):
        for j in PROBE_POSITIONS:
            one = bases[b].clone()
            one[j] = (one[j] + int(rng.integers(1, V))) % V
            suffix = bases[b].clone()
            suffix[j:] = torch.from_numpy((suffix[j:].numpy() + rng.integers(1, V, size=T - j)) % V)
            rows += [one[None], suffix[None]]
            meta += [(b, j, f"the token at position {j}"), (b, j, f"every token from position {j} on")]
    return torch.cat(rows), meta


def allowed(p: int) -> str:
    return "BOS alone (no token)" if p == 0 else "token 0 only" if p == 1 else f"tokens 0..{p - 1} only"


def find_leaks(lp: torch.Tensor, meta: list[tuple[int, int, str]], n_bases: int
               ) -> tuple[float, list[tuple[int, int, int, str, float]]]:
    """Compare each perturbed row of lp [R, L, V] (log-probabilities; rows n_bases.. follow `meta`) with its
    base row: a perturbation at position j may change nothing at positions 0..j. Returns the largest change
    seen there and every leak as (j - p, p, j, what changed, size), so that max() finds the farthest look ahead."""
    worst, leaks = 0.0, []
    for r, (b, j, what) in enumerate(meta, start=n_bases):
        change = (lp[r, : j + 1] - lp[b, : j + 1]).abs().amax(dim=-1)      # [j+1]: positions 0..j
        worst = max(worst, float(change.max()))
        for p in torch.nonzero(change > TOL).flatten().tolist():
            leaks.append((j - p, p, j, what, float(change[p])))
    return worst, leaks


def causality_hint(leaks: list[tuple[int, int, int, str, float]]) -> str:
    """Feedback for the leaks find_leaks saw: the farthest look into the future when there is one (a missing
    mask), else a position that sees its own token (inputs not shifted); '' when nothing leaked."""
    if not leaks:
        return ""
    future = [leak for leak in leaks if leak[0] > 0]
    if future:
        _, p, j, what, d = max(future)
        return (f"The log-probabilities at position {p} changed by {d:.3g} when {what} changed: your model "
                f"looks into the future. Position {p} may use {allowed(p)}: mask attention to later "
                "positions (a lower-triangular mask on the attention scores, applied before the softmax).")
    _, p, j, what, d = leaks[0]
    return (f"The log-probabilities at position {p} changed by {d:.3g} when the token at position {p} "
            f"itself changed: logits[:, {p}] must predict token {p} from {allowed(p)}. Shift the "
            "inputs right by one (BOS, x_0, ..., x_62) so the model never sees the token it predicts.")


def check_causality(g, rng: np.random.Generator) -> bool:
    bases = make_sequences(rng, 4)
    rows, meta = causality_probe(rng, bases)
    lp = log_probs(g.call("model.logits", rows, audience="student"))
    worst, leaks = find_leaks(lp, meta, bases.shape[0])
    if not leaks:
        return g.metric("causal", worst)
    g.metric("causal", worst, hint=causality_hint(leaks), note=f"{len(leaks)} leaking (position, row) pairs")
    return False


# ---- A tier: the KV cache ----

@dataclass
class KvQueries:
    """The A tier's two rounds: the timed calls and the cache's logits (first), the full pass that checks
    them (second, a fresh process)."""

    cache_tokens: torch.Tensor
    pairs: list[dict[str, Any]] = field(default_factory=list)   # per pair: rows, gumbel and Pending by size
    cached: Pending | None = None
    checked: Interleaved | None = None
    full: list[Pending] = field(default_factory=list)

    def generated(self) -> list[tuple[Pending, torch.Tensor]]:
        """(the generate call, the gumbel noise [n, T, V] it got) for every generate call, in a fixed order."""
        return [(pair["generate"][size], pair["gumbel"][size]) for pair in self.pairs for size in ("large", "small")]


def generated_tokens(call: Pending) -> torch.Tensor:
    """What one model.generate call returned, validated: raises its error, or ResultInvalid for tokens that
    are not 0..V-1."""
    tokens = call.value
    if int(tokens.min()) < 0 or int(tokens.max()) >= V:
        raise ResultInvalid(f"model.generate returned tokens outside 0..{V - 1} (found {int(tokens.min())}.."
                            f"{int(tokens.max())}): return the drawn tokens, without BOS.")
    return tokens.long()


def gumbel_noise(rng: np.random.Generator, n: int) -> torch.Tensor:
    """Standard Gumbel draws [n, T, V], rounded to float32 as they are sent: argmax(logits + noise) is a draw
    from softmax(logits)."""
    u = rng.random((n, T, V)).clip(1e-12, 1 - 1e-12)
    return torch.from_numpy(-np.log(-np.log(u))).float().double()


def kv_first_round(g, rng: np.random.Generator) -> KvQueries:
    """One fresh process answers, in an order shuffled with the secret seed: for each of KV_PAIRS pairs,
    model.generate on grader-drawn noise and model.logits on fresh sequences, both at a secret large and a
    small number of rows (calls that look alike: the same rows in and out, nothing repeated); and
    model.logits_cached on fresh sequences."""
    q = KvQueries(cache_tokens=make_sequences(rng, KV_CACHE_ROWS))
    with g.round() as r:
        q.cached = r.call("model.logits_cached", q.cache_tokens)
        for _ in range(KV_PAIRS):
            large = int(rng.integers(*KV_LARGE))
            sizes = {"large": large, "small": large // KV_SMALL_FRACTION}
            pair: dict[str, Any] = {"gumbel": {}, "generate": {}, "logits": {}}
            for size, n in sizes.items():
                pair["gumbel"][size] = gumbel_noise(rng, n)
                pair["generate"][size] = r.call("model.generate", pair["gumbel"][size])
                pair["logits"][size] = r.call("model.logits", make_sequences(rng, n))
            q.pairs.append(pair)
    return q


def kv_second_round(g, rng: np.random.Generator, q: KvQueries) -> None:
    """The model's full pass, in a fresh process that has seen none of the first round, on the cache's
    sequences, as many fresh decoys and every generated sequence (when every generate call answered), shuffled."""
    try:
        generated = [generated_tokens(call) for call, _ in q.generated()]
    except SandboxError:
        generated = []  # check_kv_speed reports the error; the cache's logits are still checked
    q.checked = Interleaved(rng, q.cache_tokens, make_sequences(rng, KV_CACHE_ROWS), *generated)
    with g.round() as r:
        q.full = [r.call("model.logits", rows) for rows in q.checked.rows.split(KV_CHUNK)]


def full_pass(q: KvQueries) -> list[torch.Tensor]:
    """The second round's logits, split back into the groups: the cache's rows, the decoys, each generate call's."""
    return q.checked.split(torch.cat([call.value for call in q.full]))


def check_kv_cache(g, q: KvQueries) -> None:
    """logits_cached (first round) against logits (second round, another process) on the same fresh rows."""
    full, cached = log_probs(full_pass(q)[0]), log_probs(q.cached.value)
    diff = (full - cached).abs().amax(dim=(0, 2))                          # per position
    t = int(torch.nonzero(diff > TOL).flatten()[0]) if bool((diff > TOL).any()) else 0
    g.metric("kv_cache", float(diff.max()),
             hint=f"The first large difference is at position {t}. Check the positions you add for new "
                  "tokens (start offset), that cached keys and values are appended in order, and that a "
                  "new query sees every cached key (no mask is needed within the cache).",
             note=f"logits_cached took {q.cached.seconds:.3f} s for {KV_CACHE_ROWS} sequences")


def generation_mismatches(tokens: torch.Tensor, gumbel: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Where token t of a row is not argmax_v log_softmax(logits)[t, v] + gumbel[t, v] (ties within TOL
    count as the argmax): bool [n, T]."""
    scores = log_probs(logits) + gumbel
    chosen = scores.gather(-1, tokens[..., None])[..., 0]
    return chosen < scores.amax(dim=-1) - TOL


def kv_timings(q: KvQueries) -> list[dict[str, float]]:
    """Per pair: the per-row cost of generate and of the full pass (the large call's seconds minus the small
    one's, so that a call's fixed cost, and any constant delay in it, cancels), and their ratio."""
    rounds = []
    for pair in q.pairs:
        rows = pair["gumbel"]["large"].shape[0] - pair["gumbel"]["small"].shape[0]
        generate = pair["generate"]["large"].seconds - pair["generate"]["small"].seconds
        full = pair["logits"]["large"].seconds - pair["logits"]["small"].seconds
        rounds.append({"rows": rows, "generate": generate, "full": full,
                       "ratio": max(generate, 0.0) / full if full > 0 else math.inf})
    return rounds


def check_kv_speed(g, q: KvQueries) -> None:
    if not g.requires("kv_speed", "kv_cache", failed="Not measured: the KV-cache check did not pass (see it), and "
                      "a fast cache only counts when its logits equal those of the full pass."):
        return
    generated = [(generated_tokens(call), gumbel) for call, gumbel in q.generated()]
    wrong, total, example = 0, 0, ""
    for (tokens, gumbel), logits in zip(generated, full_pass(q)[2:], strict=True):
        bad = generation_mismatches(tokens, gumbel, logits)
        wrong, total = wrong + int(bad.sum()), total + bad.numel()
        if bad.any() and not example:
            b, t = (int(i) for i in torch.nonzero(bad)[0])
            example = (f" E.g. row {b}, position {t}: you returned token {int(tokens[b, t])}, but your model.logits "
                       f"on that row, plus the noise, is largest at token "
                       f"{int((log_probs(logits[b, t]) + gumbel[b, t]).argmax())}.")
    if wrong:
        g.record("kv_speed", False, f"Not counted: {wrong} of the {total} tokens your model.generate returned are not "
                 "the argmax of your model.logits plus the grader's noise at that position (your model.logits was "
                 "asked afterwards, in another process, on the sequences you generated)." + example + " Draw each "
                 "token as argmax(logits[:, t] + gumbel[:, t]) from the logits of the tokens generated so far, "
                 "through your cache, and use nothing prepared in advance.",
                 value=math.inf, note=f"{wrong} of {total} generated tokens inconsistent with model.logits")
        return
    rounds = kv_timings(q)
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    g.metric("kv_speed", median["ratio"],
             detail=f"In the median of {KV_PAIRS} pairs of calls, {median['rows']} more sequences cost your "
                    f"model.generate {1e3 * median['generate']:.0f} ms more and your model.logits (one pass over "
                    f"whole sequences) {1e3 * median['full']:.1f} ms more.",
             hint="Make generate use your cache: run the model on the BOS token once, then feed only the newly drawn "
                  "token at each step (forward(token, caches, start=t)), so that every step costs one query "
                  "against the cached keys and values instead of a pass over the whole prefix.",
             note="pairs (rows, generate s, full pass s, ratio): " + "; ".join(
                 f"{r['rows']}, {r['generate']:.4f}, {r['full']:.4f}, {r['ratio']:.2f}" for r in rounds))


def check_sampling_statistics(g, rng: np.random.Generator, train: torch.Tensor) -> torch.Tensor:
    samples = get_samples(g, N_SAMPLE, temperature=1.0, top_k=0, seed=int(rng.integers(2**31 - 1)))
    rate = float(copy_indicator(samples).mean())
    g.metric("copy_rate", abs(rate - P_SAME),
             hint=f"Your samples copy the token 8 positions back at rate {rate:.3f}; the source does so at 0.8125. "
                  "Check that sample() feeds each new token back in, uses BOS at the start, and draws from "
                  "softmax(logits) of the last position.", note=f"copy rate {rate:.4f}")

    copied = exact_copy_fraction(samples.numpy(), train.numpy())
    g.metric("samples_novel", copied,
             hint="Your samples repeat training sequences: sample from your model's distribution, "
                  "never return stored data.")
    return samples


@dataclass
class LaterLogits:
    """Samples drawn in one process, whose logits (what the sampler must have drawn from) are asked in a
    later round: a fresh process that has not seen the sample calls, the groups shuffled together and with
    fresh decoys, so that no memory of what was sampled, at which temperature, can shape the logits that
    judge it. `add` in the sampling sections; `ask` in the round; `get` in the judging sections (a failed
    call raises there, inside the section that needs it)."""

    entry: str
    chunk: int
    groups: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    batch: Interleaved | None = None
    pending: list[Pending] = field(default_factory=list)

    def add(self, name: str, rows: torch.Tensor) -> None:
        self.groups.setdefault(name, []).append(rows)

    def ask(self, r, rng: np.random.Generator, decoys: torch.Tensor) -> None:
        if not self.groups:
            return
        rows = [group.to(decoys.dtype) for groups in self.groups.values() for group in groups]
        self.batch = Interleaved(rng, *rows, decoys)
        self.pending = [r.call(self.entry, chunk) for chunk in self.batch.rows.split(self.chunk)]

    def get(self, name: str) -> list[torch.Tensor]:
        """The logits of each group added under `name`, in the order added."""
        answers = iter(self.batch.split(torch.cat([p.value for p in self.pending])))
        by_name = {key: [next(answers) for _ in groups] for key, groups in self.groups.items()}
        return by_name[name]


def operating_point(temperature: float, top_k: int) -> str:
    return f"temperature {temperature:g}" + (f" with top_k = {top_k}" if top_k else " without top-k")


def tempered_log_probs(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """log softmax(logits / temperature), cut to the top_k largest (top_k 0: all): what a sampler at that
    operating point draws from, in float64."""
    scaled = logits.double() / temperature
    if top_k:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    return torch.log_softmax(scaled, dim=-1)


def temperature_result(tokens: torch.Tensor, logits: torch.Tensor, temperature: float, top_k: int) -> dict[str, float]:
    """One operating point: the copy rate of samples drawn there (tokens [n, T]) against the rate that the
    model's own logits on those samples predict at the same positions, tempered and truncated alike."""
    lp = tempered_log_probs(logits, temperature, top_k)
    predicted = float(lp[:, LAG:].gather(-1, tokens[:, :-LAG, None]).exp().mean())
    measured = float(copy_indicator(tokens).mean())
    return {"temperature": temperature, "top_k": top_k, "measured": measured, "predicted": predicted,
            "gap": abs(measured - predicted)}


def temperature_hint(results: list[dict[str, float]], tolerance: float) -> str:
    """Feedback for the worst operating point, with what the points within tolerance say about where the bug
    is; '' when every point is within tolerance."""
    worst = max(results, key=lambda r: r["gap"])
    if worst["gap"] <= tolerance:
        return ""
    fine = [r for r in results if r["gap"] <= tolerance]
    text = (f"At {operating_point(worst['temperature'], worst['top_k'])} your samples copy the token 8 back at rate "
            f"{worst['measured']:.3f}, while softmax(logits / {worst['temperature']:g})"
            + (f" cut to its {worst['top_k']} largest" if worst["top_k"] else "")
            + f" of your own model.logits predicts {worst['predicted']:.3f}. ")
    if worst["top_k"] and any(not r["top_k"] and r["temperature"] == worst["temperature"] for r in fine):
        return text + ("Without top-k the temperature works: apply it in the top-k case too (divide the logits by "
                       "the temperature first, then keep the k largest).")
    if worst["temperature"] < 1 and any(r["temperature"] > 1 for r in fine):
        return text + ("Temperatures above 1 work, this one below 1 does not: divide the logits by the temperature "
                       "for every temperature > 0 (below 1 it sharpens the distribution).")
    return text + "Divide the logits by the temperature before the softmax (then apply top-k, if any)."


def draw_tempered(g, rng: np.random.Generator, later: LaterLogits) -> None:
    """The samples at each of TEMPERATURE_POINTS; their logits are asked later (check_temperature)."""
    for temperature, top_k in TEMPERATURE_POINTS:
        later.add("temperature", get_samples(g, N_SAMPLE, temperature=temperature, top_k=top_k,
                                             seed=int(rng.integers(2**31 - 1))))


def check_temperature(g, later: LaterLogits) -> None:
    """At each of TEMPERATURE_POINTS: the copy rate of the samples against the rate the model's own tempered
    (and truncated) softmax predicts at the same positions. The value is the largest gap."""
    results = [temperature_result(tokens, logits, temperature, top_k)
               for (temperature, top_k), tokens, logits in zip(TEMPERATURE_POINTS, later.groups["temperature"],
                                                                later.get("temperature"), strict=True)]
    tolerance = g.part.checks["temperature"].threshold
    g.metric("temperature", max(r["gap"] for r in results), hint=temperature_hint(results, tolerance),
             note="; ".join(f"{operating_point(r['temperature'], r['top_k'])}: measured {r['measured']:.4f}, "
                            f"predicted {r['predicted']:.4f}" for r in results))


def draw_greedy(g, rng: np.random.Generator, later: LaterLogits) -> None:
    later.add("greedy", get_samples(g, 8, temperature=0.0, top_k=0, seed=int(rng.integers(2**31 - 1))))


def check_greedy(g, later: LaterLogits) -> None:
    """Every token sampled at temperature 0 is the argmax of the model's logits (asked in a later process)."""
    (s,), (logits,) = later.groups["greedy"], later.get("greedy")
    lp = log_probs(logits)
    chosen = lp.gather(-1, s[..., None])[..., 0]
    wrong = chosen < lp.amax(dim=-1) - TOL
    hint = ""
    if wrong.any():
        b, t = (int(i) for i in torch.nonzero(wrong)[0])
        hint = (f"E.g. sequence {b}, position {t}: you sampled token {int(s[b, t])} but your logits' argmax is "
                f"{int(lp[b, t].argmax())}. At temperature 0 take the argmax (don't divide by zero).")
    value = float(wrong.double().mean())
    if value == 0:
        g.record("greedy", True, "Every token sampled at temperature 0 is the argmax of your logits.", value=value)
    else:
        g.record("greedy", False, f"{value:.2%} of the tokens sampled at temperature 0 are not the argmax of "
                 f"your model.logits at that position. {hint}", value=value)


def draw_top_k(g, rng: np.random.Generator, later: LaterLogits) -> None:
    for k in TOP_KS:
        later.add("top_k", get_samples(g, 64, temperature=1.0, top_k=k, seed=int(rng.integers(2**31 - 1))))


def check_top_k(g, later: LaterLogits) -> None:
    """No token sampled with top_k = k lies outside the k largest of the model's logits (asked later)."""
    outside, total, examples = 0, 0, []
    for k, s, logits in zip(TOP_KS, later.groups["top_k"], later.get("top_k"), strict=True):
        lp = log_probs(logits)
        chosen = lp.gather(-1, s[..., None])
        above = (lp > chosen + TOL).sum(dim=-1)          # tokens clearly more likely than the sampled one
        bad = above >= k
        outside += int(bad.sum())
        total += bad.numel()
        if bad.any():
            b, t = (int(i) for i in torch.nonzero(bad)[0])
            examples.append(f"with top_k={k}, {float(bad.double().mean()):.2%} of tokens were outside the top {k} "
                            f"(e.g. sequence {b}, position {t} has rank {int(above[b, t]) + 1})")
    if not outside:
        g.record("top_k", True, f"No sampled token left the top k (k = {', '.join(map(str, TOP_KS))}).", value=0.0)
    else:
        g.record("top_k", False, "Some sampled tokens are outside the top k of your model.logits: "
                 + "; ".join(examples) + ". Keep exactly the k largest logits (set the others to -inf), "
                 "then sample from the softmax of what is left.", value=outside / total)


def check_seed(g, rng: np.random.Generator) -> None:
    """The same seed reproduces the samples at every operating point of SEED_POINTS (in a fresh process);
    another seed changes them at temperature 1."""
    seed_a, seed_b = (int(x) for x in rng.integers(2**31 - 1, size=2))
    first = [get_samples(g, 16, temperature=t, top_k=k, seed=seed_a) for t, k in SEED_POINTS]
    with g.round():  # a fresh process: a sampler that remembers its answers cannot look reproducible
        again = [get_samples(g, 16, temperature=t, top_k=k, seed=seed_a) for t, k in SEED_POINTS]
    a = first[0]
    b = get_samples(g, 16, temperature=1.0, top_k=0, seed=seed_b)
    same = {operating_point(*point): torch.equal(x, y) for point, x, y in zip(SEED_POINTS, first, again, strict=True)}
    differ = float((a != b).any(dim=-1).double().mean())
    passed, feedback = seed_feedback(same, differ, distinct=len(a.unique(dim=0)), rows=len(a))
    g.record("seed", passed, feedback, value=None if not all(same.values()) else differ)


def seed_feedback(same: dict[str, bool], differ: float, *, distinct: int, rows: int) -> tuple[bool, str]:
    """Whether the seed works, and why not. `same`: per operating point, whether one seed gave the same
    samples in two processes; `differ`: the share of rows that another seed changed at temperature 1;
    `distinct`: how many of the `rows` samples of one call at temperature 1 differ from each other. Samples
    that are nearly all one sequence do not show a seed ignored: either the sampler draws nothing (the argmax)
    or the model gives one token nearly all the probability (wrong/no_bos_shift); this check cannot tell which."""
    if not all(same.values()):
        agree = [point for point, ok in same.items() if ok]
        return False, ("Two calls with the same seed gave different samples at "
                       + " and at ".join(point for point, ok in same.items() if not ok)
                       + (f" (at {' and '.join(agree)} they agree)" if agree else "")
                       + ": create a torch.Generator seeded with `seed` inside sample() and pass it to every "
                       "torch.multinomial call, in every branch (top-k included).")
    if differ < 0.5 and distinct <= rows // 2:
        return False, (f"Your {rows} samples at temperature 1 are only {distinct} different sequence"
                       f"{'s' if distinct != 1 else ''}, so another seed cannot change them; the seed is not what "
                       "is wrong. Either sample() takes the most likely token instead of drawing from "
                       "softmax(logits / temperature) with torch.multinomial (the argmax is for temperature 0 "
                       "only), or your model gives one token nearly all the probability at every position (see "
                       "the causality and copy-rate checks).")
    if differ < 0.5:
        return False, (f"Two different seeds gave the same samples in {1 - differ:.0%} of the rows, though the "
                       "samples of one call differ from each other: use the seed argument (a torch.Generator "
                       "seeded with it), not a fixed seed.")
    return True, "The same seed reproduces the samples (at " + ", ".join(same) + "); another seed changes them."


def check_nll(g, test: torch.Tensor, causal_ok: bool) -> torch.Tensor:
    lp = torch.cat([log_probs(g.call("model.logits", chunk)) for chunk in test.split(TEST_CHUNK)])
    expected = -(true_next_token_probs(test) * lp).sum(dim=-1)           # [N, T]: E over x_t of -log q(x_t)
    nll = float(expected.mean())
    drawn = float(-lp.gather(-1, test[..., None]).mean())
    first, rest = float(expected[:, :LAG].mean()), float(expected[:, LAG:].mean())
    detail = (f"Positions 0-7 cost {first:.4f} nats (floor ln 16 = {math.log(V):.4f}), positions 8-63 "
              f"{rest:.4f} (floor {H_COPY:.4f}); the entropy rate averaged over all 64 positions is {ENTROPY:.4f}.")
    note = f"nll {nll:.5f}, on the drawn tokens {drawn:.5f}, excess {nll - ENTROPY:.5f}"
    if not causal_ok:
        for name in ("nll", "nll_tight"):
            g.record(name, False, f"Not counted: your model is not causal (see the causality check), so "
                     f"{nll:.4f} nats/token is not a likelihood. {detail}", value=nll, note=note)
        return expected
    hint = (detail + " Train longer or with a larger learning rate, and check that the loss is the "
            "cross-entropy of logits[:, t] against token t.")
    g.metric("nll", nll, hint=hint, note=note)
    g.metric("nll_tight", nll, hint=hint, note=note)
    return expected


def draw_feedback(fig: Figure, expected: torch.Tensor | None, samples: torch.Tensor | None) -> None:
    axes = fig.subplots(1, 2)
    if expected is not None:
        floor = [math.log(V)] * LAG + [H_COPY] * (T - LAG)
        axes[0].plot(expected.mean(0).numpy(), label="your model")
        axes[0].step(range(T), floor, where="mid", color="k", ls="--", lw=1, label="entropy (floor)")
        axes[0].set(xlabel="position t", ylabel="test NLL (nats)", title="NLL per position")
        axes[0].legend(fontsize=8)
    if samples is not None:
        axes[1].imshow(samples[:16].numpy(), cmap="tab20", vmin=0, vmax=19, aspect="auto", interpolation="nearest")
        axes[1].set(xlabel="position t", ylabel="sample", title="16 samples (temperature 1)")


# ---- C tier: binarised digits ----

def digit_source(rng: np.random.Generator) -> DigitMixture:
    """This run's secret source of binary digit images (grader/checklib/digit_mixtures.py): a secret region
    of the staff decoder's latent space, whose exact density the grader knows."""
    return DigitMixture.draw(StaffDecoder.load(HIDDEN / "digit_source.safetensors"), rng)


def independent_nll(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """The grader's baseline: one Bernoulli per pixel, the (smoothed) fraction of 1s in the training images."""
    p = (train.sum(0) + 1) / (train.shape[0] + 2)
    return bernoulli_nll(torch.log(p) - torch.log1p(-p), test)


def linear_autoregressive_nll(train: torch.Tensor, test: torch.Tensor, steps: int = 100, lr: float = 0.2,
                              l2: float = 1e-3) -> torch.Tensor:
    """The grader's second baseline, for the staff note: logit_d = b_d + sum_{i<d} W_di x_i (a fully visible
    sigmoid belief net, i.e. 64 logistic regressions on the earlier pixels). Full-batch Adam from zero with
    a little L2, in numpy (a fraction of a second, deterministic)."""
    x, y = train.numpy(), test.numpy()
    n, d = x.shape
    mask = np.tril(np.ones((d, d)), -1)                                   # [d, i]: i < d
    params = [np.zeros((d, d)), np.zeros(d)]                              # W, b
    moments = [[np.zeros((d, d)), np.zeros(d)] for _ in range(2)]
    for t in range(1, steps + 1):
        err = 1 / (1 + np.exp(-(x @ params[0].T + params[1]))) - x        # d(mean BCE)/d(logits) * n
        grads = [(err.T @ x / n + 2 * l2 * params[0]) * mask, err.mean(0)]
        for p, g, m, v in zip(params, grads, *moments, strict=True):
            m[...] = 0.9 * m + 0.1 * g
            v[...] = 0.999 * v + 0.001 * g**2
            p -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    logits = y @ params[0].T + params[1]
    return torch.from_numpy(np.logaddexp(0, logits).sum(1) - (y * logits).sum(1))


def pixel_name(d: int) -> str:
    return f"pixel {d} (row {d // 8}, column {d % 8})"


def digits_allowed(d: int) -> str:
    return "nothing (a bias only)" if d == 0 else "pixel 0 only" if d == 1 else f"pixels 0..{d - 1} only"


def digits_causality_probe(bases: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int, str]]]:
    """Rows: the bases [b, 64], then for each base and pixel d one row with pixel d flipped and one with every
    pixel from d on flipped; and (base row, d, what changed) per extra row, as find_leaks reads them."""
    rows, meta = [bases], []
    for b in range(bases.shape[0]):
        for d in range(PIXELS):
            one, suffix = bases[b].clone(), bases[b].clone()
            one[d] = 1 - one[d]
            suffix[d:] = 1 - suffix[d:]
            rows += [one[None], suffix[None]]
            meta += [(b, d, pixel_name(d)), (b, d, f"every pixel from {d} on")]
    return torch.cat(rows), meta


def check_digits_causality(g, rng: np.random.Generator, train: torch.Tensor) -> bool:
    """For 4 images (2 training images, 2 random bit patterns) and every pixel d: flip pixel d alone, and
    every pixel from d on; the Bernoulli log-probabilities at pixels 0..d must not change."""
    picks = train[torch.from_numpy(rng.choice(train.shape[0], 2, replace=False))]
    noise = torch.from_numpy((rng.random((2, PIXELS)) < 0.5).astype(np.float64))
    bases = torch.cat([picks, noise])
    rows, meta = digits_causality_probe(bases)
    logits = g.call("digits_model.logits", rows, audience="student")
    lp = torch.stack([logsigmoid(logits), logsigmoid(-logits)], dim=-1)     # [R, 64, 2]: log p(1), log p(0)
    worst, leaks = find_leaks(lp, meta, bases.shape[0])
    if not leaks:
        return g.metric("digits_causal", worst)
    g.metric("digits_causal", worst, hint=digits_causality_hint(leaks), note=f"{len(leaks)} leaking (pixel, row) pairs")
    return False


def digits_causality_hint(leaks: list[tuple[int, int, int, str, float]]) -> str:
    """Feedback for the digits model's leaks: a later pixel seen (a mask that lets it through) before a pixel
    that sees itself (a non-strict output mask); '' when nothing leaked."""
    if not leaks:
        return ""
    future = [leak for leak in leaks if leak[0] > 0]
    if future:
        _, p, d, what, size = max(future)
        return (f"The log-probabilities of {pixel_name(p)} changed by {size:.3g} when {what} changed: the "
                f"logit of pixel {p} may use {digits_allowed(p)}. Check your masks: a hidden unit of degree m "
                "may see pixels 0..m, an output d only hidden units of degree m < d, and every layer's weight "
                "must be multiplied by its mask in forward (not only at initialisation).")
    _, p, d, what, size = leaks[0]
    return (f"The log-probabilities of {pixel_name(p)} changed by {size:.3g} when that pixel itself changed: "
            f"its logit may use {digits_allowed(p)}, never pixel {p}. The output mask needs a strict "
            "inequality (output d sees hidden units of degree m < d), and a direct input-to-output "
            "connection must be strictly lower-triangular.")


def scored_leaks_reason(leaks: list[tuple[int, int, int, str, float]]) -> str:
    """Why the held-out NLL is not counted when the scored images' own logits changed when the grader asked
    them again with pixel d flipped (scored_rows_leaks): at pixel d itself, the pixel was seen; at an earlier
    pixel, the answer depends on more than the earlier pixels — later pixels, other images of the batch or
    earlier calls — which two calls cannot tell apart, so the words name all three."""
    head = (f"on the scored images themselves your logits are not autoregressive, so these numbers are not "
            f"likelihoods: the grader asked {N_DIGITS_VERIFIED} of them again in a fresh process, one pixel "
            "flipped at a time")
    earlier = [leak for leak in leaks if leak[0] > 0]
    if earlier:
        _, p, d, what, size = max(earlier, key=lambda leak: leak[4])
        return (f"{head}, and the log-probabilities of {pixel_name(p)} changed by {size:.3g} when {what} changed, "
                f"though the logit of pixel {p} may use {digits_allowed(p)}. It must depend on those pixels of the "
                "same image only: not on later pixels (check your masks), not on the other images in the batch, "
                "and not on earlier calls")
    _, p, d, what, size = max(leaks, key=lambda leak: leak[4])
    return (f"{head}, and the log-probabilities of {pixel_name(p)} changed by {size:.3g} when that pixel itself "
            f"changed: its logit may use {digits_allowed(p)}, never pixel {p} (the output mask needs a strict "
            "inequality)")


def draw_digits(g, n: int, seed: int) -> torch.Tensor:
    s = g.call("digits_model.sample", n, seed=seed, audience="student")
    if s.shape[0] != n:
        raise ResultInvalid(f"digits_model.sample({n}, seed=...) returned {s.shape[0]} images instead of {n}.")
    return s


def digits_samples_hint(samples: torch.Tensor, probs: torch.Tensor) -> str:
    """Feedback for the pixel whose frequency in the samples [n, 64] is farthest from the probability the
    model's own logits give it (probs, sigmoid of the logits on those samples); values other than 0 and 1
    are named first, and then averaged, not counted as 1s."""
    d = int((samples.mean(0) - probs.mean(0)).abs().argmax())
    binary = bool(((samples == 0) | (samples == 1)).all())
    frequency = (f"{float(samples[:, d].mean()):.3f} of your samples are 1" if binary
                 else f"your samples average {float(samples[:, d].mean()):.3f}")
    hint = (f"At {pixel_name(d)} {frequency}, but your own logits give it "
            f"probability {float(probs[:, d].mean()):.3f} on average, given each sample's earlier pixels. Draw the "
            "pixels in raster order, pixel 0 first, each from Bernoulli(sigmoid(logit_d)) computed on the image "
            "with the pixels drawn so far filled in (torch.bernoulli with your generator); do not threshold at 0.5.")
    if not binary:
        hint = "Some sampled values are not 0 or 1: return Bernoulli draws, not probabilities. " + hint
    return hint


def check_digits_samples(g, later: LaterLogits, train: torch.Tensor) -> None:
    """Their own conditionals at their own samples (asked in a later process): x_d should be 1 with
    probability sigmoid(logit_d(x_<d))."""
    (many,), (logits,) = later.groups["digits"], later.get("digits")
    binary = bool(((many == 0) | (many == 1)).all())
    probs = torch.sigmoid(logits)
    gap = (many.mean(0) - probs.mean(0)).abs()
    data_gap = (many.mean(0) - train.mean(0)).abs()
    note = (f"largest gap between the pixel frequencies of the samples and of the training images "
            f"{float(data_gap.max()):.3f} (mean {float(data_gap.mean()):.3f})")
    if not binary:  # probabilities returned as "samples" match their own conditionals' averages exactly
        g.record("digits_samples", False, digits_samples_hint(many, probs), value=float(gap.max()), note=note)
    else:
        g.metric("digits_samples", float(gap.max()), hint=digits_samples_hint(many, probs), note=note)


def draw_digit_samples(g, rng: np.random.Generator, train: torch.Tensor, source: DigitMixture,
                       later: LaterLogits) -> torch.Tensor:
    """The 2000 samples whose logits are asked later (check_digits_samples), and digits_sample_seed."""
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=3)]
    many = draw_digits(g, N_DIGIT_SAMPLES, seeds[0])
    later.add("digits", many)
    binary = bool(((many == 0) | (many == 1)).all())

    first = draw_digits(g, 256, seeds[1])
    with g.round():  # as in check_seed: reproducible across processes, not by memory
        again = draw_digits(g, 256, seeds[1])
    other = draw_digits(g, 256, seeds[2])
    # Simple digits of a sharp source recur: a fresh image often equals some training image (measured 15-28 %
    # of fresh images against 2000 training images). So the copies of training images are compared with the
    # copies of an as large set of fresh images from the same source: a model of the source equals either as
    # often; one that replays its training images equals the training set far more often.
    copied = exact_copy_fraction(many.numpy(), train.numpy()) if binary else 0.0
    by_chance = exact_copy_fraction(many.numpy(), source.sample(rng, len(train)).numpy()) if binary else 0.0
    problems = []
    if not binary:
        problems.append("some values are not 0 or 1 (draw each pixel with torch.bernoulli)")
    if not torch.equal(first, again):
        problems.append("two calls with the same seed gave different images (seed a torch.Generator with the "
                        "seed argument and pass it to torch.bernoulli)")
    if float((first != other).any(dim=-1).double().mean()) < 0.5:
        problems.append("another seed gave mostly the same images (use the seed argument, and draw rather than "
                        "threshold)")
    if copied - by_chance > DIGITS_EXTRA_COPIES:
        problems.append(f"{copied:.0%} of the samples equal a training image, but only {by_chance:.0%} equal one of "
                        f"as many fresh images of the same source (at most {DIGITS_EXTRA_COPIES:.0%} more allowed): "
                        "sample from the model, never return stored data")
    g.record("digits_sample_seed", not problems,
             "Binary samples; the same seed reproduces them and another seed changes them; "
             f"{copied:.1%} equal a training image ({by_chance:.1%} equal one of as many fresh images)."
             if not problems else "Problems: " + "; ".join(problems) + ".",
             value=copied - by_chance, note=f"exact copies of training images {copied:.4f}, of fresh images "
                                            f"{by_chance:.4f}")
    return many


@dataclass
class DigitScores:
    """-log p(x) per image (nats) on the held-out images: the model's, the source's exact one, the grader's
    independent-pixel baseline; and the model's on some of its training images (the staff note)."""

    model: torch.Tensor
    source: torch.Tensor
    independent: torch.Tensor
    train_excess: float
    linear: float
    inside: float            # the share of the model's outputs in [0, 1] (probabilities instead of logits)
    scored_leaks: list[tuple[int, int, int, str, float]] = field(default_factory=list)  # find_leaks on scored rows

    @property
    def excess(self) -> float:
        return float((self.model - self.source).mean())

    @property
    def excess_se(self) -> float:
        return float((self.model - self.source).std() / math.sqrt(len(self.model)))

    @property
    def dependence_captured(self) -> float:
        """The share of the independent-pixel baseline's excess over the source that the model removes: 0 for
        independent pixels, 1 for the source itself. Measured against this run's source rather than in nats,
        because how much the pixels of a source depend on each other varies from run to run (the baseline's
        excess 7.6-15.3 nats over seeds 1-12: the nats' spread was the source's, not the model's)."""
        baseline = float((self.independent - self.source).mean())
        return float((self.independent - self.model).mean()) / baseline


def score_digits(g, rng: np.random.Generator, train: torch.Tensor, test: torch.Tensor,
                 source: DigitMixture) -> DigitScores:
    """The held-out images (scored) in one shuffled batch with training images (the staff gap note) and fresh
    decoys: no row's position or company tells what it is for."""
    batch = Interleaved(rng, test, train[:N_DIGITS_GAP], source.sample(rng, N_DIGITS_DECOYS))
    with g.round() as r:
        answer = r.call("digits_model.logits", batch.rows)
    held_out, seen, _ = batch.split(answer.value)
    leaks = scored_rows_leaks(g, rng, test, held_out, source)
    train_excess = float((bernoulli_nll(seen, train[:N_DIGITS_GAP]) + source.log_prob(train[:N_DIGITS_GAP])).mean())
    linear = float((linear_autoregressive_nll(train, test) + source.log_prob(test)).mean())
    return DigitScores(bernoulli_nll(held_out, test), -source.log_prob(test), independent_nll(train, test),
                       train_excess, linear, float(((held_out >= 0) & (held_out <= 1)).double().mean()), leaks)


def scored_rows_leaks(g, rng: np.random.Generator, test: torch.Tensor, held_out: torch.Tensor,
                      source: DigitMixture) -> list[tuple[int, int, int, str, float]]:
    """Causality shown on the scored images themselves (issue 19, item 2): a secret subset of them, each with
    one pixel d flipped at a time, is asked again in a later round (a fresh process, among fresh decoys); the
    logits at pixels 0..d must be those the scored call gave. The scored call cannot know which of its rows
    will be re-asked, and the later process cannot know what the scored call answered, so logits that peek
    at a pixel on the scored rows show here whatever the probe rows of the causality check saw."""
    picks = secret_subset(rng, len(test), N_DIGITS_VERIFIED)
    rows, meta = [], []
    for k, i in enumerate(picks.tolist()):
        for d in sorted(rng.choice(PIXELS, FLIPS_PER_VERIFIED, replace=False).tolist()):
            row = test[i].clone()
            row[d] = 1 - row[d]
            rows.append(row[None])
            meta.append((k, d, pixel_name(d)))
    batch = Interleaved(rng, torch.cat(rows), source.sample(rng, N_DIGITS_DECOYS))
    with g.round() as r:
        answer = r.call("digits_model.logits", batch.rows)
    flipped, _ = batch.split(answer.value)
    logits = torch.cat([held_out[picks], flipped])
    return find_leaks(torch.stack([logsigmoid(logits), logsigmoid(-logits)], dim=-1), meta, len(picks))[1]


def digits_nll_hint(summary: str, inside: float) -> str:
    """The advice for a held-out NLL too far above the source's; first, when nearly every output lies in
    [0, 1] (`inside`, the share measured), that the outputs look like probabilities rather than logits."""
    hint = summary + (" Train longer or with a learning-rate schedule, use more hidden units, and check that the "
                      "loss is binary_cross_entropy_with_logits summed over the 64 pixels.")
    if inside > 0.99:
        hint = (f"{inside:.0%} of your outputs lie in [0, 1]: digits_model.logits seems to return probabilities "
                "(a sigmoid at the end). Return the logits; the grader applies the sigmoid itself. ") + hint
    return hint


def check_digits_nll(g, scores: DigitScores, causal_ok: bool) -> None:
    excess, se = scores.excess, scores.excess_se
    nll, source_nll = float(scores.model.mean()), float(scores.source.mean())
    independent = float(scores.independent.mean())
    note = (f"held-out nll {nll:.3f}, the source's {source_nll:.3f}, excess {excess:.3f} (se {se:.3f}); the "
            f"grader's baselines' excess: independent pixels {independent - source_nll:.3f}, linear autoregressive "
            f"{scores.linear:.3f}; excess on {N_DIGITS_GAP} training images {scores.train_excess:.3f}, generalisation "
            f"gap {excess - scores.train_excess:.3f} nats (the reference: about 1)")
    summary = (f"Your held-out NLL is {nll:.3f} nats per image; the source that drew these images scores "
               f"{source_nll:.3f} on them (its exact NLL), so yours is {abs(excess):.3f} {'above' if excess >= 0 else 'below'} "
               "it. Independent pixels "
               f"fitted by the grader on your training images score {independent:.3f}.")
    reason = ""
    if not causal_ok:
        reason = ("your digits model is not autoregressive (see the causality check), so these numbers are not "
                  "likelihoods")
    elif scores.scored_leaks:
        reason = scored_leaks_reason(scores.scored_leaks)
    elif excess < -DIGITS_FLOOR_SDS * se:
        reason = (f"your NLL is {-excess:.3f} nats per image BELOW the exact NLL of the source that drew these "
                  f"images ({-excess / se:.1f} standard errors). No model can do better than the source on average "
                  "on images it has never seen, so your logits are not the conditionals of one distribution: does "
                  "the logit of a pixel depend on other images in the batch, or on what the model saw before?")
    if reason:
        g.record("digits_nll", False, f"Not counted: {reason}. {summary}", value=excess, note=note)
        g.record("digits_beats_independent", False, f"Not counted: {reason}.", value=scores.dependence_captured,
                 note=note)
        return
    hint = digits_nll_hint(summary, scores.inside)
    g.metric("digits_nll", excess, hint=hint, note=note)
    g.metric("digits_beats_independent", scores.dependence_captured, hint=hint,
             detail=f"Independent pixels score {independent - source_nll:.3f} nats per image above the source, your "
                    f"model {excess:.3f}: it removes {scores.dependence_captured:.0%} of that excess.", note=note)


def draw_digits_feedback(fig: Figure, train: torch.Tensor, samples: torch.Tensor) -> None:
    ax = fig.add_axes([0.01, 0.03, 0.6, 0.85])
    show_mosaic(ax, samples[:40], cols=10, title="40 of your digits_model.sample")
    for k, (values, title) in enumerate(((train.mean(0), "fraction of 1s:\ntraining images"),
                                         (samples.mean(0), "fraction of 1s:\nyour samples"))):
        ax = fig.add_axes([0.64 + k * 0.18, 0.1, 0.16, 0.68])
        ax.imshow(values.reshape(8, 8).numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")


def grade(g) -> None:
    # Independent streams from the secret seed: the training data the student receives reveals nothing
    # about the test data, the probes or the digit source.
    train_rng, test_rng, probe_rng, source_rng, digits_rng, kv_rng = (
        np.random.default_rng(int(s)) for s in g.rng.integers(2**62, size=6))
    train = make_sequences(train_rng, N_TRAIN)
    test = make_sequences(test_rng, N_TEST)
    source = digit_source(source_rng)
    digits_train, digits_test = source.sample(source_rng, N_DIGITS_TRAIN), source.sample(source_rng, N_DIGITS_TEST)
    digits_budget = DIGITS_BUDGET_FRACTION * g.train_seconds

    # Both trainings first, in one training sandbox: what they print is the student's to see.
    g.progress("training your transformer")
    g.train("fit", train, check="fit_budget", probe=("model.logits", (train[:4],), {}))
    # g.train flags a fit that returns at once: the copy source's exact conditionals are a formula in the
    # handout's data.py, and logits written from it pass the transformer's checks untrained (issue 19, item 5)
    g.progress("training your digits model")
    g.train("fit_digits", digits_train, check="digits_fit_budget", budget=digits_budget,
            probe=("digits_model.logits", (digits_train[:8],), {}))

    # Queries without hidden inputs first, as the student's audience: what they print and the
    # exceptions they raise are shown to them. The held-out data come after them, as staff.
    causal_ok, samples = False, None
    g.progress("checking causality")
    with g.section("causal"):
        causal_ok = check_causality(g, probe_rng)
    g.progress("auditing your sampler")
    tokens_later = LaterLogits("model.logits", TEST_CHUNK)
    with g.section("copy_rate", "samples_novel", "temperature"):
        samples = check_sampling_statistics(g, probe_rng, train)
        draw_tempered(g, probe_rng, tokens_later)
    with g.section("greedy"):
        draw_greedy(g, probe_rng, tokens_later)
    with g.section("top_k"):
        draw_top_k(g, probe_rng, tokens_later)
    with g.section("seed"):
        check_seed(g, probe_rng)

    digits_causal_ok, digit_samples = False, None
    digits_later = LaterLogits("digits_model.logits", N_DIGIT_SAMPLES + N_DIGITS_DECOYS)
    g.progress("checking your digits model")
    with g.section("digits_causal"):
        digits_causal_ok = check_digits_causality(g, digits_rng, digits_train)
    with g.section("digits_samples", "digits_sample_seed"):
        digit_samples = draw_digit_samples(g, digits_rng, digits_train, source, digits_later)

    g.progress("auditing your sampler against your logits")
    with g.round() as r:  # a fresh process, which never saw the sample calls
        tokens_later.ask(r, probe_rng, make_sequences(probe_rng, N_SAMPLE_DECOYS))
        digits_later.ask(r, digits_rng, source.sample(digits_rng, N_DIGITS_DECOYS))
    judges = {"temperature": lambda: check_temperature(g, tokens_later),
              "greedy": lambda: check_greedy(g, tokens_later), "top_k": lambda: check_top_k(g, tokens_later),
              "digits_samples": lambda: check_digits_samples(g, digits_later, digits_train)}
    for name, judge in judges.items():
        if name not in g.outcomes:  # else its samples could not be drawn, and the sampling section said why
            with g.section(name):
                judge()

    expected = None
    g.progress("computing your test likelihood")
    with g.section("nll", "nll_tight"):
        expected = check_nll(g, test, causal_ok)
    g.progress("computing your held-out likelihood of digits")
    with g.section("digits_nll", "digits_beats_independent"):
        check_digits_nll(g, score_digits(g, digits_rng, digits_train, digits_test, source), digits_causal_ok)

    # The optional A tier last: a slow or crashing cache must not cost the E and C checks.
    g.progress("timing your KV cache")
    kv = None
    with g.section("kv_cache", "kv_speed"):
        kv = kv_first_round(g, kv_rng)
        kv_second_round(g, kv_rng, kv)
    if kv is not None and kv.full:
        with g.section("kv_cache"):
            check_kv_cache(g, kv)
        with g.section("kv_speed"):
            check_kv_speed(g, kv)

    if expected is not None or samples is not None:
        g.figure("nll-and-samples", "Left: the grader's test NLL per position against the entropy floor. Right: 16 of "
                 "your samples at temperature 1 (one colour per token).",
                 lambda fig: draw_feedback(fig, expected, samples), size=(9, 3), dpi=90)
    if digit_samples is not None:
        g.figure("digits-samples", "Left: your digits model's samples (black = 1). Right: how often each pixel is 1 "
                 "in the training images and in 2000 of your samples.",
                 lambda fig: draw_digits_feedback(fig, digits_train, digit_samples), size=(10, 3), layout=None)
