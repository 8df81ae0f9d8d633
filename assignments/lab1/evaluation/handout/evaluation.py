"""LAB1 part 7: evaluating generative models objectively and subjectively.

Fill in the TODOs. The grader imports this file and calls the functions below one by one with its own
inputs (float32 torch tensors, Python numbers); it compares every value with its own implementation.
You may import only the standard library, torch and numpy (and tdist.py, provided: Student's t).
Work in float64 inside each function (`x.double()`): the Fréchet distance needs it.

Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
from statistics import NormalDist  # noqa: F401  (normal quantiles: NormalDist().inv_cdf(0.975))

import torch
from tdist import t_cdf, t_ppf, t_sf  # noqa: F401  (Student's t, provided)

# ---------------------------------------------------------------- Fréchet distance


def frechet_from_moments(mu_a: torch.Tensor, cov_a: torch.Tensor, mu_b: torch.Tensor,
                         cov_b: torch.Tensor) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu_a, cov_a) and N(mu_b, cov_b): [D], [D,D], [D], [D,D].

        ||mu_a - mu_b||^2 + tr(cov_a + cov_b - 2 (cov_a^1/2 cov_b cov_a^1/2)^1/2)

    The square roots are *matrix* square roots. Both matrices are symmetric positive semi-definite, so
    compute each root from torch.linalg.eigh (clamp tiny negative eigenvalues at 0). Note that
    tr((cov_a cov_b)^1/2) = tr((cov_a^1/2 cov_b cov_a^1/2)^1/2), and the latter matrix is symmetric.
    """
    # TODO
    raise NotImplementedError("frechet_from_moments")


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D]: their means and
    unbiased covariances (divide by N - 1, like torch.cov / np.cov). With Inception features this is FID."""
    # TODO: use frechet_from_moments.
    raise NotImplementedError("frechet_distance")


# ---------------------------------------------------------------- kernel and transport distances


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy between samples x [N, D] and y [M, D]
    with the RBF kernel k(a, b) = exp(-||a - b||^2 / (2 bandwidth^2)):

        1/(N(N-1)) sum_{i != j} k(x_i, x_j) + 1/(M(M-1)) sum_{i != j} k(y_i, y_j) - 2/(NM) sum_{i,j} k(x_i, y_j)

    It is 0 on average when x and y come from the same distribution, so it can be negative.
    """
    # TODO: torch.cdist gives all pairwise distances.
    raise NotImplementedError("mmd2_unbiased")


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: torch.Tensor) -> float:
    """Sliced 2-Wasserstein distance between x [N, D] and y [N, D] (as many points each) along the
    unit directions `projections` [P, D] (use them as given):

        sqrt( 1/P sum_p 1/N sum_i (sort(x theta_p)_i - sort(y theta_p)_i)^2 )

    In one dimension the optimal transport plan matches sorted values.
    """
    # TODO
    raise NotImplementedError("sliced_wasserstein")


# ---------------------------------------------------------------- nearest-neighbour metrics


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of fake [M, D] against real [N, D].

    The k-NN radius of a point is its distance to the k-th nearest *other* point of its own set.
    precision = share of fake samples within the k-NN radius of at least one real sample (<=);
    recall    = share of real samples within the k-NN radius of at least one fake sample (<=).
    Returns (precision, recall).
    """
    # TODO
    raise NotImplementedError("precision_recall")


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020), both with the *real* points' k-NN radii r_i:

    density  = 1/(k M) sum_j sum_i [ ||fake_j - real_i|| <= r_i ]     (about 1 for a perfect model)
    coverage = 1/N sum_i [ min_j ||real_i - fake_j|| <= r_i ]
    Returns (density, coverage). (Tier A.)
    """
    # TODO
    raise NotImplementedError("density_coverage")


def memorisation_fraction(train: torch.Tensor, samples: torch.Tensor, ratio: float = 1 / 3) -> float:
    """Share of samples [M, D] that look copied from the training set [N, D]: a sample counts when
    d1 < ratio * d2, where d1 and d2 are its distances to the nearest and second-nearest training point.
    """
    # TODO: torch.topk(..., 2, largest=False) on the distance matrix.
    raise NotImplementedError("memorisation_fraction")


# ---------------------------------------------------------------- diagnosis of a black box


def diagnose(train: torch.Tensor, reference: torch.Tensor, samples: torch.Tensor) -> str:
    """Say what is wrong with a generator from its samples alone.

    All three are flattened 8x8 digit images with pixels in [0, 1]: `train` [N, 64] is what the
    generator was trained on, `reference` [R, 64] are held-out real digits, `samples` [M, 64] came from
    the black box. Return exactly one of
        "good"          - samples look like fresh real digits;
        "mode_dropped"  - sharp, realistic digits, but only some of the classes;
        "blurred"       - every digit smoothed (lost detail);
        "memorised"     - copies of training images (with a little noise).
    You do not get the grader's feature extractor: work in pixel space with your own metrics above,
    plus anything else you can compute (e.g. how sharp the images are). Decide from measurements
    compared with the reference, and check the cases in a sensible order.
    """
    # TODO
    raise NotImplementedError("diagnose")


# ---------------------------------------------------------------- subjective tests


def mos_confidence_interval(scores: torch.Tensor, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean opinion score of ratings [N] (e.g. 1-5) and its two-sided Student-t confidence interval:

        mean -/+ t_{(1 + confidence)/2, N-1} * s / sqrt(N),   s = sample standard deviation (N - 1).
    Returns (mean, low, high).
    """
    # TODO: t_ppf(q, df) from tdist.py is the q-quantile of Student's t.
    raise NotImplementedError("mos_confidence_interval")


def paired_t_test(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Paired t-test that two systems score the same, from scores a[i], b[i] that rater i gave to
    system A and B. Returns (t, p): the t statistic of the differences a - b and the two-sided p-value."""
    # TODO: t_sf(x, df) from tdist.py is P(T > x).
    raise NotImplementedError("paired_t_test")


def raters_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """How many raters a paired comparison needs to detect a mean difference `effect` between two
    systems, when the per-rater difference has standard deviation `sd`, with a two-sided test at level
    `alpha` and the given power. Normal approximation, rounded up to an integer:

        n = ceil( ((z_{1 - alpha/2} + z_{power}) * sd / effect)^2 )       (Tier A.)
    """
    # TODO
    raise NotImplementedError("raters_needed")
