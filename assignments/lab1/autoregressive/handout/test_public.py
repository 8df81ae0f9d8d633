"""Public tests: the same kinds of checks the grader runs, on data you can see.

    python -m pytest test_public.py -q
Passing these does not guarantee full marks (the grader uses fresh data and more samples), but a
failure here will be a failure there. Two tests train a model (about 20 s and 10 s on a laptop); the
C-tier tests (MADE on the digits) need scikit-learn for the data: pip install scikit-learn.
The digits model trains on images of data.practice_source, a source of the grader's kind, against a
looser bar than the grader's (that source is harder for MADE).
"""

import time

import pytest
import torch
from autoregressive import BOS, SEQ_LEN, VOCAB, TinyTransformer, build_model, fit, pick
from data import (
    ENTROPY,
    N_DIGITS_TRAIN,
    copy_rate,
    dependence_captured,
    digits_excess,
    digits_nll,
    digits_split,
    expected_nll,
    independent_nll,
    make_sequences,
    practice_source,
)
from made import MADE, bernoulli_nll, build_digits_model, fit_digits

TOL = 1e-4  # the grader's tolerance on log-probabilities


def untrained_model(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    return TinyTransformer().eval()


def log_probs(model, tokens):
    return torch.log_softmax(model.logits(tokens).double(), dim=-1)


def test_shift_right_puts_bos_first():
    tokens = make_sequences(2, seed=0)
    inputs = TinyTransformer.shift_right(tokens)
    assert inputs.shape == tokens.shape
    assert (inputs[:, 0] == BOS).all()
    assert torch.equal(inputs[:, 1:], tokens[:, :-1])


def test_logits_shape_and_dtype():
    out = untrained_model().logits(make_sequences(3, seed=0))
    assert out.shape == (3, SEQ_LEN, VOCAB) and out.dtype == torch.float32


@pytest.mark.parametrize("length", [1, 9, 64])
def test_logits_accept_any_prefix_length(length):
    """The grader also calls model.logits on prefixes (A tier: generation without a cache)."""
    model = untrained_model()
    tokens = make_sequences(3, seed=0)
    short = model.logits(tokens[:, :length])
    assert short.shape == (3, length, VOCAB)
    full = log_probs(model, tokens)[:, :length]
    assert (torch.log_softmax(short.double(), dim=-1) - full).abs().max() <= TOL


@pytest.mark.parametrize("j", [0, 1, 7, 8, 30, 63])
def test_causal(j):
    """logits[:, t] may use tokens 0..t-1 only: changing token j (or everything from j on) must leave the
    log-probabilities at positions 0..j unchanged. The grader does exactly this."""
    model = untrained_model()
    base = make_sequences(4, seed=1)
    one, suffix = base.clone(), base.clone()
    one[:, j] = (one[:, j] + 5) % VOCAB
    suffix[:, j:] = (suffix[:, j:] + 3) % VOCAB
    lp = log_probs(model, torch.cat([base, one, suffix]))
    for changed in (lp[4:8], lp[8:]):
        diff = (changed[:, : j + 1] - lp[:4, : j + 1]).abs().amax(dim=(0, 2))
        assert diff.max() <= TOL, f"the log-probabilities at position {int(diff.argmax())} changed when token {j} changed"


def test_greedy_is_argmax():
    model = untrained_model()
    s = model.sample(4, temperature=0.0, top_k=0, seed=0)
    assert s.shape == (4, SEQ_LEN) and s.dtype == torch.int64
    lp = log_probs(model, s)
    assert (lp.gather(-1, s[..., None])[..., 0] >= lp.amax(-1) - TOL).all()


@pytest.mark.parametrize("k", [1, 4])
def test_top_k_never_leaves_the_top_k(k):
    model = untrained_model()
    s = model.sample(32, temperature=1.0, top_k=k, seed=1)
    lp = log_probs(model, s)
    above = (lp > lp.gather(-1, s[..., None]) + TOL).sum(-1)   # tokens clearly more likely than the sampled one
    assert (above < k).all()


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.5, 0), (2.0, 4)])
def test_the_same_seed_reproduces_the_samples(temperature, top_k):
    """The grader asks again in a fresh process, at each of these operating points: every branch of your
    sampler must draw with the seeded generator."""
    model = untrained_model()
    a = model.sample(8, temperature=temperature, top_k=top_k, seed=3)
    torch.rand(5)  # the global random state moves on between the grader's calls too
    assert torch.equal(a, model.sample(8, temperature=temperature, top_k=top_k, seed=3))


