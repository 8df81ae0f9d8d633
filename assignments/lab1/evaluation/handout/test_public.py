"""Public tests: the same kinds of checks the grader runs, on inputs you can see.

    pip install torch numpy pytest scipy scikit-learn      # scipy / scikit-learn only for these tests
    python -m pytest test_public.py -q
Passing these does not guarantee full marks (the grader uses fresh inputs and its own feature extractor),
but a failure here will be a failure there. The inputs are float32, as the grader sends them, and every
comparison uses the grader's own tolerance (below): what the grader accepts passes here too.
"""

import math

import pytest
import torch
from evaluation import (
    density_coverage,
    diagnose,
    frechet_distance,
    frechet_from_moments,
    memorisation_fraction,
    mmd2_unbiased,
    mos_confidence_interval,
    paired_t_test,
    precision_recall,
    raters_needed,
    sliced_wasserstein,
)

torch.set_default_dtype(torch.float64)

# The grader's tolerances (part.toml), for the same comparisons.
FD_TOL = 1e-3  # |yours - exact| / (1 + |exact|)
MMD_TOL = 1e-4  # |yours - exact|
SW_TOL = 1e-4  # |yours - exact| / exact
KNN_TOL = 0.01  # precision, recall, density, coverage, memorisation fraction
STATS_TOL = 1e-4  # MOS interval ends; t (relative to 1 + |t|) and p of the paired test


def sent(*tensors):
    """What the grader sends: float32 values (compare with answers computed from these, in float64)."""
    out = tuple(t.float() for t in tensors)
    return out[0] if len(out) == 1 else out


def close(yours: float, exact: float, tol: float = FD_TOL) -> bool:
    return abs(yours - exact) <= tol * (1 + abs(exact))


