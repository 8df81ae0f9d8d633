"""Public tests: the same kinds of checks the grader runs, on data you can see.

    python -m pytest test_public.py -q
Passing these does not guarantee full marks (the grader draws its images from a secret source that
changes every run, and has more checks), but a failure here will be a failure there. The training test
trains for up to 20 s on images from data.practice_source, a source of the grader's kind, against a looser
bar than the grader's (that source is harder for a VAE).
"""

import math

import torch
from data import N_TRAIN, excess, practice_source, split
from vae import bernoulli_nll, build_model, fit, kl_normal, reparameterise


def test_kl_textbook_values():
    mu = torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    log_var = torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 0], [math.log(4.0), 0, 0, 0]])
    kl = kl_normal(mu, log_var)
    assert kl.shape == (3,)
    assert torch.allclose(kl, torch.tensor([2.0, 0.0, 0.5 * (4 - 1 - math.log(4))]), atol=1e-5)


def test_kl_matches_torch_distributions():
    mu, log_var = 1.5 * torch.randn(64, 5), torch.empty(64, 5).uniform_(-4, 2)
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl_normal(mu, log_var), expected, rtol=1e-4, atol=1e-5)


def test_reparameterise_value_and_gradients():
    mu = torch.randn(8, 3, requires_grad=True)
    log_var = torch.randn(8, 3, requires_grad=True)
    eps = torch.randn(8, 3)
    z = reparameterise(mu, log_var, eps)
    assert torch.allclose(z, mu + (0.5 * log_var).exp() * eps, atol=1e-6)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(8, 3))                                       # dz/dmu = 1
    assert torch.allclose(log_var.grad, 0.5 * (0.5 * log_var).exp().detach() * eps, atol=1e-6)  # dz/dlog_var


def test_zero_decoder_costs_64_ln_2():
    x = (torch.rand(10, 64) < 0.3).float()
    nll = bernoulli_nll(torch.zeros(10, 64), x)
    assert nll.shape == (10,)
    assert torch.allclose(nll, torch.full((10,), 64 * math.log(2)), atol=1e-4)


def test_bernoulli_nll_is_stable_for_large_logits():
    x = (torch.rand(4, 64) < 0.5).float()
    logits = 30.0 * (2 * torch.randint(0, 2, (4, 64)).float() - 1)
    expected = (torch.nn.functional.softplus(logits) - x * logits).sum(-1)
    assert torch.allclose(bernoulli_nll(logits, x), expected, rtol=1e-5)


def test_shapes():
    model = fit(split(seed=2)[0], seed=0, max_seconds=3)      # any model of yours: the shapes are what count
    mu, log_var = model.encode(torch.rand(7, 64).round())
    d = mu.shape[1]
    assert mu.shape == log_var.shape == (7, d)
    assert model.decode(torch.randn(7, d)).shape == (7, 64)


def test_training_bounds_and_samples():
    source = practice_source(seed=1)
    train, held_out = source.sample(N_TRAIN, seed=1), source.sample(500, seed=2)
    model = fit(train, seed=0, max_seconds=20)
    result = excess(model, source, held_out)               # nats per image above the source's own NLL
    print({k: round(v, 3) for k, v in result.items()})
    # The practice source is harder for a VAE than the grader's (the reference: about 6 nats above it here, about 2
    # above the grader's, whose E threshold is 4.0); independent pixels are about 12 above either.
    assert result["-ELBO"] < 9.0
    assert result["-IWAE-300"] <= result["-ELBO"]          # importance weighting only tightens the bound
    assert result["-IWAE-300"] > -0.5                      # no model beats the source: below it, not a bound
    logits = model.decode(torch.randn(256, model.encode(held_out[:1])[0].shape[1]))
    assert ((logits < 0) | (logits > 1)).float().mean() > 0.5, "decode should return logits, not probabilities"
    a, b, c = model.sample(32, seed=1), model.sample(32, seed=1), model.sample(32, seed=2)
    assert a.shape == (32, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert ((a == 0) | (a == 1)).all()


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


def test_the_trained_model_survives_being_rebuilt_from_its_state():
    train, _ = split(seed=3)
    model = fit(train, seed=0, max_seconds=2)
    with torch.no_grad():
        copy = rebuilt(model, build_model)
        assert same(model.encode(train[:8]), copy.encode(train[:8])), "keep every setting in model.config and every tensor in the state_dict"
        z = torch.randn(8, copy.encode(train[:1])[0].shape[1])
        assert same(model.decode(z), copy.decode(z)), "keep every setting in model.config and every tensor in the state_dict"
