"""Every feedback branch of the autoregressive part's checks says what was measured (issue 17, item 3).

The hint functions of assignments/lab1/autoregressive/checks.py are called with values computed as the checks
compute them, from real samplers and models written here: a copy-source model (the true conditionals, with
fixed offsets so that no two logits tie) sampled honestly and with the temperature and seed slips students
make, models that leak a later token or their own token through the grader's causality probe, and a
first-order digits model sampled honestly, thresholded, or with its probabilities fed back. No sandbox and no
training: about a second.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from grader.engine import load_checks_module
from grader.parts import load_part

from .checks_in_process import answered

PART = load_part("autoregressive")


@pytest.fixture(scope="module")
def ar():
    return load_checks_module(PART)


UNSEEDED = itertools.count(1000)   # the random state of a sampler that ignores its seed: new on every call
OFFSETS = torch.from_numpy(np.random.default_rng(0).normal(0, 0.3, (64, 16)))   # [T, V]: breaks ties in top-k


def copy_model(ar, tokens: torch.Tensor, *, sees: int | None = None) -> torch.Tensor:
    """The copy source's log-conditionals plus fixed offsets: logits [n, T, V] for tokens [n, T]. `sees`: a
    leak, position t also seeing the token at t + sees (0: itself, 1: the next one)."""
    logits = ar.true_next_token_probs(tokens).log() + OFFSETS
    if sees is not None:
        seen = torch.nn.functional.one_hot(tokens, ar.V).double()
        logits[:, : ar.T - sees] += 2.0 * seen[:, sees:]
    return logits


def next_logits(ar, back: torch.Tensor | None) -> torch.Tensor:
    """copy_model's logits at one position, without its offset, from the token 8 back (None: t < 8)."""
    if back is None:
        return torch.full((1, ar.V), -np.log(ar.V), dtype=torch.float64)
    return (ar.Q_OTHER + ar.P_COPY * torch.nn.functional.one_hot(back, ar.V).double()).log()


def draw(ar, n: int, temperature: float, top_k: int, seed: int, *, scales=lambda t, k: True,
         seeded=lambda t, k: True, argmax: bool = False, sharpness: float = 1.0) -> torch.Tensor:
    """A sampler of copy_model, as a student writes it: `scales` says when it divides by the temperature,
    `seeded` when it draws with a generator seeded by `seed` (else with a new state on every call, as
    torch.multinomial without a generator in a fresh process does), `argmax` takes the most likely token;
    `sharpness` multiplies the model's logits (large: a model that puts all its mass on one token)."""
    generator = torch.Generator().manual_seed(seed if seeded(temperature, top_k) else next(UNSEEDED))
    tokens = torch.zeros(n, ar.T, dtype=torch.long)
    for t in range(ar.T):
        logits = sharpness * (next_logits(ar, tokens[:, t - ar.LAG] if t >= ar.LAG else None) + OFFSETS[t])
        logits = logits.expand(n, -1).contiguous()
        logits = logits / temperature if scales(temperature, top_k) else logits
        if top_k:
            logits = logits.masked_fill(logits < logits.topk(top_k, dim=-1).values[:, -1:], -torch.inf)
        if argmax:
            tokens[:, t] = logits.argmax(dim=-1)
        else:
            tokens[:, t] = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
    return tokens


def temperature_results(ar, **slip) -> list[dict[str, float]]:
    """check_temperature's measurement at each of its operating points, for the sampler with this slip."""
    results = []
    for i, (temperature, top_k) in enumerate(ar.TEMPERATURE_POINTS):
        tokens = draw(ar, ar.N_SAMPLE, temperature, top_k, seed=10 + i, **slip)
        results.append(ar.temperature_result(tokens, copy_model(ar, tokens), temperature, top_k))
    return results


TOLERANCE = PART.checks["temperature"].threshold