def random_cov(gen: torch.Generator, d: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
    return (q * torch.exp(torch.empty(d).uniform_(-3, 1.6, generator=gen))) @ q.T


# ---------------------------------------------------------------- Fréchet distance

def test_frechet_one_dimension():
    # (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2 = 1.5^2 + 1.5^2
    fd = frechet_from_moments(*sent(torch.tensor([0.3]), torch.tensor([[0.25]]), torch.tensor([-1.2]),
                                    torch.tensor([[4.0]])))
    assert close(fd, 4.5)


def test_frechet_diagonal_and_identical():
    a, b = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([2.0, 1.0, 0.5])
    mu = torch.tensor([1.0, 0.0, -1.0])
    expected = 1.0 + ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    assert close(frechet_from_moments(*sent(mu, torch.diag(a), mu + torch.tensor([1.0, 0, 0]), torch.diag(b))), expected)
    cov = sent(random_cov(torch.Generator().manual_seed(0), 6))
    assert close(frechet_from_moments(*sent(mu.repeat(2), cov, mu.repeat(2), cov)), 0.0)


def test_frechet_general_covariances():
    """Against another route to tr((AB)^1/2): the eigenvalues of the (non-symmetric) product AB."""
    gen = torch.Generator().manual_seed(1)
    a, b = (m.double() for m in sent(random_cov(gen, 10), random_cov(gen, 10)))
    trace_sqrt = torch.linalg.eigvals(a @ b).real.clamp_min(0).sqrt().sum()
    expected = (torch.trace(a) + torch.trace(b) - 2 * trace_sqrt).item()
    fd = frechet_from_moments(*sent(torch.zeros(10), a, torch.zeros(10), b))
    assert close(fd, expected)
    # tr(A^1/2 B^1/2) is NOT the same thing when A and B do not commute:
    def root(m):
        vals, vecs = torch.linalg.eigh(m)
        return (vecs * vals.sqrt()) @ vecs.T
    wrong = (torch.trace(a) + torch.trace(b) - 2 * torch.trace(root(a) @ root(b))).item()
    assert not close(fd, wrong)


def test_frechet_distance_fits_mean_and_unbiased_covariance():
    gen = torch.Generator().manual_seed(2)
    x, y = (t.double() for t in sent(torch.randn(300, 5, generator=gen), 1.5 * torch.randn(200, 5, generator=gen) + 0.3))
    expected = frechet_from_moments(x.mean(0), torch.cov(x.T), y.mean(0), torch.cov(y.T))
    assert close(frechet_distance(*sent(x, y)), expected)
    few_a, few_b = (t.double() for t in sent(torch.randn(15, 5, generator=gen), torch.randn(12, 5, generator=gen)))
    unbiased = frechet_from_moments(few_a.mean(0), torch.cov(few_a.T), few_b.mean(0), torch.cov(few_b.T))
    assert close(frechet_distance(*sent(few_a, few_b)), unbiased), "divide the covariances by N - 1"


# ---------------------------------------------------------------- MMD and sliced Wasserstein

def test_mmd_against_loops():
    gen = torch.Generator().manual_seed(3)
    x, y = (t.double() for t in sent(torch.randn(7, 2, generator=gen), torch.randn(5, 2, generator=gen) + 0.5))
    h = 0.8

    def k(a, b):
        return math.exp(-((a - b) ** 2).sum().item() / (2 * h * h))

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert abs(mmd2_unbiased(*sent(x, y), h) - (xx + yy - 2 * xy)) <= MMD_TOL


def test_mmd_is_unbiased():
    """Same distribution: the unbiased estimate averages 0 (a biased one is always positive)."""
    gen = torch.Generator().manual_seed(4)
    values = torch.tensor([mmd2_unbiased(*sent(torch.randn(40, 3, generator=gen), torch.randn(30, 3, generator=gen)), 1.5)
                           for _ in range(200)])
    assert abs(values.mean().item()) < 3 * values.std().item() / math.sqrt(200)
    assert (values < 0).any()


def test_sliced_wasserstein_of_a_shifted_copy():
    gen = torch.Generator().manual_seed(5)
    x = sent(torch.randn(100, 3, generator=gen)).double()
    shift = torch.tensor([1.0, -2.0, 0.5])
    theta = torch.randn(16, 3, generator=gen)
    theta = sent(theta / theta.norm(dim=1, keepdim=True)).double()
    y = sent((x + shift)[torch.randperm(100, generator=gen)]).double()  # the order of the rows must not matter
    expected = (theta @ (y.mean(0) - x.mean(0))).pow(2).mean().sqrt().item()  # every projection moves by shift . theta
    assert abs(sliced_wasserstein(*sent(x, y, theta)) - expected) <= SW_TOL * expected


# ---------------------------------------------------------------- nearest-neighbour metrics

def brute_radius(points, k):
    return torch.tensor([sorted((points - p).norm(dim=1).tolist())[k] for p in points])


def test_precision_recall_against_loops_and_mode_dropping():
    gen = torch.Generator().manual_seed(6)
    centres = torch.tensor([[-4.0, 0.0], [4.0, 0.0]])
    real = centres[torch.arange(60) % 2] + torch.randn(60, 2, generator=gen)
    fake = centres[0] + torch.randn(40, 2, generator=gen)  # one of the two modes only
    real, fake = (t.double() for t in sent(real, fake))
    p, r = precision_recall(*sent(real, fake), k=3)
    rr, fr = brute_radius(real, 3), brute_radius(fake, 3)
    d = torch.cdist(real, fake)
    assert abs(p - (d <= rr[:, None]).any(0).double().mean().item()) <= KNN_TOL
    assert abs(r - (d <= fr[None, :]).any(1).double().mean().item()) <= KNN_TOL
    assert p > 0.85 and r < 0.6  # realistic samples, half the modes missing


def test_density_coverage_against_loops():
    gen = torch.Generator().manual_seed(7)
    real, fake = (t.double() for t in sent(torch.randn(50, 3, generator=gen), 0.5 * torch.randn(30, 3, generator=gen)))
    inside = torch.cdist(real, fake) <= brute_radius(real, 5)[:, None]
    density, coverage = density_coverage(*sent(real, fake), k=5)
    assert abs(density - inside.sum().item() / (5 * 30)) <= KNN_TOL
    assert abs(coverage - inside.any(1).double().mean().item()) <= KNN_TOL


def test_memorisation_fraction():
    gen = torch.Generator().manual_seed(8)
    train = sent(torch.rand(300, 64, generator=gen))
    copies = sent(train[:50] + 0.01 * torch.randn(50, 64, generator=gen))
    fresh = sent(torch.rand(50, 64, generator=gen))
    assert abs(memorisation_fraction(train, copies, 1 / 3) - 1.0) <= KNN_TOL
    assert abs(memorisation_fraction(train, fresh, 1 / 3)) <= KNN_TOL
    assert abs(memorisation_fraction(train, torch.cat([copies[:20], fresh[:30]]), 1 / 3) - 0.4) <= KNN_TOL
    # in between: halfway from a training image to a new one; the rule is on distances, not squared ones
    between = sent(0.5 * train[100:150] + 0.5 * fresh)
    d = torch.cdist(between.double(), train.double()).topk(2, largest=False).values
    for ratio in (1 / 3, 0.5, 0.7):
        expected = (d[:, 0] < ratio * d[:, 1]).double().mean().item()
        assert abs(memorisation_fraction(train, between, ratio) - expected) <= KNN_TOL


# ---------------------------------------------------------------- diagnosis

@pytest.mark.parametrize("seed", [0, 1])
def test_diagnose_sample_sets_like_the_graders(seed):
    data = pytest.importorskip("data")
    pytest.importorskip("sklearn")
    split = data.DigitSplit(seed)
    for kind in data.KINDS:
        assert diagnose(split.train, split.reference, split.make_sample_set(kind)) == kind


# ---------------------------------------------------------------- subjective tests

def test_mos_interval_by_hand():
    scores = torch.tensor([3.0, 4.0, 4.0, 5.0, 2.0, 4.0])
    mean, low, high = mos_confidence_interval(sent(scores), 0.95)
    half = 2.570581836 * scores.std().item() / math.sqrt(6)  # t_{0.975, 5}
    assert abs(mean - 11 / 3) <= STATS_TOL
    assert abs(low - (11 / 3 - half)) <= STATS_TOL and abs(high - (11 / 3 + half)) <= STATS_TOL


def test_mos_interval_and_paired_test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    gen = torch.Generator().manual_seed(9)
    scores = torch.randint(1, 6, (15,), generator=gen).double()
    _, low, high = mos_confidence_interval(sent(scores), 0.9)
    lo, hi = stats.t.interval(0.9, 14, loc=scores.mean().item(), scale=stats.sem(scores.numpy()))
    assert abs(low - lo) <= STATS_TOL and abs(high - hi) <= STATS_TOL
    rater = 60 + 12 * torch.randn(20, generator=gen)
    for effect in (3.0, -3.0):  # system b worse, then better: the two-sided p must not care
        a, b = (t.double() for t in sent(rater + 6 * torch.randn(20, generator=gen),
                                         rater - effect + 6 * torch.randn(20, generator=gen)))
        t, p = paired_t_test(*sent(a, b))
        ref = stats.ttest_rel(a.numpy(), b.numpy())
        assert abs(t - ref.statistic) <= STATS_TOL * (1 + abs(ref.statistic)) and abs(p - ref.pvalue) <= STATS_TOL


def test_raters_needed():
    # ((1.959964 + 0.841621) * 1.0 / 0.5)^2 = 31.4 -> 32 raters
    assert raters_needed(0.5, 1.0, 0.05, 0.8) == 32
    assert isinstance(raters_needed(0.3, 1.2, 0.01, 0.9), int)
