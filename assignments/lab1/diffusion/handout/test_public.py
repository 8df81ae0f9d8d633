"""Public tests: the same kinds of checks the grader runs, on inputs you can see.

    python -m pytest test_public.py -q          (the last test trains for 20 s)
Passing these does not guarantee full marks (the grader uses hidden inputs, fresh data and more
measures), but a failure here will be a failure there.
"""

import math

import pytest
import torch
from data import make_data, mode_stats
from diffusion import (
    build_model,
    conditional_path,
    conditional_score,
    conditional_vector_field,
    fit,
    flow_matching_loss,
    schedule,
)

PATHS = ["linear", "cosine"]


def inputs(batch=64, t_max=0.95, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, 2, generator=g, dtype=torch.float64)
    x1 = 6 * torch.rand(batch, 2, generator=g, dtype=torch.float64) - 3
    t = t_max * torch.rand(batch, 1, generator=g, dtype=torch.float64)
    return x0, x1, t


@pytest.mark.parametrize("path", PATHS)
def test_schedule_endpoints(path):
    alpha, sigma, _, _ = schedule(torch.tensor([[0.0], [1.0]]), path)
    assert alpha.shape == sigma.shape == (2, 1)
    assert torch.allclose(alpha.view(-1), torch.tensor([0.0, 1.0]), atol=1e-6), "alpha_0 = 0 (noise), alpha_1 = 1 (data)"
    assert torch.allclose(sigma.view(-1), torch.tensor([1.0, 0.0]), atol=1e-6), "sigma_0 = 1, sigma_1 = 0"


@pytest.mark.parametrize("path", PATHS)
def test_schedule_derivatives_by_autograd(path):
    t = torch.rand(16, 1, dtype=torch.float64, requires_grad=True)
    alpha, sigma, d_alpha, d_sigma = schedule(t, path)
    assert torch.allclose(torch.autograd.grad(alpha.sum(), t, retain_graph=True)[0], d_alpha, atol=1e-6)
    assert torch.allclose(torch.autograd.grad(sigma.sum(), t)[0], d_sigma, atol=1e-6)


def test_linear_path_halfway():
    x0, x1 = torch.tensor([[1.0, -1.0]]), torch.tensor([[2.0, 0.0]])
    assert torch.allclose(conditional_path(x0, x1, torch.tensor([[0.5]]), "linear"), torch.tensor([[1.5, -0.5]]))


@pytest.mark.parametrize("path", PATHS)
def test_vector_field_is_the_time_derivative_of_the_path(path):
    # This is the grader's check: d/dt of t -> conditional_path(x0, x1, t), by forward-mode autograd.
    x0, x1, t = inputs()
    xt, dxdt = torch.func.jvp(lambda s: conditional_path(x0, x1, s, path), (t,), (torch.ones_like(t),))
    assert torch.allclose(conditional_vector_field(xt, x1, t, path), dxdt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", PATHS)
def test_score_is_the_gradient_of_the_log_density(path):
    x0, x1, t = inputs(t_max=0.9)
    x = (conditional_path(x0, x1, t, path) + 0.3 * torch.randn_like(x0)).requires_grad_(True)
    alpha, sigma, _, _ = schedule(t, path)
    log_p = -0.5 * ((x - alpha * x1) / sigma).pow(2).sum(-1) - 2 * torch.log(sigma[:, 0]) - math.log(2 * math.pi)
    expected = torch.autograd.grad(log_p.sum(), x)[0]
    assert torch.allclose(conditional_score(x.detach(), x1, t, path), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", PATHS)
def test_loss_is_zero_at_the_target_and_a_mean_squared_norm(path):
    x0, x1, t = inputs()
    u = conditional_vector_field(conditional_path(x0, x1, t, path), x1, t, path)
    assert float(flow_matching_loss(u, x0, x1, t, path)) < 1e-10
    shifted = u + torch.tensor([3.0, 4.0], dtype=torch.float64)  # |(3, 4)|^2 = 25 for every row
    assert abs(float(flow_matching_loss(shifted, x0, x1, t, path)) - 25.0) < 1e-6


def test_training_and_sampling():
    x, modes = make_data(5000, seed=1)
    model = fit(x, seed=0, max_seconds=20)
    samples = model.sample(2000, steps=100, seed=1)
    assert samples.shape == (2000, 2)
    assert not torch.allclose(samples, model.sample(2000, steps=100, seed=2)), "samples must change with the seed"
    stats = mode_stats(samples, modes)
    print(stats, "(the grader's E thresholds: every mode covered, high quality >= 0.6)")
    assert stats["modes_covered"] == modes.count
    assert stats["high_quality"] >= 0.6


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
    model = fit(make_data(2000, seed=3)[0], seed=0, max_seconds=2)
    x, t = torch.randn(64, 2), torch.rand(64, 1)
    with torch.no_grad():
        assert same(model.velocity(x, t), rebuilt(model, build_model).velocity(x, t)), "keep every setting in model.config and every tensor in the state_dict"
