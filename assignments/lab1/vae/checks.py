"""Trusted checks for the VAE part. Runs in the grader, never in the sandbox.

Data the student cannot hold. Every image is drawn afresh for the run from a secret source of binary
8x8 digit images whose density the grader knows exactly (grader/checklib/digit_mixtures.py: a staff
decoder, hidden in this part's hidden/ folder, and a secret region of its latent space per run). The
student's fit() gets N_TRAIN images; the held-out images, the decoys and the copy test's fresh images are
further draws that exist nowhere before the run. A held-out split of the public digits was dropped: the
public set minus the training rows *is* the held-out set, and a model of those 400 images scores about
log 400 = 6 nats.

What is scored, and how its validity is shown on the scored rows (docs/architecture.md, issue 19):
- the student returns primitives only: (mu, log_var) from the encoder, Bernoulli logits from the decoder.
  The grader draws every eps, forms z, and computes log w = log p(x|z) + log p(z) - log q(z|x) in float64:
  the ELBO and the importance-weighted bounds IWAE-K (Burda et al. 2016). These are lower bounds on the
  log-likelihood of the model p(x) = E_p(z) p(x|z) for ANY encoder, as long as decode is one fixed function
  of z. So the validity that matters is the decoder's: its rows are sent in a later round than the encoder
  that produced them (a fresh process: decode cannot remember which image a z came from), shuffled with
  the prior draws of the sampler audit, and a secret subset of the scored rows comes back in a third round,
  in another batch with decoys, and must get the same logits (`deterministic`);
- the likelihood is scored as its excess over the source's own exact NLL on the same images: no valid
  model can beat the source on average, so a bound below it by more than the estimator's noise is not a
  bound (`above_floor`), and the likelihood checks count only when the bounds are ordered and above it;
- the sampler is compared with the grader's own draws through the student's decoder (a two-sample test on
  pixel and pixel-pair frequencies) and must not sit nearer its training images than fresh images of the
  source do (`not_copies`: Hamming nearest neighbours, ties counted half).
The module-level kl_normal, reparameterise and bernoulli_nll are checked against analytic values and
torch.distributions on grader-drawn inputs, every row scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checking import Pending, ResultInvalid, format_number
from grader.checklib.batches import Interleaved, secret_subset
from grader.checklib.digit_mixtures import DigitMixture, StaffDecoder
from grader.checklib.digits import bernoulli_nll
from grader.checklib.numerics import as_sent, rel_errors

HIDDEN = Path(__file__).resolve().parent / "hidden"
PIXELS = 64
LN2 = math.log(2.0)
LOG_2PI = math.log(2 * math.pi)

N_TRAIN = 2000                    # images fit() gets
N_TEST = 250                      # held-out images whose bounds are scored (standard error of an excess ~0.11)
N_GAP = 300                       # training images whose bound is computed for the staff note
N_DECOYS = 200                    # fresh images encoded with the scored ones, never scored
CHUNK = 16384                     # rows of z per decode call (a 16384 x 64 float32 result is 4 MB)
K_ELBO, K_IW10, K_IW = 20, 100, 300   # independent draws of z per held-out image for the three estimates
K_GAP = 10                        # draws of z per training image of the staff note
N_SAMPLES = 4000                  # samples (and prior draws) of the sampler audit
N_SEED = 256                      # samples of the seed checks
N_COPY = 1000                     # samples in the copy test
N_REPEAT_Z, N_REPEAT_X = 512, 64  # scored rows sent again in a later round (decode, encode)
N_TWINS = 128                     # scored z rows sent twice in one round; those that share a call tell randomness
                                  # from batch dependence (about 1 in 14 share one: ~9 expected, none in 1e-4 of runs)
DETERMINISM_TOL = 1e-3
FLOOR_SDS = 4.0                   # a bound this many standard errors below the source's NLL is not a bound
PAIR_MIN = 0.02                   # pixel pairs rarer than this (or commoner than 1 - it) are not compared
COPY_REPEATS = 16                 # null draws of the copy share's spread
ELBO_GAP_HINT = 1.5               # -ELBO - -IWAE-300 above this (nats) names the encoder in the ELBO hint

BOUND_CHECKS = ("elbo", "elbo_c", "iwae_c", "iwae_a")
IWAE_NAME = f"IWAE-{K_IW}"


# ---- the grader's own formulas (float64) ----

def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per row, by torch.distributions."""
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


