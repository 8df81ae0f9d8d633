"""Trusted checks for the autoregressive part. Runs in the grader, never in the sandbox.

Data: the copy source. V = 16 tokens, T = 64 positions; x_0..x_7 are uniform; for t >= 8,
x_t = x_{t-8} with probability 0.8, otherwise uniform (which may again give x_{t-8}). So

    p(x_t = x_{t-8} | past) = 0.8 + 0.2/16 = 0.8125 and 0.2/16 = 0.0125 for each other token;
    H_copy = -0.8125 ln 0.8125 - 15 * 0.0125 ln 0.0125 = 0.99034 nats for t >= 8, ln 16 = 2.77259 for t < 8;
    the entropy rate per token, averaged over all 64 positions (what the NLL is compared with):
    (8 ln 16 + 56 H_copy) / 64 = 1.21312 nats/token.

The student returns logits; the grader normalises them (log-softmax), checks causality by perturbing
future tokens, computes the NLL, and audits the sampler against the model's own logits.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from grader.checking import ResultInvalid

V, T, LAG, P_COPY = 16, 64, 8, 0.8
Q_OTHER = (1 - P_COPY) / V                     # 0.0125
P_SAME = P_COPY + Q_OTHER                      # 0.8125
H_COPY = -P_SAME * math.log(P_SAME) - (V - 1) * Q_OTHER * math.log(Q_OTHER)
ENTROPY = (LAG * math.log(V) + (T - LAG) * H_COPY) / T   # 1.21312 nats/token

N_TRAIN, N_TEST, TEST_CHUNK = 10_000, 2_000, 500
N_SAMPLE = 256                                  # samples for the copy-rate and temperature checks
TOL = 1e-4                                      # log-probability tolerance (float32 rounding)
PROBE_POSITIONS = (0, 1, 5, 7, 8, 9, 15, 16, 31, 40, 56, 62, 63)
TOP_KS = (1, 4)
HOT_TEMPERATURE = 2.0

ALL_AFTER_FIT = ("causal", "kv_cache", "copy_rate", "temperature", "samples_novel", "greedy", "top_k",
                 "seed", "nll", "nll_tight")


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


def check_causality(g, rng: np.random.Generator) -> bool:
    bases = make_sequences(rng, 4)
    rows, meta = causality_probe(rng, bases)
    lp = log_probs(g.call("model.logits", rows, audience="student"))
    worst, leaks = 0.0, []
    for r, (b, j, what) in enumerate(meta, start=bases.shape[0]):
        change = (lp[r, : j + 1] - lp[b, : j + 1]).abs().amax(dim=-1)      # [j+1]: positions 0..j
        worst = max(worst, float(change.max()))
        for p in torch.nonzero(change > TOL).flatten().tolist():
            leaks.append((j - p, p, j, what, float(change[p])))
    if not leaks:
        return g.metric("causal", worst)
    future = [leak for leak in leaks if leak[0] > 0]
    if future:
        _, p, j, what, d = max(future)
        hint = (f"The log-probabilities at position {p} changed by {d:.3g} when {what} changed: your model "
                f"looks into the future. Position {p} may only use {allowed(p)}: mask attention to later "
                "positions (a lower-triangular mask on the attention scores, applied before the softmax).")
    else:
        _, p, j, what, d = leaks[0]
        hint = (f"The log-probabilities at position {p} changed by {d:.3g} when the token at position {p} "
                f"itself changed: logits[:, {p}] must predict token {p} from {allowed(p)}. Shift the "
                "inputs right by one (BOS, x_0, ..., x_62) so the model never sees the token it predicts.")
    g.metric("causal", worst, hint=hint, note=f"{len(leaks)} leaking (position, row) pairs")
    return False


def check_kv_cache(g, rng: np.random.Generator) -> None:
    tokens = make_sequences(rng, 16)
    before = dict(g.timings)
    full = log_probs(g.call("model.logits", tokens))
    cached = log_probs(g.call("model.logits_cached", tokens))
    spent = {k: g.timings[k] - before.get(k, 0.0) for k in ("model.logits", "model.logits_cached")}
    diff = (full - cached).abs().amax(dim=(0, 2))                          # per position
    t = int(torch.nonzero(diff > TOL).flatten()[0]) if bool((diff > TOL).any()) else 0
    ratio = spent["model.logits_cached"] / max(spent["model.logits"], 1e-6)
    g.metric("kv_cache", float(diff.max()),
             hint=f"The first large difference is at position {t}. Check the positions you add for new tokens "
                  "(start offset), that cached keys and values are appended in order, and that a new query "
                  "sees every cached key (no mask is needed within the cache).",
             note=f"logits_cached took {ratio:.1f}x the time of one full pass (16 sequences)")


def check_sampling_statistics(g, rng: np.random.Generator, train: torch.Tensor) -> torch.Tensor:
    samples = get_samples(g, N_SAMPLE, temperature=1.0, top_k=0, seed=int(rng.integers(2**31 - 1)))
    rate = float(copy_indicator(samples).mean())
    g.metric("copy_rate", abs(rate - P_SAME),
             hint=f"Your samples copy the token 8 positions back at rate {rate:.3f}; the source does so at 0.8125. "
                  "Check that sample() feeds each new token back in, uses BOS at the start, and draws from "
                  "softmax(logits) of the last position.", note=f"copy rate {rate:.4f}")

    seen = {row.tobytes() for row in train.numpy().astype(np.int8)}
    copied = float(np.mean([row.tobytes() in seen for row in samples.numpy().astype(np.int8)]))
    g.metric("samples_novel", copied,
             hint="Your samples repeat training sequences: sample from your model's distribution, "
                  "never return stored data.")

    hot = get_samples(g, N_SAMPLE, temperature=HOT_TEMPERATURE, top_k=0, seed=int(rng.integers(2**31 - 1)))
    lp = torch.log_softmax(g.call("model.logits", hot, audience="student") / HOT_TEMPERATURE, dim=-1)
    predicted = float(lp[:, LAG:].gather(-1, hot[:, :-LAG, None]).exp().mean())
    measured = float(copy_indicator(hot).mean())
    g.metric("temperature", abs(measured - predicted),
             hint=f"At temperature {HOT_TEMPERATURE:g} your samples copy at rate {measured:.3f}, while "
                  f"softmax(logits / {HOT_TEMPERATURE:g}) of your own model predicts {predicted:.3f}. "
                  "Divide the logits by the temperature before the softmax.",
             note=f"measured {measured:.4f}, predicted {predicted:.4f}")
    return samples


def check_greedy(g, rng: np.random.Generator) -> None:
    s = get_samples(g, 8, temperature=0.0, top_k=0, seed=int(rng.integers(2**31 - 1)))
    lp = log_probs(g.call("model.logits", s, audience="student"))
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


def check_top_k(g, rng: np.random.Generator) -> None:
    outside, total, examples = 0, 0, []
    for k in TOP_KS:
        s = get_samples(g, 64, temperature=1.0, top_k=k, seed=int(rng.integers(2**31 - 1)))
        lp = log_probs(g.call("model.logits", s, audience="student"))
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
    seed_a, seed_b = (int(x) for x in rng.integers(2**31 - 1, size=2))
    a = get_samples(g, 16, temperature=1.0, top_k=0, seed=seed_a)
    again = get_samples(g, 16, temperature=1.0, top_k=0, seed=seed_a)
    b = get_samples(g, 16, temperature=1.0, top_k=0, seed=seed_b)
    same = bool(torch.equal(a, again))
    differ = float((a != b).any(dim=-1).double().mean())
    if not same:
        g.record("seed", False, "Two calls with the same seed gave different samples: create a torch.Generator "
                 "seeded with `seed` inside sample() and pass it to torch.multinomial.")
    elif differ < 0.5:
        g.record("seed", False, f"Two different seeds gave the same samples in {1 - differ:.0%} of the rows: "
                 "use the seed argument, and sample rather than take the argmax at temperature 1.", value=differ)
    else:
        g.record("seed", True, "The same seed reproduces the samples; another seed changes them.", value=differ)


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


def feedback_figure(expected: torch.Tensor | None, samples: torch.Tensor | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3), dpi=90)
    if expected is not None:
        floor = [math.log(V)] * LAG + [H_COPY] * (T - LAG)
        axes[0].plot(expected.mean(0).numpy(), label="your model")
        axes[0].step(range(T), floor, where="mid", color="k", ls="--", lw=1, label="entropy (floor)")
        axes[0].set(xlabel="position t", ylabel="test NLL (nats)", title="NLL per position")
        axes[0].legend(fontsize=8)
    if samples is not None:
        axes[1].imshow(samples[:16].numpy(), cmap="tab20", vmin=0, vmax=19, aspect="auto", interpolation="nearest")
        axes[1].set(xlabel="position t", ylabel="sample", title="16 samples (temperature 1)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def grade(g) -> None:
    # Independent streams from the secret seed: the training data the student receives reveals nothing
    # about the test data or the probes.
    train_rng, test_rng, probe_rng = (np.random.default_rng(int(s)) for s in g.rng.integers(2**62, size=3))
    train = make_sequences(train_rng, N_TRAIN)
    test = make_sequences(test_rng, N_TEST)
    budget = g.train_seconds

    fitted = False
    with g.checks("fit_budget"):
        g.progress("training your model")
        g.call("fit", train, seed=g.torch_seed(), max_seconds=budget, audience="student", timeout=budget * 1.5 + 10)
        fitted = True
        g.metric("fit_budget", g.timings["fit"], threshold=budget + 2.0,
                 hint="Stop training when max_seconds is used up (check time.monotonic() in your loop).")
    if not fitted:
        for name in ALL_AFTER_FIT:
            g.record(name, False, "Not checked: fit() did not return a model (see the training check).")
        return

    # Queries without hidden inputs first, as the student's audience: what they print and the
    # exceptions they raise are shown to them. The test set comes after them, as staff.
    g.progress("checking causality")
    causal_ok = False
    with g.checks("causal"):
        causal_ok = check_causality(g, probe_rng)
    g.progress("auditing your sampler")
    samples = None
    with g.checks("copy_rate", "samples_novel", "temperature"):
        samples = check_sampling_statistics(g, probe_rng, train)
    with g.checks("greedy"):
        check_greedy(g, probe_rng)
    with g.checks("top_k"):
        check_top_k(g, probe_rng)
    with g.checks("seed"):
        check_seed(g, probe_rng)

    g.progress("computing your test likelihood")
    expected = None
    with g.checks("nll", "nll_tight"):
        expected = check_nll(g, test, causal_ok)

    # The optional A tier last: a slow or crashing cache must not cost the E and C checks.
    with g.checks("kv_cache"):
        check_kv_cache(g, probe_rng)

    if expected is not None or samples is not None:
        try:
            png = feedback_figure(expected, samples)
        except Exception:  # noqa: BLE001 - a figure is a courtesy; never let it stop grading
            return
        g.attach_image("nll-and-samples", png, "Left: the grader's test NLL per position against the entropy "
                       "floor. Right: 16 of your samples at temperature 1 (one colour per token).")
