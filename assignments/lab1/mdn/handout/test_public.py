"""Public tests: the same kinds of checks the grader runs, on data you can see.

    python -m pytest test_public.py -q
Passing these does not guarantee full marks (the grader uses fresh data and tighter checks), but a
failure here will be a failure there.
"""

import math

import torch
from data import make_data
from mdn import MixtureDensityNetwork, fit, gaussian_nll, mixture_log_prob


def test_single_component_is_a_gaussian():
    mu, log_sigma = torch.tensor([[0.5]]), torch.tensor([[math.log(0.2)]])
    y = torch.tensor([[0.9]])
    expected = -0.5 * ((0.9 - 0.5) / 0.2) ** 2 - math.log(0.2) - 0.5 * math.log(2 * math.pi)
    got = mixture_log_prob(torch.zeros(1, 1), mu, log_sigma, y)
    assert got.shape == (1,)
    assert abs(got.item() - expected) < 1e-5


def test_gaussian_nll_is_squared_error_plus_a_constant_when_sigma_is_fixed():
    mu, y = torch.randn(5, 1), torch.randn(5, 1)
    log_sigma = torch.zeros(5, 1)
    nll = gaussian_nll(mu, log_sigma, y)
    assert nll.shape == (5,)
    assert torch.allclose(nll, 0.5 * (y - mu).squeeze(1) ** 2 + 0.5 * math.log(2 * math.pi), atol=1e-5)
    assert torch.allclose(nll, -mixture_log_prob(torch.zeros(5, 1), mu, log_sigma, y), atol=1e-5)


def test_two_equal_components_at_the_same_place_equal_one():
    mu, log_sigma, y = torch.zeros(3, 2), torch.zeros(3, 2), torch.randn(3, 1)
    log_pi = torch.full((3, 2), math.log(0.5))
    one = mixture_log_prob(torch.zeros(3, 1), mu[:, :1], log_sigma[:, :1], y)
    assert torch.allclose(mixture_log_prob(log_pi, mu, log_sigma, y), one, atol=1e-5)


def test_forward_shapes_and_simplex():
    model = MixtureDensityNetwork(n_components=4)
    log_pi, mu, log_sigma = model(torch.rand(16, 1))
    assert log_pi.shape == mu.shape == log_sigma.shape == (16, 4)
    assert torch.allclose(log_pi.exp().sum(-1), torch.ones(16), atol=1e-5)


def test_density_integrates_to_one():
    model = MixtureDensityNetwork()
    grid = torch.linspace(-6, 7, 20001).view(-1, 1)
    log_pi, mu, log_sigma = (t.expand(grid.shape[0], -1) for t in model(torch.tensor([[0.5]])))
    mass = torch.trapezoid(mixture_log_prob(log_pi, mu, log_sigma, grid).exp(), grid.view(-1))
    assert abs(mass.item() - 1) < 0.02


def test_training_beats_a_single_gaussian():
    x, y = make_data(4000, seed=1)
    x_test, y_test = make_data(4000, seed=2)
    model = fit(x, y, seed=0, max_seconds=20)
    with torch.no_grad():
        nll = -mixture_log_prob(*model(x_test), y_test).mean().item()
    print(f"test NLL {nll:.3f} nats (the grader's E threshold is -0.90)")
    assert nll < -0.9