def iwae(lw: torch.Tensor, k: int) -> torch.Tensor:
    """Per-image IWAE-k estimates from [K, B] log-weights: the mean over K/k disjoint groups of
    log (1/k) sum_group w."""
    groups = lw[: (lw.shape[0] // k) * k].reshape(-1, k, lw.shape[1])
    return (torch.logsumexp(groups, dim=1) - math.log(k)).mean(0)


def hamming(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamming distances [len(a), len(b)] between binary images (exact in float64)."""
    a, b = a.double(), b.double()
    return a.sum(1, keepdim=True) + b.sum(1) - 2 * a @ b.T


def closer_share(samples: torch.Tensor, train: torch.Tensor, fresh: torch.Tensor) -> float:
    """The share of samples whose nearest training image is nearer than their nearest fresh image (a tie
    counts half): 1/2 in expectation for samples independent of the training set, which the fresh set
    (as large, from the same source) is exchangeable with. Binary images tie often, hence the half."""
    to_train = hamming(samples, train).amin(1)
    to_fresh = hamming(samples, fresh).amin(1)
    return float((to_train < to_fresh).double().mean() + 0.5 * (to_train == to_fresh).double().mean())


# ---- hints: branches on what was measured ----

def kl_hint(theirs: torch.Tensor, ours: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
            cases: list[str]) -> str:
    gap = rel_errors(theirs, ours)
    if float(gap.max()) <= 1e-4:
        return ""
    bad = [i for i in range(len(cases)) if gap[i] > 1e-4]
    hint = f"For {cases[bad[0]]} your kl_normal returned {float(theirs[bad[0]]):.4f}. " if bad else ""
    as_log_std = ((mu**2 + (2 * log_var).exp()) / 2 - 0.5 - log_var).sum(-1)
    diagnoses = [
        (-ours, "It looks like the sign is flipped: KL is never negative."),
        (2 * ours, "It is twice the right value: the factor 1/2 is missing."),
        (as_log_std, "It treats log_var as log sigma: the variance is exp(log_var), so sigma = exp(log_var / 2)."),
        (ours / mu.shape[1], "It is the mean over the latent dimensions: sum them instead."),
    ]
    hint += next((words + " " for guess, words in diagnoses if float(rel_errors(theirs, guess).max()) < 1e-3), "")
    return hint + ("KL(N(mu, sigma^2) || N(0, 1)) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2) per dimension, summed "
                   "over the latent dimensions.")


def reparameterise_hint(theirs: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> str:
    diagnoses = [
        (mu + log_var.exp() * eps, "Your z uses exp(log_var), the variance, as the scale: sigma = exp(log_var / 2)."),
        (mu + log_var * eps, "Your z uses log_var itself as the standard deviation: sigma = exp(log_var / 2)."),
        (mu + eps, "Your z ignores log_var."),
    ]
    hint = next((words + " " for guess, words in diagnoses if float(rel_errors(theirs, guess).max()) < 1e-3), "")
    return hint + "Return mu + exp(0.5 * log_var) * eps with the eps you are given (do not draw your own)."


def bernoulli_hint(theirs: torch.Tensor, ours: torch.Tensor, zero_rows: slice, large_rows: slice) -> str:
    """Rows `zero_rows` have all logits 0, rows `large_rows` logits of +-20 to 30."""
    gap = rel_errors(theirs, ours)
    if float(rel_errors(theirs, ours / PIXELS).max()) < 1e-3:
        hint = "Your values are the mean over the 64 pixels: sum them (nats per image, not per pixel). "
    elif float(gap[zero_rows].max()) > 1e-4:
        worst = int(gap[zero_rows].argmax()) + zero_rows.start
        hint = (f"With all logits 0 (p = 1/2 for every pixel) the NLL is 64 ln 2 = {64 * LN2:.4f} nats whatever the "
                f"image; yours returned {float(theirs[worst]):.4f}. Treat the input as logits, not probabilities. ")
    elif float(gap[large_rows].max()) > 1e-4:
        hint = ("Your values are right for moderate logits but wrong for large ones (|logit| 20-30): sigmoid rounds "
                "to exactly 0 or 1 in float32 there. Compute it from the logits directly (softplus, or "
                "torch.nn.functional.binary_cross_entropy_with_logits). ")
    else:
        hint = ""
    return hint + "-log p(x | l) = sum over pixels of softplus(l) - x * l."


def determinism_hint(changes: dict[str, float], twins: float) -> str:
    """`changes`: the largest change per returned quantity between two rounds (other batch, other process);
    `twins`: the largest difference between two copies of one z in the same decode call (NaN if no copies
    shared a call)."""
    worst = max(changes, key=changes.get)
    if twins > DETERMINISM_TOL:
        cause = ("two copies of the same z in one call already got different logits: decode draws random "
                 "numbers (dropout left on, or sampling inside decode). Call model.eval() before fit returns, and "
                 "return logits, not samples")
    elif worst == "decode" and math.isnan(twins):
        cause = ("decode gave other logits for the same z in another batch and process: it draws random numbers "
                 "(dropout left on), depends on the rest of the batch (batch normalisation in training mode) or on "
                 "state that changes between calls. Call model.eval() before fit returns")
    elif worst == "decode":
        cause = ("decode gives the same z the same logits within a batch but other logits in another batch or "
                 "process: it depends on the rest of the batch (batch normalisation in training mode: call "
                 "model.eval()) or on state that changes between calls")
    else:
        cause = ("encode returned other (mu, log_var) for the same images: return the parameters of q(z|x), not "
                 "a sample of it, and call model.eval() before fit returns")
    return f"The largest change was in {worst}: {cause}."


def decoder_hint(reconstruction: float, inside: float) -> str:
    """`inside`: the share of the decoder's outputs in [0, 1]."""
    base = (f"A decoder whose logits are all 0 scores 64 ln 2 = {64 * LN2:.2f} nats; one that ignores z and predicts "
            "each pixel's frequency about 23 on these images.")
    if inside > 0.99:
        return (f"{inside:.1%} of your decoder's outputs lie in [0, 1]: it looks like decode returns probabilities "
                "(a sigmoid at the end). Return the logits: the grader applies the sigmoid, and training should use "
                "binary_cross_entropy_with_logits. " + base)
    if abs(reconstruction - 64 * LN2) < 0.05:
        return "Your decoder's logits are (almost) all 0, as if it were never trained. " + base
    return ("Your decoder reconstructs the held-out images poorly: check that it is trained on bernoulli_nll of "
            "decode(z) with z = reparameterise(mu, log_var, eps), and that the KL term is not weighted up. " + base)


def bound_hint(kl: float, reconstruction: float, probabilities: bool = False, elbo_gap: float = 0.0) -> str:
    """Shown with the measured bounds (the check's detail), so it names what they show. `probabilities`: the
    decoder's outputs all lie in [0, 1]; `elbo_gap`: -ELBO minus -IWAE-300, nats per image (honest ELBO-trained
    models: about 0.3-0.7; an encode that returns log sigma where training used it as log sigma: 2.9-3.8)."""
    if probabilities:
        return ("Your decoder returns probabilities (see the decoder check): read as logits, they cannot describe "
                "a sharp image, so every bound is poor. Return logits from decode.")
    if reconstruction > 64 * LN2:
        return (f"The reconstruction term is {format_number(reconstruction)} nats per image, worse than a decoder "
                f"whose logits are all 0 ({64 * LN2:.2f}): at the z the grader draws, z = mu + exp(log_var / 2) * eps, "
                "your decoder was not trained. Does your training draw z the same way (reparameterise), from the "
                "(mu, log_var) that encode returns?")
    if kl < 0.5:
        # A collapse means the KL weighed too much in training; averaging the KL over the latent dimensions
        # weighs it less, so that advice (given here before) pointed the wrong way.
        return ("The KL term is almost 0: your decoder ignores z (posterior collapse), so your model is no better "
                "than independent pixels. Most often the KL weighs too much against the reconstruction in the loss: "
                "sum the reconstruction over the 64 pixels (binary_cross_entropy_with_logits averages over every "
                "pixel unless reduction='none'; then .sum(-1)), and average both terms over the batch alike (do not "
                "sum the KL over the batch). A KL warm-up (scale the KL from 0 to 1 over the first few hundred "
                "steps) also helps.")
    if kl > max(100.0, 5 * reconstruction):
        return (f"The KL term alone is {format_number(kl)} nats per image: training did not keep q(z|x) near the "
                "prior. Check the sign of the KL in your loss (it is added, and never negative) and clamp log_var.")
    if elbo_gap > ELBO_GAP_HINT:
        return (f"Your ELBO is {format_number(elbo_gap)} nats per image looser than your {IWAE_NAME}: the decoder "
                "models the images better than the ELBO shows, so the q(z|x) that encode returns is far from the "
                "posterior. Check that encode returns the very (mu, log_var) your loss used, with log_var the log of "
                "the variance (not log sigma, not sigma): the grader draws z = mu + exp(log_var / 2) * eps. (An "
                "encoder trained on the IWAE objective also loosens the ELBO.)")
    return ("Train longer or with a learning-rate schedule, use a KL warm-up, and check that your loss is "
            "bernoulli_nll + kl_normal per image (summed over pixels and latent dimensions, then averaged over the "
            "batch).")


@dataclass
class SampleAudit:
    """The sampler compared with the grader's own draws through the student's decoder."""

    binary: bool
    largest_z: float                  # the largest |z| of the two-sample tests
    where: str                        # which frequency it was
    theirs: float
    grader: float
    marginal_z: float                 # the largest |z| over the 64 pixels alone
    distinct: int                     # distinct images among the samples
    thresholded_z: float = math.nan   # the largest |z| against thresholded decoder outputs
    probabilities: bool = False       # the decoder's outputs at prior z all lie in [0, 1]


def frequencies(x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Pixel frequencies and pixel-pair co-occurrence frequencies of binary images [n, 64]: [64 + P]."""
    x = x.double()
    return torch.cat([x.mean(0), (x[:, pairs[0]] * x[:, pairs[1]]).mean(0)])


def two_sample_z(a: torch.Tensor, b: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """z-scores of the differences of pixel and pair frequencies between two sets of binary images (pooled
    variance). Frequencies near 0 or 1 (below PAIR_MIN of either end) get z = 0: too few events for a z."""
    fa, fb = frequencies(a, pairs), frequencies(b, pairs)
    pooled = (fa * len(a) + fb * len(b)) / (len(a) + len(b))
    sd = (pooled * (1 - pooled) * (1 / len(a) + 1 / len(b))).sqrt()
    usable = (pooled > PAIR_MIN) & (pooled < 1 - PAIR_MIN)
    return torch.where(usable, (fa - fb) / sd.clamp_min(1e-12), torch.zeros_like(fa))


def audit_samples(theirs: torch.Tensor, probs: torch.Tensor, rng: np.random.Generator) -> SampleAudit:
    """Their samples [n, 64] against Bernoulli draws (the grader's) from their decoder's probabilities [n, 64]
    at prior draws of z."""
    binary = bool(((theirs == 0) | (theirs == 1)).all())
    ours = (torch.from_numpy(rng.random(tuple(probs.shape))) < probs).double()
    pairs = torch.triu_indices(PIXELS, PIXELS, offset=1)
    z = two_sample_z(theirs.round().clamp(0, 1), ours, pairs)
    i = int(z.abs().argmax())
    if i < PIXELS:
        where = f"pixel {i} (row {i // 8}, column {i % 8}) is 1"
    else:
        p, q = int(pairs[0, i - PIXELS]), int(pairs[1, i - PIXELS])
        where = f"pixels {p} and {q} are both 1"
    fa, fb = frequencies(theirs.round().clamp(0, 1), pairs), frequencies(ours, pairs)
    thresholded = two_sample_z(theirs.round().clamp(0, 1), (probs > 0.5).double(), pairs)
    logits = torch.logit(probs)
    return SampleAudit(binary, float(z.abs().max()), where, float(fa[i]), float(fb[i]),
                       float(z[:PIXELS].abs().max()), len({tuple(r) for r in theirs.round().int().tolist()}),
                       float(thresholded.abs().max()), bool(((logits >= 0) & (logits <= 1)).all()))


def samples_hint(audit: SampleAudit, n: int) -> str:
    head = (f"The largest difference: {audit.where} in {audit.theirs:.3f} of your samples but in {audit.grader:.3f} "
            "of the grader's draws through your decoder. ")
    if not audit.binary:
        return head + ("Some sampled values are not 0 or 1: return Bernoulli draws (torch.bernoulli), not "
                       "probabilities.")
    if audit.probabilities:
        return head + ("Every output of your decode lies in [0, 1]: it looks like it returns probabilities. The "
                       "grader draws pixels from Bernoulli(sigmoid(decode(z))), as sample must: return logits from "
                       "decode.")
    if audit.distinct <= n // 10:
        return head + (f"Only {audit.distinct} of your {n} samples differ from each other: draw a fresh z ~ N(0, I) "
                       "for every image and a fresh Bernoulli draw for every pixel.")
    if audit.thresholded_z < audit.largest_z / 3:
        return head + ("Your samples look like your decoder's probabilities thresholded at 0.5: draw each pixel "
                       "from Bernoulli(sigmoid(logit)) instead.")
    if audit.marginal_z <= 4.0:
        return head + ("Each pixel is 1 about as often as it should be, but pixels are not 1 together as often as "
                       "they should be: draw ONE z per image and decode it, so that all 64 pixels of an image share it.")
    return head + ("Draw z from the prior N(0, I) (not from another scale), decode it and draw each pixel from "
                   "Bernoulli(sigmoid(logit)); do not return training images.")


def copy_hint(share: float) -> str:
    """One branch: exact and slightly changed copies score alike (measured: 0.88 and 0.83 on a sharp source,
    where fresh images often tie with copies), so the share cannot tell a replaying sampler from memorisation."""
    return (f"{share:.0%} of your samples lie nearer your training images than fresh images of the same source "
            "(about 50% for a model that learned the source): your samples reproduce training images, changed a "
            "little. Either the model memorises its training set (train for fewer steps or with a smaller network) "
            "or the sampler starts from training images (sample z from the prior N(0, I), not from encodings of "
            "training images).")


def floor_hint(excess: float, se: float) -> str:
    return (f"Your -{IWAE_NAME} is {-excess:.3f} nats per image BELOW the exact NLL of the source that drew these "
            f"images ({-excess / se:.1f} standard errors). No model can do better than the source on average, so "
            "these numbers are not a bound on a model's likelihood: the decoder's logits do not come from one fixed "
            "function of z (does decode depend on the batch, or on what the model saw before?).")


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
    g.metric("kl_normal", float(rel_errors(theirs, ours).max()),
             hint=kl_hint(theirs, ours, mu, log_var, [c[0] for c in cases]))


def check_reparameterise(g, rng: np.random.Generator) -> None:
    mu = as_sent(torch.from_numpy(rng.normal(0, 1.5, size=(256, 6))))
    log_var = as_sent(torch.from_numpy(rng.uniform(-5, 2, size=(256, 6))))
    eps = as_sent(torch.from_numpy(rng.standard_normal((256, 6))))
    theirs = g.call("reparameterise", mu, log_var, eps, audience="student")
    ours = mu + (0.5 * log_var).exp() * eps
    g.metric("reparameterise", float(rel_errors(theirs, ours).max()),
             hint=reparameterise_hint(theirs, mu, log_var, eps))


def check_bernoulli_nll(g, rng: np.random.Generator) -> None:
    x = as_sent(torch.from_numpy((rng.random((256, PIXELS)) < 0.35).astype(np.float64)))
    logits = torch.from_numpy(rng.normal(0, 4, size=(256, PIXELS)))
    logits[:32] = 0.0                                            # the zero decoder: 64 ln 2 for any x
    logits[32:64] = torch.from_numpy(rng.choice([-30.0, -20.0, 20.0, 30.0], size=(32, PIXELS)))
    logits = as_sent(logits)
    theirs = g.call("bernoulli_nll", logits, x, audience="student")
    ours = bernoulli_nll(logits, x)
    g.metric("bernoulli_nll", float(rel_errors(theirs, ours).max()),
             hint=bernoulli_hint(theirs, ours, slice(0, 32), slice(32, 64)))


# ---- the queries of the trained model, in three rounds ----

DECODED = ("elbo", "iw10", "iwk", "prior", "recon", "gap", "twin_a", "twin_b")  # the groups of decoded rows
SCORED = ("elbo", "iw10", "iwk")


@dataclass
class Queries:
    """What the rounds ask and what the checks read back (Pending results, read inside the sections)."""

    train: torch.Tensor
    test: torch.Tensor
    encoded: Interleaved | None = None
    encode: Pending | None = None
    sample_seeds: list[int] = field(default_factory=list)
    samples: dict[str, Pending] = field(default_factory=dict)
    draws: dict[str, torch.Tensor] = field(default_factory=dict)
    decoded: Interleaved | None = None
    decode: list[Pending] = field(default_factory=list)
    again: Interleaved | None = None
    encode_again: Pending | None = None
    repeated_x: torch.Tensor | None = None
    repeated_z: torch.Tensor | None = None
    decoded_again: Interleaved | None = None
    decode_again: Pending | None = None

    def scored_rows(self) -> torch.Tensor:
        return torch.cat([self.draws[k].reshape(-1, self.draws[k].shape[-1]) for k in SCORED])

    def twins_in_one_call(self) -> torch.Tensor:
        """For each twin pair, whether both copies went to the same decode call (bool [N_TWINS])."""
        position = torch.argsort(self.decoded.order)             # row -> position in the batch
        starts = np.cumsum([0, *self.decoded.sizes])
        twin_a, twin_b = (DECODED.index(k) for k in ("twin_a", "twin_b"))
        rows = torch.arange(self.decoded.sizes[twin_a])
        call_a = position[starts[twin_a] + rows] // CHUNK
        call_b = position[starts[twin_b] + rows] // CHUNK
        return call_a == call_b

    def logits(self) -> dict[str, torch.Tensor]:
        """The decoder's logits for each group of the second round, rows in the group's own order."""
        answer = torch.cat([pending.value for pending in self.decode])
        return dict(zip(DECODED, self.decoded.split(answer), strict=True))


def first_round(g, q: Queries, rng: np.random.Generator, decoys: torch.Tensor) -> None:
    """Encode the held-out images (scored) with training images (the staff gap note) and fresh decoys in one
    shuffled batch; the sampler's draws for the audit and the seed checks."""
    q.sample_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=3)]
    with g.round() as r:
        q.encoded = Interleaved(rng, as_sent(q.test), as_sent(q.train[:N_GAP]), as_sent(decoys))
        q.encode = r.call("model.encode", q.encoded.rows)
        q.samples["many"] = r.call("model.sample", N_SAMPLES, seed=q.sample_seeds[0])
        q.samples["first"] = r.call("model.sample", N_SEED, seed=q.sample_seeds[1])
        q.samples["other"] = r.call("model.sample", N_SEED, seed=q.sample_seeds[2])


def posterior_draws(mu: torch.Tensor, log_var: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k draws z ~ q(z|x) per row, rounded as the decoder will see them: [k, B, D]."""
    eps = torch.from_numpy(rng.standard_normal((k, *mu.shape)))
    return as_sent(mu + (0.5 * log_var).exp() * eps)


def second_round(g, q: Queries, rng: np.random.Generator, posterior: dict[str, torch.Tensor]) -> None:
    """Decode, in one shuffled set of rows: the posterior draws of the three bounds (scored), the prior draws
    of the sampler audit, the reconstructions of the figure, the training images' draws of the staff note and
    a few twins (a scored row twice); encode a secret subset of the held-out images again in another batch;
    repeat the sampler's first seed."""
    mu, log_var = posterior["mu"], posterior["log_var"]
    d = mu.shape[1]
    q.draws = {"elbo": posterior_draws(mu, log_var, K_ELBO, rng), "iw10": posterior_draws(mu, log_var, K_IW10, rng),
               "iwk": posterior_draws(mu, log_var, K_IW, rng),
               "prior": as_sent(torch.from_numpy(rng.standard_normal((N_SAMPLES, d)))),
               "recon": as_sent(torch.cat([mu, posterior["mu_train"][:10]])),
               "gap": posterior_draws(posterior["mu_train"], posterior["log_var_train"], K_GAP, rng)}
    scored = q.scored_rows()
    q.draws["twin_a"] = q.draws["twin_b"] = scored[secret_subset(rng, len(scored), N_TWINS)]
    q.decoded = Interleaved(rng, *(q.draws[k].reshape(-1, d) for k in DECODED))
    q.repeated_x = secret_subset(rng, len(q.test), N_REPEAT_X)
    with g.round() as r:
        q.decode = [r.call("model.decode", rows) for rows in q.decoded.rows.split(CHUNK)]
        q.again = Interleaved(rng, as_sent(q.test[q.repeated_x]), as_sent(q.train[N_GAP : N_GAP + N_REPEAT_X]))
        q.encode_again = r.call("model.encode", q.again.rows)
        q.samples["again"] = r.call("model.sample", N_SEED, seed=q.sample_seeds[1])


def third_round(g, q: Queries, rng: np.random.Generator) -> None:
    """A secret subset of the scored decoder rows again, in another batch with fresh prior decoys."""
    scored = q.scored_rows()
    q.repeated_z = secret_subset(rng, len(scored), N_REPEAT_Z)
    decoys = as_sent(torch.from_numpy(rng.standard_normal((256, scored.shape[1]))))
    q.decoded_again = Interleaved(rng, scored[q.repeated_z], decoys)
    with g.round() as r:
        q.decode_again = r.call("model.decode", q.decoded_again.rows)


# ---- checks of the trained model ----

def check_deterministic(g, q: Queries, logits: dict[str, torch.Tensor]) -> None:
    """The scored rows again, in another round and batch: the same (mu, log_var) and the same logits."""
    first = q.encoded.split(q.encode.value)[0]
    again = q.again.split(q.encode_again.value)[0]
    decoded_again = q.decoded_again.split(q.decode_again.value)[0]
    scored = torch.cat([logits[k] for k in SCORED])
    changes = {
        "encode's mu": float(rel_errors(again["mu"], first["mu"][q.repeated_x]).max()),
        "encode's log_var": float(rel_errors(again["log_var"], first["log_var"][q.repeated_x]).max()),
        "decode": float(rel_errors(decoded_again, scored[q.repeated_z]).max()),
    }
    same_call = q.twins_in_one_call()
    twin_gaps = rel_errors(logits["twin_a"], logits["twin_b"])
    twins = float(twin_gaps[same_call].max()) if bool(same_call.any()) else math.nan
    g.metric("deterministic", max(changes.values()), hint=determinism_hint(changes, twins),
             note=", ".join(f"{k} {v:.2e}" for k, v in changes.items())
                  + f", {int(same_call.sum())} twins in one call {twins:.2e}, in other calls "
                    f"{float(twin_gaps.max()):.2e}")


@dataclass
class Bounds:
    """The grader's bounds on the held-out images, per image (nats, higher is better)."""

    elbo: torch.Tensor
    iw10: torch.Tensor
    iw100: torch.Tensor
    iwk: torch.Tensor
    reconstruction: float
    kl: float
    source: torch.Tensor   # the source's exact log p(x)

    def excess(self, bound: torch.Tensor) -> float:
        return float((self.source - bound).mean())

    def excess_se(self, bound: torch.Tensor) -> float:
        return float((self.source - bound).std() / math.sqrt(len(bound)))

    def summary(self) -> str:
        parts = [("ELBO", self.elbo), ("IWAE-10", self.iw10), ("IWAE-100", self.iw100), (IWAE_NAME, self.iwk)]
        return (", ".join(f"-{name} {format_number(float(-b.mean()))}" for name, b in parts)
                + f" (reconstruction {format_number(self.reconstruction)} + KL {format_number(self.kl)}); the "
                f"source's own NLL on these images {format_number(float(-self.source.mean()))}")


def log_weights(x: torch.Tensor, z: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor,
                log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log w = log p(x|z) + log p(z) - log q(z|x) and log p(x|z), both [K, B], from z [K, B, D] and the
    decoder's logits [K * B, 64] in the same order."""
    k, b, _ = z.shape
    log_px = -bernoulli_nll(logits.reshape(k, b, PIXELS), x)
    log_pz = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(-1)
    std = (0.5 * log_var).exp()
    log_qz = (-0.5 * ((z - mu) / std) ** 2 - 0.5 * log_var - 0.5 * LOG_2PI).sum(-1)
    return log_px + log_pz - log_qz, log_px


def compute_bounds(q: Queries, logits: dict[str, torch.Tensor], posterior: dict[str, torch.Tensor],
                   source: DigitMixture) -> Bounds:
    x = as_sent(q.test)
    mu, log_var = posterior["mu"], posterior["log_var"]
    _, log_px = log_weights(x, q.draws["elbo"], logits["elbo"], mu, log_var)
    lw_10, _ = log_weights(x, q.draws["iw10"], logits["iw10"], mu, log_var)
    lw_k, _ = log_weights(x, q.draws["iwk"], logits["iwk"], mu, log_var)
    kl = kl_standard_normal(mu, log_var)   # the KL in closed form, the expectation by Monte Carlo
    return Bounds(log_px.mean(0) - kl, iwae(lw_10, 10), iwae(lw_k, 100), iwae(lw_k, K_IW),
                  float(-log_px.mean()), float(kl.mean()), source.log_prob(x))


def gap_note(q: Queries, logits: dict[str, torch.Tensor], posterior: dict[str, torch.Tensor], source: DigitMixture,
             bounds: Bounds) -> str:
    """The bounds, and the ELBO's excess on some of the model's own training images (the generalisation gap)."""
    x = as_sent(q.train[:N_GAP])
    _, log_px = log_weights(x, q.draws["gap"], logits["gap"], posterior["mu_train"], posterior["log_var_train"])
    elbo = log_px.mean(0) - kl_standard_normal(posterior["mu_train"], posterior["log_var_train"])
    train_excess = float((source.log_prob(x) - elbo).mean())
    held_out = bounds.excess(bounds.elbo)
    return (f"{bounds.summary()}; excess over the source: ELBO {held_out:.3f}, {IWAE_NAME} "
            f"{bounds.excess(bounds.iwk):.3f}; ELBO excess on {N_GAP} training images {train_excess:.3f} "
            f"(generalisation gap {held_out - train_excess:.3f} nats)")


def check_bounds(g, bounds: Bounds, decoded_mu: torch.Tensor, staff_note: str) -> dict[str, float]:
    inside = float(((decoded_mu >= 0) & (decoded_mu <= 1)).double().mean())
    summary = bounds.summary()
    g.metric("decoder_logits", bounds.reconstruction, hint=decoder_hint(bounds.reconstruction, inside),
             note=f"fraction of decoded outputs in [0,1]: {inside:.3f}; {summary}")

    step_10 = float((bounds.iw10 - bounds.elbo).mean())        # IWAE-10 - ELBO, in nats per image
    step_100 = float((bounds.iw100 - bounds.iw10).mean())
    ordered = g.metric("bounds_ordered", min(step_10, step_100),
                       hint=f"The grader measured {summary}. Each bound should be at least as tight as the one "
                            "before: check that decode gives the same answer for the same z whatever the batch "
                            "(model.eval(), no randomness inside).",
                       detail=f"The grader measured {summary}.",
                       note=f"IWAE-10 - ELBO {step_10:.4f}, IWAE-100 - IWAE-10 {step_100:.4f}")
    excess = {"elbo": bounds.excess(bounds.elbo), "iwae": bounds.excess(bounds.iwk)}
    se = bounds.excess_se(bounds.iwk)
    above = g.metric("above_floor", excess["iwae"] / se, hint=floor_hint(excess["iwae"], se),
                     detail=f"-{IWAE_NAME} is {excess['iwae']:+.3f} nats per image from the source's exact NLL "
                            f"(standard error {se:.3f}).", note=staff_note)
    valid = ordered and above and g.outcomes["deterministic"].passed
    if not valid:
        reason = ("the bounds are not ordered" if not ordered else "the bound is below the source's exact NLL"
                  if not above else "decode is not one fixed function of z (see the determinism check)")
        for name in BOUND_CHECKS:
            value = excess["elbo"] if "elbo" in name else excess["iwae"]
            g.record(name, False, f"Not counted: {reason}, so {value:+.3f} nats is not a trustworthy excess over "
                     "the source.", value=value, note=staff_note)
        return excess
    elbo_hint = bound_hint(bounds.kl, bounds.reconstruction, probabilities=inside > 0.99,
                           elbo_gap=excess["elbo"] - excess["iwae"])
    detail = f"The grader measured {summary}."
    g.metric("elbo", excess["elbo"], hint=elbo_hint, detail=detail, note=staff_note)
    g.metric("elbo_c", excess["elbo"], hint=elbo_hint, detail=detail, note=staff_note)
    iw_hint = ("The IWAE bound rewards a good decoder and a posterior approximation "
               "that covers the true posterior: more latent dimensions, a wider network or a longer schedule help (the "
               "IWAE objective tightens this bound but loosens the ELBO, which the E and C checks also score).")
    g.metric("iwae_c", excess["iwae"], hint=iw_hint, detail=detail, note=staff_note)
    g.metric("iwae_a", excess["iwae"], hint=iw_hint, detail=detail, note=staff_note)
    return excess


def draw_samples(pending, n: int) -> torch.Tensor:
    s = pending.value
    if s.shape[0] != n:
        raise ResultInvalid(f"model.sample({n}, seed=...) returned {s.shape[0]} images instead of {n}.")
    return s


def check_samples(g, q: Queries, prior_logits: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, SampleAudit]:
    many = draw_samples(q.samples["many"], N_SAMPLES)
    audit = audit_samples(many, torch.sigmoid(prior_logits), rng)
    g.metric("samples", audit.largest_z, hint=samples_hint(audit, N_SAMPLES),
             note=f"largest |z| over pixels alone {audit.marginal_z:.2f}, against thresholded outputs "
                  f"{audit.thresholded_z:.2f}; {audit.distinct} distinct samples")
    return many, audit


def seed_problems(binary: bool, first: torch.Tensor, again: torch.Tensor, other: torch.Tensor) -> list[str]:
    problems = []
    if not binary:
        problems.append("some values are not 0 or 1 (sample x ~ Bernoulli(sigmoid(logits)) with torch.bernoulli)")
    if not torch.equal(first, again):
        problems.append("the same seed gave other images in a fresh process (seed a torch.Generator with the seed "
                        "argument and pass it to torch.randn and torch.bernoulli; do not use the global generator)")
    if float((first != other).any(dim=-1).double().mean()) < 0.5:
        problems.append("another seed gave mostly the same images (use the seed argument, not a fixed seed)")
    return problems


def check_sample_seed(g, q: Queries, binary: bool) -> None:
    first = draw_samples(q.samples["first"], N_SEED)
    again = draw_samples(q.samples["again"], N_SEED)
    other = draw_samples(q.samples["other"], N_SEED)
    problems = seed_problems(binary, first, again, other)
    g.record("sample_seed", not problems,
             "Binary samples; the same seed reproduces them in a fresh process and another seed changes them."
             if not problems else "Problems: " + "; ".join(problems) + ".")


def check_not_copies(g, many: torch.Tensor, train: torch.Tensor, source: DigitMixture,
                     rng: np.random.Generator) -> float:
    samples = many[:N_COPY].round().clamp(0, 1)
    share = closer_share(samples, train, source.sample(rng, len(train)))
    null = [closer_share(samples, source.sample(rng, len(train)), source.sample(rng, len(train)))
            for _ in range(COPY_REPEATS)]
    g.metric("not_copies", share, hint=copy_hint(share),
             note=f"share nearer the training images {share:.3f}; with two fresh sets in both roles "
                  f"{np.mean(null):.3f} +- {np.std(null, ddof=1):.3f}")
    return share


def examiner_flags(g, quick_fit: bool, copy_share: float | None) -> None:
    """What no check can decide, for the examiner (staff only, no points): g.train flagged a quick fit; the
    samples' nearness to the training images is flagged here."""
    flags = ["fit returned far sooner than any training (see the run's flags)"] if quick_fit else []
    limit = g.part.checks["not_copies"].threshold
    if copy_share is not None and 0.6 < copy_share <= limit:
        flags.append(f"{copy_share:.0%} of the samples lie nearer the training images than fresh images (the "
                     "reference: about 50-55 %): memorisation below the check's limit")
        g.flag(flags[-1])
    g.record("examiner_flags", not flags, "Nothing to flag." if not flags else "Flags: " + "; ".join(flags) + ".",
             value=float(len(flags)))


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
        values = [bounds[k] for k in labels]
        ax.plot(range(len(labels)), values, "o-")
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        low, high = min(values), max(values)
        for name, limit in (limits or {}).items():   # thresholds that fall near the plotted values
            if low - 0.5 <= limit <= high + 0.5:
                ax.axhline(limit, color="gray", ls="--", lw=0.8)
                ax.text(len(labels) - 1, limit, name, fontsize=6, color="gray", ha="right", va="bottom")
        ax.set_title("excess over the source, nats/image", fontsize=8)
        ax.tick_params(labelsize=7)


# ---- the grading run ----

MODEL_CHECKS = ("deterministic", "decoder_logits", "bounds_ordered", "above_floor", *BOUND_CHECKS, "samples",
                "sample_seed", "not_copies", "examiner_flags")


def grade_model(g, q: Queries, source: DigitMixture, rngs: dict[str, np.random.Generator],
                images: dict, plotted: dict) -> None:
    """Everything after training: three rounds of queries, then the checks that read them. A round whose
    answers cannot be read costs the checks that need them (the first section names them all)."""
    first_round(g, q, rngs["query"], source.sample(rngs["data"], N_DECOYS))
    posterior, logits = {}, {}
    with g.section(*MODEL_CHECKS):
        encoded = q.encoded.split(q.encode.value)
        posterior = {"mu": encoded[0]["mu"], "log_var": encoded[0]["log_var"], "mu_train": encoded[1]["mu"],
                     "log_var_train": encoded[1]["log_var"]}
        second_round(g, q, rngs["query"], posterior)
        third_round(g, q, rngs["query"])
        logits = q.logits()
        images.update(originals=q.train[:10], reconstructions=torch.sigmoid(logits["recon"][-10:]),
                      prior_means=torch.sigmoid(logits["prior"][:10]))
        check_deterministic(g, q, logits)
    if not logits:
        return
    copy_share = None
    with g.section("samples", "sample_seed", "not_copies"):
        many, audit = check_samples(g, q, logits["prior"], rngs["query"])
        images["samples"] = many[:10]
        check_sample_seed(g, q, audit.binary)
        if audit.binary:
            copy_share = check_not_copies(g, many, q.train, source, rngs["data"])
        else:
            g.record("not_copies", False, "Not checked: the samples are not binary images (see the sample checks).")
    with g.section("decoder_logits", "bounds_ordered", "above_floor", *BOUND_CHECKS):
        bounds = compute_bounds(q, logits, posterior, source)
        plotted.update({"ELBO": bounds.excess(bounds.elbo), "IW10": bounds.excess(bounds.iw10),
                        "IW100": bounds.excess(bounds.iw100), f"IW{K_IW}": bounds.excess(bounds.iwk)})
        check_bounds(g, bounds, logits["recon"][:N_TEST], gap_note(q, logits, posterior, source, bounds))
    with g.section("examiner_flags"):
        examiner_flags(g, g.trainings["model"].quick, copy_share)


def grade(g) -> None:
    # Independent streams from the secret seed: the source and its images, the probes of the functions, the
    # orders and draws of the queries.
    data_rng, probe_rng, query_rng = (np.random.default_rng(int(s)) for s in g.rng.integers(2**62, size=3))
    source = DigitMixture.draw(StaffDecoder.load(HIDDEN / "digit_source.safetensors"), data_rng)
    q = Queries(train=source.sample(data_rng, N_TRAIN), test=source.sample(data_rng, N_TEST))

    # The pure functions first, as the student's audience: nothing hidden is involved.
    with g.section("kl_normal"):
        check_kl(g, probe_rng)
    with g.section("reparameterise"):
        check_reparameterise(g, probe_rng)
    with g.section("bernoulli_nll"):
        check_bernoulli_nll(g, probe_rng)

    g.progress("training your model")
    g.train("fit", as_sent(q.train), check="fit_budget", probe=("model.encode", (as_sent(q.train[:8]),), {}))

    g.progress("computing the ELBO and IWAE bounds on fresh images, and auditing your sampler")
    images: dict = {}
    plotted: dict = {}
    grade_model(g, q, source, {"data": data_rng, "query": query_rng}, images, plotted)

    if images or plotted:
        limits = {f"{spec.tier} {'IWAE' if 'iwae' in name else 'ELBO'} {spec.threshold:g}": spec.threshold
                  for name, spec in g.part.checks.items() if name in BOUND_CHECKS}
        g.figure("vae-digits", "Rows: training images, your reconstructions (pixel probabilities), decoded prior "
                 "draws and your binary samples. Right: how far the grader's bounds on fresh images lie above the "
                 "source's own NLL (lower is better; each IWAE-K should sit below the ELBO).",
                 lambda fig: draw_feedback(fig, images, plotted, limits), size=figure_size(images), layout=None)