def test_an_honest_sampler_is_within_tolerance_at_every_operating_point_and_gets_no_hint(ar):
    results = temperature_results(ar)
    assert max(r["gap"] for r in results) <= TOLERANCE, results
    assert ar.temperature_hint(results, TOLERANCE) == ""


def test_a_top_k_branch_that_ignores_the_temperature_is_told_that_only_top_k_is_wrong(ar):
    results = temperature_results(ar, scales=lambda t, k: not k)
    worst = max(results, key=lambda r: r["gap"])
    assert worst["gap"] > TOLERANCE and (worst["temperature"], worst["top_k"]) == (2.0, 4), results
    hint = ar.temperature_hint(results, TOLERANCE)
    assert hint.startswith("At temperature 2 with top_k = 4") and "Without top-k the temperature works" in hint, hint


def test_a_temperature_applied_only_above_1_is_told_that_sharpening_fails(ar):
    results = temperature_results(ar, scales=lambda t, k: t > 1)
    hint = ar.temperature_hint(results, TOLERANCE)
    assert hint.startswith("At temperature 0.5 without top-k") and "Temperatures above 1 work" in hint, hint


def test_a_temperature_ignored_everywhere_gets_the_general_advice(ar):
    results = temperature_results(ar, scales=lambda t, k: False)
    assert all(r["gap"] > TOLERANCE for r in results), results
    hint = ar.temperature_hint(results, TOLERANCE)
    assert hint.endswith("Divide the logits by the temperature before the softmax (then apply top-k, if any).")
    assert "work" not in hint, hint


def seed_outcome(ar, **slip) -> tuple[bool, str]:
    """check_seed's measurement (16 rows; one seed twice at every point, another at temperature 1), judged."""
    first = [draw(ar, 16, t, k, seed=1, **slip) for t, k in ar.SEED_POINTS]
    again = [draw(ar, 16, t, k, seed=1, **slip) for t, k in ar.SEED_POINTS]
    other = draw(ar, 16, 1.0, 0, seed=2, **slip)
    same = {ar.operating_point(*point): torch.equal(x, y) for point, x, y in zip(ar.SEED_POINTS, first, again,
                                                                               strict=True)}
    differ = float((first[0] != other).any(dim=-1).double().mean())
    return ar.seed_feedback(same, differ, distinct=len(first[0].unique(dim=0)), rows=16)


def test_an_honest_seed_passes(ar):
    passed, feedback = seed_outcome(ar)
    assert passed and feedback.startswith("The same seed reproduces the samples"), feedback


def test_a_top_k_branch_without_the_generator_is_named_as_the_point_that_does_not_reproduce(ar):
    passed, feedback = seed_outcome(ar, seeded=lambda t, k: not k)
    assert not passed
    assert "different samples at temperature 2 with top_k = 4 (at temperature 1 without top-k and temperature 0.5 " \
           "without top-k they agree)" in feedback, feedback
    assert "in every branch (top-k included)" in feedback


def test_a_seed_that_is_ignored_is_told_so(ar):
    passed, feedback = seed_outcome_fixed(ar)
    assert not passed and "Two different seeds gave the same samples in 100% of the rows" in feedback, feedback
    assert "use the seed argument" in feedback


def seed_outcome_fixed(ar) -> tuple[bool, str]:
    """A sampler that seeds its generator with a constant: every call gives the same, varied, samples."""
    first = [draw(ar, 16, t, k, seed=0) for t, k in ar.SEED_POINTS]
    same = {ar.operating_point(*point): True for point in ar.SEED_POINTS}
    differ = float((first[0] != draw(ar, 16, 1.0, 0, seed=0)).any(dim=-1).double().mean())
    return ar.seed_feedback(same, differ, distinct=len(first[0].unique(dim=0)), rows=16)


