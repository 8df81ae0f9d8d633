"""Every feedback branch of the VAE part's checks says what was measured (issue 17, item 3), and the secret
digit source behind its data is an exact density (issue 19, item 3).

The hint functions of assignments/lab1/vae/checks.py are called with values computed as the checks compute
them: the sampler audit on real Bernoulli draws through a source's pixel probabilities (honest, thresholded,
pixels shuffled across images, collapsed, another region of latent space), the copy test on noisy copies of
the training images and on fresh images. One known-wrong (dropout left on) is graded in-process (the
unsafe-inprocess backend, 1 s of training) end to end: the rebuilt model already answers otherwise than
fit's, so the determinism check names model.eval() and no likelihood counts. About 10 s.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from grader.checklib.digit_mixtures import DigitMixture, StaffDecoder
from grader.engine import grade, load_checks_module
from grader.parts import build_known_wrong, load_part
from grader.workspace import submission_workspace


@pytest.fixture(scope="module")
def vae():
    return load_checks_module(load_part("vae"))


@pytest.fixture(scope="module")
def source(vae) -> DigitMixture:
    return DigitMixture.draw(StaffDecoder.load(vae.HIDDEN / "digit_source.safetensors"), np.random.default_rng(5))


def test_the_source_log_prob_is_the_exact_mixture_density():
    logits = torch.tensor(np.random.default_rng(0).normal(0, 3, size=(3, 64)))
    mixture = DigitMixture(logits)
    x = mixture.sample(np.random.default_rng(1), 20)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    per_component = torch.stack([torch.distributions.Bernoulli(logits=row).log_prob(x).sum(-1) for row in logits])
    expected = torch.logsumexp(per_component, dim=0) - math.log(3)
    assert torch.allclose(mixture.log_prob(x, chunk=7), expected, atol=1e-9)


def test_two_runs_get_different_sources(vae):
    decoder = StaffDecoder.load(vae.HIDDEN / "digit_source.safetensors")
    a, b = (DigitMixture.draw(decoder, np.random.default_rng(s)) for s in (1, 2))
    x = a.sample(np.random.default_rng(3), 500)
    assert float((a.log_prob(x) - b.log_prob(x)).mean()) > 1.0      # one run's images are unlikely under another's


def test_kl_hint_names_each_slip_and_only_then(vae):
    rng = np.random.default_rng(0)
    mu, log_var = torch.tensor(rng.normal(0, 1.5, (50, 4))), torch.tensor(rng.uniform(-4, 2, (50, 4)))
    ours = vae.kl_standard_normal(mu, log_var)
    cases = [f"case {i}" for i in range(50)]
    assert vae.kl_hint(ours, ours, mu, log_var, cases) == ""
    as_log_std = ((mu**2 + (2 * log_var).exp()) / 2 - 0.5 - log_var).sum(-1)
    for theirs, words in [(-ours, "sign is flipped"), (2 * ours, "factor 1/2 is missing"),
                          (as_log_std, "treats log_var as log sigma"), (ours / 4, "mean over the latent")]:
        hint = vae.kl_hint(theirs, ours, mu, log_var, cases)
        assert words in hint and hint.startswith("For case 0"), hint
    general = vae.kl_hint(ours + 1.0, ours, mu, log_var, cases)
    assert "It " not in general and general.endswith("over the latent dimensions.")


def test_reparameterise_hint_names_each_slip(vae):
    rng = np.random.default_rng(1)
    mu, log_var, eps = (torch.tensor(rng.normal(0, 1, (30, 3))) for _ in range(3))
    assert "exp(log_var), the variance" in vae.reparameterise_hint(mu + log_var.exp() * eps, mu, log_var, eps)
    assert "log_var itself" in vae.reparameterise_hint(mu + log_var * eps, mu, log_var, eps)
    assert "ignores log_var" in vae.reparameterise_hint(mu + eps, mu, log_var, eps)
    assert vae.reparameterise_hint(mu - eps, mu, log_var, eps).startswith("Return mu")


def test_bernoulli_hint_branches(vae):
    rng = np.random.default_rng(2)
    x = torch.tensor((rng.random((96, 64)) < 0.4).astype(np.float64))
    logits = torch.tensor(rng.normal(0, 4, (96, 64)))
    logits[:32] = 0.0
    logits[32:64] = torch.tensor(rng.choice([-30.0, 30.0], (32, 64)))
    ours = vae.bernoulli_nll(logits, x)
    zero, large = slice(0, 32), slice(32, 64)
    assert "mean over the 64 pixels" in vae.bernoulli_hint(ours / 64, ours, zero, large)
    as_probabilities = -(x * logits.clamp(1e-6, 1).log() + (1 - x) * (1 - logits).clamp(1e-6, 1).log()).sum(-1)
    assert "not probabilities" in vae.bernoulli_hint(as_probabilities, ours, zero, large)
    p = torch.sigmoid(logits.float())
    naive = -(x * p.log().clamp_min(-100) + (1 - x) * (1 - p).log().clamp_min(-100)).sum(-1).double()
    assert "large ones" in vae.bernoulli_hint(naive, ours, zero, large)
    assert vae.bernoulli_hint(ours, ours, zero, large).startswith("-log p(x | l)")


def test_determinism_hint_tells_randomness_from_batching(vae):
    decode = {"encode's mu": 0.0, "encode's log_var": 0.0, "decode": 0.3}
    assert "draws random numbers" in vae.determinism_hint(decode, twins=0.2)
    assert "rest of the batch" in vae.determinism_hint(decode, twins=0.0)
    both = vae.determinism_hint(decode, twins=math.nan)          # no copies happened to share a call
    assert "random numbers" in both and "rest of the batch" in both
    encode = {"encode's mu": 0.1, "encode's log_var": 0.0, "decode": 0.0}
    assert "encode returned other" in vae.determinism_hint(encode, twins=0.0)


def test_decoder_and_bound_hints(vae):
    assert "returns probabilities" in vae.decoder_hint(36.5, inside=1.0)
    assert "never trained" in vae.decoder_hint(64 * math.log(2), inside=0.5)
    assert "reconstructs the held-out images poorly" in vae.decoder_hint(33.0, inside=0.3)
    assert "posterior collapse" in vae.bound_hint(0.1, 20.0)
    assert "returns probabilities" in vae.bound_hint(5.5, 38.0, probabilities=True)
    assert "your decoder was not trained" in vae.bound_hint(0.14, 601.8)
    assert "sign of the KL" in vae.bound_hint(4.9e17, 22.0)
    assert "Train longer" in vae.bound_hint(8.0, 12.0)
    assert "Train longer" in vae.bound_hint(8.0, 12.0, elbo_gap=0.6)          # an honest ELBO-trained gap
    looser = vae.bound_hint(3.5, 12.9, elbo_gap=2.9)                           # wrong/encode_returns_log_std
    assert "looser than your" in looser and "not log sigma" in looser, looser
    assert "BELOW" in vae.floor_hint(-0.5, 0.1) and "5.0 standard errors" in vae.floor_hint(-0.5, 0.1)


def bernoulli(probs: torch.Tensor, seed: int) -> torch.Tensor:
    return (torch.from_numpy(np.random.default_rng(seed).random(tuple(probs.shape))) < probs).double()


def test_the_sampler_audit_passes_honest_draws_and_names_each_mistake(vae, source):
    rng = np.random.default_rng(7)
    n = vae.N_SAMPLES
    probs = torch.sigmoid(source.logits[torch.from_numpy(rng.integers(0, len(source.logits), n))])
    threshold = load_part("vae").checks["samples"].threshold
    honest = vae.audit_samples(bernoulli(probs, 1), probs, rng)
    assert honest.binary and honest.largest_z < threshold, honest

    def hint_for(theirs: torch.Tensor) -> tuple[vae.SampleAudit, str]:
        audit = vae.audit_samples(theirs, probs, rng)
        return audit, vae.samples_hint(audit, n)

    audit, hint = hint_for(probs)
    assert not audit.binary and "not 0 or 1" in hint
    as_probabilities = vae.audit_samples(bernoulli(probs, 5), torch.sigmoid(probs), rng)   # decode's outputs in [0, 1]
    assert as_probabilities.largest_z > threshold
    assert "returns probabilities" in vae.samples_hint(as_probabilities, n)
    audit, hint = hint_for(bernoulli(probs[:1], 2).expand(n, -1))
    assert audit.largest_z > threshold and "Only 1 of your" in hint
    audit, hint = hint_for((probs > 0.5).double())
    assert audit.largest_z > threshold and "thresholded at 0.5" in hint
    drawn = bernoulli(probs, 3)
    shuffled = torch.stack([col[torch.from_numpy(rng.permutation(n))] for col in drawn.T], dim=1)
    audit, hint = hint_for(shuffled)
    assert audit.largest_z > threshold and "draw ONE z per image" in hint, hint
    elsewhere = DigitMixture.draw(StaffDecoder.load(vae.HIDDEN / "digit_source.safetensors"), np.random.default_rng(9))
    other = torch.sigmoid(elsewhere.logits[torch.from_numpy(rng.integers(0, len(elsewhere.logits), n))])
    audit, hint = hint_for(bernoulli(other, 4))
    assert audit.largest_z > threshold and "Draw z from the prior" in hint, hint


def test_the_copy_test_tells_fresh_samples_from_noisy_copies(vae, source):
    rng = np.random.default_rng(11)
    train = source.sample(rng, vae.N_TRAIN)
    fresh = source.sample(rng, vae.N_TRAIN)
    limit = load_part("vae").checks["not_copies"].threshold
    honest = vae.closer_share(source.sample(rng, vae.N_COPY), train, fresh)
    assert abs(honest - 0.5) < 0.06, honest
    copies = train[torch.from_numpy(rng.integers(0, len(train), vae.N_COPY))]
    flipped = (copies + (torch.from_numpy(rng.random(tuple(copies.shape))) < 0.03).double()) % 2   # ~2 pixels
    share = vae.closer_share(flipped, train, fresh)
    assert share > limit and "reproduce training images, changed a little" in vae.copy_hint(share), share
    exact = vae.closer_share(copies, train, fresh)
    assert exact > limit and "sampler starts from training images" in vae.copy_hint(exact), exact


def test_dropout_left_on_is_named_by_the_determinism_check(tmp_path):
    part = load_part("vae")
    part = dataclasses.replace(part, resources=dataclasses.replace(part.resources, train_seconds_cpu=1.0))
    folder = build_known_wrong(part.path / "wrong" / "no_eval_dropout", tmp_path / "wrong")
    with submission_workspace(folder, part) as workspace:
        report = grade(part, workspace, backend_name="unsafe-inprocess", seed=3)
    checks = {c.name: c for c in report.checks}
    feedback = checks["deterministic"].feedback
    assert not checks["deterministic"].passed and "eval mode" in feedback, feedback
    assert not any(checks[name].passed for name in ("elbo", "elbo_c", "iwae_c", "samples")), report
    assert checks["kl_normal"].passed and checks["bernoulli_nll"].passed
