"""Public tests: the same kinds of checks the grader runs, on data you can see.

    python -m pytest test_public.py -q
Passing these does not guarantee full marks (the grader uses fresh data and its own thresholds), but
a failure here will be a failure there. The model is trained once (up to 20 s) and shared by the tests;
so is the C model (another 20 s at most), whose tests are skipped while fit_c raises NotImplementedError.
"""

import math

import pytest
import torch
from data import make_moons, make_spirals, spirals_log_prob
from flows import build_model, build_model_c, fit, fit_c


@pytest.fixture(scope="module")
def model():
    return fit(make_moons(10000, seed=1), seed=0, max_seconds=20)


@pytest.fixture(scope="module")
def model_c():
    try:
        return fit_c(make_spirals(10000, seed=1), seed=0, max_seconds=20)
    except NotImplementedError:
        pytest.skip("fit_c is not implemented (the C tier is optional)")


def base_nll(z, log_det):
    """What the grader computes: -log p(x) = 0.5 |z|^2 + log(2 pi) - log|det dz/dx|."""
    return 0.5 * (z**2).sum(-1) + math.log(2 * math.pi) - log_det


def test_shapes(model):
    z, log_det = model.forward(torch.randn(7, 2))
    assert z.shape == (7, 2) and log_det.shape == (7,)
    assert model.inverse(torch.randn(5, 2)).shape == (5, 2)
    assert model.sample(11, seed=0).shape == (11, 2)


def test_round_trip(model):
    x = torch.cat([make_moons(500, seed=2), 4 * torch.rand(200, 2) - 1.5])
    with torch.no_grad():
        x_back = model.inverse(model.forward(x)[0])
        z = torch.randn(500, 2)
        z_back = model.forward(model.inverse(z))[0]
    assert ((x_back - x).abs() / (1 + x.abs())).max() < 1e-4
    assert ((z_back - z).abs() / (1 + z.abs())).max() < 1e-4


def test_log_det_matches_autograd(model):
    """The grader cannot run autograd on your model (it lives in a sandbox), so it uses finite
    differences; here you can compare with the exact Jacobian."""
    x = torch.cat([make_moons(20, seed=3), 4 * torch.rand(5, 2) - 1.5])
    _, log_det = model.forward(x)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda row: model.forward(row.view(1, 2))[0].view(2), x[i])
        assert abs(log_det[i].item() - torch.linalg.slogdet(jac)[1].item()) < 1e-3, f"point {i}"


def grid_mass(model, x0, x1, y0, y1, step=0.02):
    xs = torch.arange(x0 + step / 2, x1, step)
    ys = torch.arange(y0 + step / 2, y1, step)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).view(-1, 2)
    with torch.no_grad():
        mass = sum(torch.exp(-base_nll(*model.forward(rows))).sum().item() for rows in grid.split(16384))
    return mass * step**2


def test_density_integrates_to_one(model):
    mass = grid_mass(model, -2.5, 3.5, -2.0, 2.5)
    print(f"grid mass {mass:.4f}")
    assert 0.98 <= mass <= 1.01


def test_samples_use_the_seed(model):
    a, b, c = model.sample(500, seed=1), model.sample(500, seed=1), model.sample(500, seed=2)
    assert torch.allclose(a, b) and not torch.allclose(a, c)


def test_test_nll(model):
    with torch.no_grad():
        nll = base_nll(*model.forward(make_moons(20000, seed=4))).mean().item()
    print(f"test NLL {nll:.3f} nats per point (E needs <= 1.25; the true density scores about 1.01)")
    assert nll <= 1.25


# ---- C tier: two spirals ----

def test_c_is_a_flow(model_c):
    """Round trip (99th percentile, where the data and the samples live) and log_det against autograd."""
    x = make_spirals(2000, seed=2)
    z = torch.randn(1000, 2)
    with torch.no_grad():
        err_x = ((model_c.inverse(model_c.forward(x)[0]) - x).abs() / (1 + x.abs())).amax(1)
        err_z = ((model_c.forward(model_c.inverse(z))[0] - z).abs() / (1 + z.abs())).amax(1)
    assert torch.cat([err_x, err_z]).quantile(0.99) < 1e-4
    _, log_det = model_c.forward(x[:20])
    for i in range(20):
        jac = torch.autograd.functional.jacobian(lambda row: model_c.forward(row.view(1, 2))[0].view(2), x[i])
        assert abs(log_det[i].item() - torch.linalg.slogdet(jac)[1].item()) < 1e-3, f"point {i}"


def test_c_density_integrates_to_one(model_c):
    mass = grid_mass(model_c, -4.5, 4.5, -4.5, 4.5)
    print(f"C grid mass {mass:.4f}")
    assert 0.98 <= mass <= 1.01


def test_c_close_to_the_true_density(model_c):
    x = make_spirals(20000, seed=4)
    with torch.no_grad():
        nll = base_nll(*model_c.forward(x)).mean().item()
    truth = -spirals_log_prob(x).mean().item()
    print(f"C test NLL {nll:.3f}, the true density {truth:.3f}: {nll - truth:.3f} nats from the truth (C needs <= 0.25)")
    assert nll - truth <= 0.25


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


def test_the_trained_model_survives_being_rebuilt_from_its_state(model):
    x = make_moons(64, seed=5).float()
    with torch.no_grad():
        assert same(model(x), rebuilt(model, build_model)(x)), "keep every setting in model.config and every tensor in the state_dict"


def test_the_c_model_survives_being_rebuilt_from_its_state(model_c):
    x = make_spirals(64, seed=5).float()
    with torch.no_grad():
        assert same(model_c(x), rebuilt(model_c, build_model_c)(x)), "keep every setting in model.config and every tensor in the state_dict"