@pytest.mark.parametrize("collapse", [{"argmax": True}, {"sharpness": 100.0}], ids=["argmax", "degenerate model"])
def test_samples_collapsed_onto_one_sequence_are_not_told_that_the_seed_is_ignored(ar, collapse):
    """The argmax at temperature 1, or honest draws from a model that puts all its mass on one token (as
    wrong/no_bos_shift's does): one sequence for every row and every seed. The seed is not the bug."""
    passed, feedback = seed_outcome(ar, **collapse)
    assert not passed, feedback
    assert re.search(r"are only [1-8] different sequences?, so another seed cannot change them; the seed is not "
                     "what is wrong", feedback), feedback
    assert "takes the most likely token" in feedback and "nearly all the probability" in feedback, feedback
    assert "Two different seeds" not in feedback and "use the seed argument" not in feedback


def causality(ar, logits_of) -> tuple[float, str]:
    """check_causality's probe of the model `logits_of`, and the hint its leaks get."""
    rng = np.random.default_rng(3)
    bases = ar.make_sequences(rng, 4)
    rows, meta = ar.causality_probe(rng, bases)
    worst, leaks = ar.find_leaks(ar.log_probs(logits_of(rows)), meta, len(bases))
    return worst, ar.causality_hint(leaks)


def test_a_causal_model_has_no_leak_and_no_hint(ar):
    worst, hint = causality(ar, lambda rows: copy_model(ar, rows))
    assert worst <= PART.checks["causal"].threshold and hint == ""


def test_a_model_that_sees_the_next_token_is_told_it_looks_into_the_future(ar):
    worst, hint = causality(ar, lambda rows: copy_model(ar, rows, sees=1))
    assert worst > PART.checks["causal"].threshold
    assert "looks into the future" in hint and "mask attention to later positions" in hint, hint
    assert "itself changed" not in hint


def test_a_model_that_sees_its_own_token_is_told_to_shift_the_inputs(ar):
    worst, hint = causality(ar, lambda rows: copy_model(ar, rows, sees=0))
    assert worst > PART.checks["causal"].threshold
    position = int(hint.split("at position ")[1].split(" ")[0])
    assert f"when the token at position {position} itself changed" in hint and "Shift the inputs right" in hint, hint
    assert "future" not in hint


def test_a_model_with_both_leaks_is_told_the_future_one_first(ar):
    _, hint = causality(ar, lambda rows: copy_model(ar, rows, sees=0) + copy_model(ar, rows, sees=1))
    assert "looks into the future" in hint, hint


BIAS = torch.from_numpy(np.random.default_rng(1).normal(0, 1.0, 64))


def digits_model(images: torch.Tensor, *, sees: int = -1) -> torch.Tensor:
    """Bernoulli logits [n, 64] of a first-order model: pixel d's logit uses pixel d + sees (-1: the previous
    pixel, causal; 0: itself; 1: the next one)."""
    logits = BIAS.expand(len(images), -1).clone()
    lo, hi = max(0, -sees), min(64, 64 - sees)
    logits[:, lo:hi] += 3.0 * (2 * images[:, lo + sees: hi + sees] - 1)
    return logits


def digits_causality(ar, sees: int) -> str:
    rng = np.random.default_rng(4)
    rows, meta = ar.digits_causality_probe(torch.from_numpy((rng.random((4, 64)) < 0.5).astype(np.float64)))
    logits = digits_model(rows, sees=sees)
    lp = torch.stack([torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits)], dim=-1)
    return ar.digits_causality_hint(ar.find_leaks(lp, meta, 4)[1])


def test_the_digits_causality_hint_tells_a_later_pixel_from_the_pixel_itself(ar):
    assert digits_causality(ar, -1) == ""
    future = digits_causality(ar, 1)
    assert "Check your masks" in future and "that pixel itself" not in future, future
    itself = digits_causality(ar, 0)
    assert "when that pixel itself changed" in itself and "strict" in itself, itself