def test_the_seed_controls_sampling():
    model = untrained_model()
    a = model.sample(8, temperature=1.0, top_k=0, seed=3)
    assert torch.equal(a, model.sample(8, temperature=1.0, top_k=0, seed=3))
    assert not torch.equal(a, model.sample(8, temperature=1.0, top_k=0, seed=4))
    assert 0 <= int(a.min()) and int(a.max()) < VOCAB


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_pick_follows_the_tempered_softmax(temperature):
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(40_000, 1)
    counts = torch.bincount(pick(logits, temperature, 0, torch.Generator().manual_seed(0)), minlength=4)
    expected = torch.softmax(logits[0] / temperature, dim=-1)
    assert torch.allclose(counts / counts.sum(), expected, atol=0.01)


def test_kv_cache_matches_the_full_pass():
    model = untrained_model()
    tokens = make_sequences(4, seed=2)
    try:
        cached = model.logits_cached(tokens)
    except NotImplementedError:
        pytest.skip("logits_cached (A tier) not implemented")
    full = model.logits(tokens)
    assert (torch.log_softmax(cached.double(), -1) - torch.log_softmax(full.double(), -1)).abs().max() <= TOL


def gumbel(n: int, seed: int) -> torch.Tensor:
    """Standard Gumbel noise [n, 64, 16], as the grader draws it for model.generate."""
    u = torch.rand(n, SEQ_LEN, VOCAB, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return -torch.log(-torch.log(u.clamp(1e-12, 1 - 1e-12))).float()


def test_generate_draws_the_argmax_of_logits_plus_noise():
    """A tier: the grader sends generate its own noise, then asks your logits (in another process) on the
    sequences you returned: every token must be the argmax of log-softmax(logits) + noise (ties within 1e-4)."""
    model = untrained_model()
    noise = gumbel(32, seed=0)
    try:
        tokens = model.generate(noise)
    except NotImplementedError:
        pytest.skip("generate (A tier) not implemented")
    assert tokens.shape == (32, SEQ_LEN) and tokens.dtype == torch.int64
    scores = log_probs(model, tokens) + noise.double()
    assert (scores.gather(-1, tokens[..., None])[..., 0] >= scores.amax(-1) - TOL).all()


def test_generation_with_the_cache_costs_few_full_passes():
    """A tier: the grader times model.generate and model.logits (a full pass over whole sequences) on a large
    and a small number of rows; the extra rows' cost of generate, in full passes, must be at most 8. The same
    measurement, without the sandbox: the reference costs about 2-4 full passes, generation without a cache
    (a pass over every prefix) 15-30."""
    model = untrained_model()
    try:
        model.generate(gumbel(1, seed=0))
    except NotImplementedError:
        pytest.skip("generate (A tier) not implemented")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def seconds(call, *args) -> float:
        start = time.perf_counter()
        call(*args)
        return time.perf_counter() - start

    ratios = []
    try:
        for seed in range(3):
            large, small = gumbel(1024, seed), gumbel(128, seed + 10)
            rows_large, rows_small = make_sequences(1024, seed=seed), make_sequences(128, seed=seed + 10)
            generate = seconds(model.generate, large) - seconds(model.generate, small)
            full = seconds(model.logits, rows_large) - seconds(model.logits, rows_small)
            ratios.append(generate / max(full, 1e-6))
    finally:
        torch.set_num_threads(threads)
    ratio = sorted(ratios)[1]
    print(f"generation costs {ratio:.1f} full passes per sequence (the grader needs at most 8)")
    assert ratio <= 8, "use the KV cache in generate(): feed only the new token at each step"


def test_training_reaches_the_E_threshold():
    model = fit(make_sequences(10_000, seed=1), seed=0, max_seconds=20)
    test = make_sequences(2_000, seed=2)
    nll = expected_nll(model.logits(test), test)
    rate = copy_rate(model.sample(256, temperature=1.0, top_k=0, seed=0))
    print(f"test NLL {nll:.4f} nats/token (entropy {ENTROPY:.4f}; E needs <= {ENTROPY + 0.05:.4f}, "
          f"C <= {ENTROPY + 0.02:.4f}); copy rate {rate:.3f} (source 0.8125)")
    assert nll <= ENTROPY + 0.05
    assert abs(rate - 0.8125) <= 0.03


# ---- C tier: MADE on binarised digits ----

def untrained_made(seed: int = 0) -> MADE:
    torch.manual_seed(seed)
    return MADE().eval()


@pytest.fixture(scope="module")
def trained_a_little() -> MADE:
    """A few optimiser steps on random images: masks that are only applied at initialisation leak after this."""
    torch.manual_seed(1)
    model = MADE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        x = (torch.rand(64, 64) < 0.3).float()
        loss = bernoulli_nll(model(x), x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def bernoulli_log_probs(model: MADE, x: torch.Tensor) -> torch.Tensor:
    """[B, 64, 2]: log p(x_d = 1 | x_<d) and log p(x_d = 0 | x_<d), from the logits as the grader does."""
    logits = model.logits(x).double()
    return torch.stack([torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits)], dim=-1)


@pytest.mark.parametrize("d", [0, 1, 7, 8, 31, 63])
def test_made_is_autoregressive(d, trained_a_little):
    """Flipping pixel d (or every pixel from d on) must leave the log-probabilities of pixels 0..d unchanged.
    The grader does exactly this for every d."""
    base = (torch.rand(4, 64, generator=torch.Generator().manual_seed(d)) < 0.5).float()
    one, suffix = base.clone(), base.clone()
    one[:, d] = 1 - one[:, d]
    suffix[:, d:] = 1 - suffix[:, d:]
    for model in (untrained_made(), trained_a_little):
        lp = bernoulli_log_probs(model, torch.cat([base, one, suffix]))
        for changed in (lp[4:8], lp[8:]):
            diff = (changed[:, : d + 1] - lp[:4, : d + 1]).abs().amax(dim=(0, 2))
            assert diff.max() <= TOL, f"the log-probability of pixel {int(diff.argmax())} changed when pixel {d} changed"


def test_made_shapes():
    out = untrained_made().logits(torch.zeros(5, 64))
    assert out.shape == (5, 64) and out.dtype == torch.float32


def test_made_samples_are_binary_and_follow_the_seed():
    model = untrained_made()
    a = model.sample(16, seed=3)
    assert a.shape == (16, 64) and a.dtype == torch.float32
    assert ((a == 0) | (a == 1)).all()
    assert torch.equal(a, model.sample(16, seed=3))
    assert not torch.equal(a, model.sample(16, seed=4))


def test_made_samples_follow_its_own_logits(trained_a_little):
    """The grader's check: in your samples, pixel d is 1 as often as sigmoid(logit_d) says on average, given
    each sample's earlier pixels (it needs at most 0.05 at every pixel)."""
    s = trained_a_little.sample(4000, seed=0)
    p = torch.sigmoid(trained_a_little.logits(s).double())
    gap = (s.double().mean(0) - p.mean(0)).abs()
    assert gap.max() <= 0.05, f"pixel {int(gap.argmax())}: {float(s[:, int(gap.argmax())].mean()):.3f} of the samples are 1"


def test_digits_training_reaches_the_C_thresholds():
    source = practice_source(seed=1)
    train, test = source.sample(N_DIGITS_TRAIN, seed=1), source.sample(500, seed=2)
    model = fit_digits(train, seed=0, max_seconds=10)
    with torch.no_grad():
        logits = model.logits(test)
    excess = digits_excess(logits, test, source)             # nats per image above the source's own NLL
    captured = dependence_captured(logits, train, test, source)
    print(f"held-out NLL {excess:.2f} nats/image above the source's own (the grader needs at most 2.0 above its "
          f"secret source; this practice source is harder: the reference is about 5 above it); {captured:.0%} of "
          f"independent pixels' excess removed ({independent_nll(train, test) - digits_nll(logits, test):.2f} nats; "
          "the grader needs 50 % on its source; here at least 40 %)")
    assert excess <= 6.5
    assert excess > -0.5                                        # no model beats the source: below it, not a likelihood
    assert captured >= 0.4


def rebuilt(model, build):
    """What the grader does after training: a new model from model.config, with model's tensors and modes."""
    copy = build(model.config)
    copy.load_state_dict(model.state_dict())
    for (_, mine), (_, theirs) in zip(model.named_modules(), copy.named_modules(), strict=True):
        theirs.training = mine.training
    return copy


def same(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return torch.allclose(a, b)


def test_the_trained_models_survive_being_rebuilt_from_their_state():
    model = fit(make_sequences(2000, seed=3), seed=0, max_seconds=2)
    tokens = make_sequences(8, seed=4)
    with torch.no_grad():
        assert same(model.logits(tokens), rebuilt(model, build_model).logits(tokens)), "keep every setting in model.config and every tensor in the state_dict"
    train, _ = digits_split(seed=3)
    digits = fit_digits(train, seed=0, max_seconds=2)
    with torch.no_grad():
        assert same(digits.logits(train[:8]), rebuilt(digits, build_digits_model).logits(train[:8])), "keep every setting in model.config and every tensor in the state_dict"