def sample_digits(n: int, *, feed_back) -> torch.Tensor:
    """digits_model's sampler in raster order; feed_back(probabilities, generator) is what it writes in."""
    generator = torch.Generator().manual_seed(5)
    images = torch.zeros(n, 64, dtype=torch.float64)
    for d in range(64):
        images[:, d] = feed_back(torch.sigmoid(digits_model(images)[:, d]), generator)
    return images


THRESHOLD = PART.checks["digits_samples"].threshold


def digits_samples_measured(ar, samples: torch.Tensor) -> tuple[float, str]:
    """check_digits_samples' value (the largest gap between the samples' pixel frequencies and the model's
    own probabilities at them) and its hint."""
    probs = torch.sigmoid(digits_model(samples))
    return float((samples.mean(0) - probs.mean(0)).abs().max()), ar.digits_samples_hint(samples, probs)


def test_digits_samples_tell_drawn_thresholded_and_probability_samplers_apart(ar):
    honest, _ = digits_samples_measured(ar, sample_digits(2000, feed_back=lambda p, gen: torch.bernoulli(p,
                                                                                                  generator=gen)))
    assert honest <= THRESHOLD
    thresholded, hint = digits_samples_measured(ar, sample_digits(2000, feed_back=lambda p, gen: (p > 0.5).double()))
    assert thresholded > THRESHOLD and "of your samples are 1" in hint and "not 0 or 1" not in hint, hint
    _, hint = digits_samples_measured(ar, sample_digits(2000, feed_back=lambda p, gen: p))
    assert hint.startswith("Some sampled values are not 0 or 1: return Bernoulli draws, not probabilities.")
    assert "your samples average" in hint and "of your samples are 1" not in hint, hint


@pytest.mark.parametrize("feed_back, passes", [(lambda p, gen: torch.bernoulli(p, generator=gen), True),
                                               (lambda p, gen: p, False)], ids=["drawn", "probabilities"])
def test_probabilities_returned_as_samples_fail_digits_samples(ar, feed_back, passes):
    """Probabilities fed back as 'samples' match their own conditionals' averages exactly (measured 3e-17), so
    the average gap alone let them pass: values that are not 0 or 1 now fail digits_samples by name."""
    def sample(n, *, seed):
        generator = torch.Generator().manual_seed(int(seed))
        images = torch.zeros(int(n), 64, dtype=torch.float64)
        for d in range(64):
            images[:, d] = feed_back(torch.sigmoid(digits_model(images)[:, d]), generator)
        return images.float()

    g = answered(PART, {"digits_model.sample": sample, "digits_model.logits": lambda x: digits_model(x.double())})
    source = ar.digit_source(np.random.default_rng(3))
    train, later = source.sample(np.random.default_rng(5), 500), ar.LaterLogits("digits_model.logits", 1000)
    ar.draw_digit_samples(g, np.random.default_rng(4), train, source, later)
    with g.round() as r:
        later.ask(r, np.random.default_rng(6), source.sample(np.random.default_rng(7), 50))
    ar.check_digits_samples(g, later, train)
    outcome = g.outcomes["digits_samples"]
    assert outcome.passed == passes, outcome.feedback
    if not passes:
        assert outcome.feedback.startswith("Some sampled values are not 0 or 1"), outcome.feedback


def test_the_digits_nll_hint_says_probabilities_only_when_the_outputs_are_probabilities(ar):
    images = sample_digits(400, feed_back=lambda p, gen: torch.bernoulli(p, generator=gen))

    def inside(outputs: torch.Tensor) -> float:  # score_digits' share of outputs in [0, 1]
        return float(((outputs >= 0) & (outputs <= 1)).double().mean())

    logits = digits_model(images)
    assert inside(logits) < 0.99
    assert ar.digits_nll_hint("SUMMARY", inside(logits)).startswith("SUMMARY Train longer")
    hint = ar.digits_nll_hint("SUMMARY", inside(torch.sigmoid(logits)))
    assert hint.startswith("100% of your outputs lie in [0, 1]: digits_model.logits seems to return probabilities")
    assert hint.endswith("summed over the 64 pixels.")
