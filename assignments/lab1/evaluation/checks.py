"""Trusted checks for the evaluation part. Runs in the grader, never in the sandbox.

No training here: the student implements metric functions and a diagnosis, and the grader compares
them with its own float64 references (numpy / scipy, written independently of the reference
solution) on inputs drawn with the secret run seed:
- analytic cases (two Gaussians, a shifted point cloud) and random Gaussians;
- features of digits from the staff feature extractor (hidden/digits_features.safetensors, a small
  CNN trained by hidden/train_features.py; its penultimate layer before the ReLU, projected on its top
  16 principal components so that every covariance is well conditioned), for four kinds of black-box
  "generators": good (held-out real digits), mode_dropped (only 3-5 classes), blurred (Gaussian blur)
  and memorised (training images drawn again with fresh noise);
- ratings of subjective tests, against scipy.stats.

The digits are public, so every image is drawn afresh in the run's secret style
(grader/checklib/digit_styles.py): no image equals a public one, and every set goes through the same
drawing and noise, so only the property a kind is named for tells the kinds apart. The sets that
diagnose() labels are drawn for it alone (no other check's input is one of its answers), their kinds
are drawn at random (each at least once), and every query of the run goes out in one round, shuffled
across checks. The student's diagnose() sees images (pixels in [0, 1]), not the staff features.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import linalg, stats

from grader.checking import Round
from grader.checklib.copies import memorised_fraction
from grader.checklib.digit_styles import DigitStyle
from grader.checklib.digits import scaled_digits
from grader.checklib.features import StaffCNN, density_coverage, kth_radius, pairwise, precision_recall
from grader.checklib.mistakes import Suspects
from grader.checklib.numerics import WorstCase, as_sent_numpy, rel_error

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN, N_REFERENCE, N_SET = 800, 350, 200
KINDS = ("good", "mode_dropped", "blurred", "memorised")
N_DIAGNOSE = 8
MEMO_RATIO = 1 / 3
NOISE = (0.01, 0.02)  # the sensor noise of every drawn image (a memorised copy differs from its source by it)


# ---------------------------------------------------------------- the black-box sample sets

def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of 8x8 images [B, 64], zero padding (the background is 0)."""
    radius = 3
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    im = np.pad(images.reshape(-1, 8, 8), ((0, 0), (radius, radius), (radius, radius)))
    rows = sum(kernel[i] * im[:, i:i + 8, :] for i in range(2 * radius + 1))
    out = sum(kernel[i] * rows[:, :, i:i + 8] for i in range(2 * radius + 1))
    return out.reshape(-1, 64)


class Digits:
    """sklearn's digits split secretly into train, reference (held-out real) and a pool, every image drawn
    in the run's style. Sample sets are drawn afresh each time (new jitter and noise)."""

    def __init__(self, rng: np.random.Generator):
        self.x, self.y = scaled_digits()
        self.style = DigitStyle.draw(rng, noise=NOISE)
        perm = rng.permutation(len(self.x))
        self.train_idx = perm[:N_TRAIN]
        self.reference_idx = perm[N_TRAIN:N_TRAIN + N_REFERENCE]
        self.pool_idx = perm[N_TRAIN + N_REFERENCE:]  # disjoint from both: the "generator's" real images
        self.train_shapes = self.style.shape(self.x[self.train_idx], rng)  # before their noise: copies reuse them
        self.train = as_sent_numpy(self.style.finish(self.train_shapes, rng))
        self.reference = as_sent_numpy(self.style.render(self.x[self.reference_idx], rng))

    def pool_images(self, rng: np.random.Generator, classes: np.ndarray | None = None) -> np.ndarray:
        pool = self.pool_idx if classes is None else self.pool_idx[np.isin(self.y[self.pool_idx], classes)]
        return self.x[rng.choice(pool, N_SET, replace=len(pool) < N_SET)]

    def copies(self, rng: np.random.Generator, n: int = N_SET) -> np.ndarray:
        """Training images drawn again: the same shape, fresh noise."""
        return self.style.finish(self.train_shapes[rng.choice(N_TRAIN, n, replace=False)], rng)

    def sample_set(self, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """N_SET images of one kind (float32 values, as sent), and a staff note describing it."""
        if kind == "good":
            images, how = self.style.render(self.pool_images(rng), rng), "held-out real"
        elif kind == "mode_dropped":
            keep = np.sort(rng.permutation(10)[:int(rng.integers(3, 6))])
            images, how = self.style.render(self.pool_images(rng, keep), rng), f"classes {keep.tolist()}"
        elif kind == "blurred":
            sigma = float(rng.uniform(0.5, 0.8))
            shapes = self.style.shape(self.pool_images(rng), rng)
            images, how = self.style.finish(gaussian_blur(shapes, sigma), rng), f"blur sigma {sigma:.2f} px"
        elif kind == "memorised":
            images, how = self.copies(rng), "training images drawn again (fresh noise)"
        else:
            raise ValueError(kind)
        return as_sent_numpy(images), how

    def graded_copies(self, rng: np.random.Generator) -> np.ndarray:
        """Samples between a training image and a new one (weights 0-0.8 of the new one): their nearest /
        second-nearest training distance ratios spread over (0, 1), so a wrong ratio rule shows."""
        weight = rng.uniform(0.0, 0.8, size=(N_SET, 1))
        source = self.train_shapes[rng.choice(N_TRAIN, N_SET, replace=False)]
        other = self.style.shape(self.pool_images(rng), rng)
        return as_sent_numpy(self.style.finish((1 - weight) * source + weight * other, rng))


@dataclass
class Setup:
    """What every check draws on: the secret split, one sample set of each kind for the metric checks
    and their staff features (float32 values, as the student receives them)."""

    rng: np.random.Generator
    digits: Digits
    sets: dict[str, tuple[np.ndarray, str]]
    feat: dict[str, np.ndarray]
    feat_ref: np.ndarray
    feat_train: np.ndarray
    cnn: StaffCNN

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Setup:
        digits = Digits(rng)
        cnn = StaffCNN.load(HIDDEN / "digits_features.safetensors")
        sets = {kind: digits.sample_set(kind, rng) for kind in KINDS}
        feat = {kind: as_sent_numpy(cnn.features(images)) for kind, (images, _) in sets.items()}
        return cls(rng, digits, sets, feat, as_sent_numpy(cnn.features(digits.reference)),
                   as_sent_numpy(cnn.features(digits.train)), cnn)


# ---------------------------------------------------------------- the grader's own metrics (float64)

def ref_frechet_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        eps = 1e-10 * np.eye(cov_a.shape[0])
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def ref_frechet(a: np.ndarray, b: np.ndarray, ddof: int = 1) -> float:
    return ref_frechet_moments(a.mean(0), np.cov(a, rowvar=False, ddof=ddof), b.mean(0),
                               np.cov(b, rowvar=False, ddof=ddof))


def psd_root(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (a + a.T))
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def ref_mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float, *, biased: bool = False,
                      scale: float = 2.0) -> float:
    """The unbiased MMD² (or, for the feedback, the biased one or another kernel scale)."""
    n, m = len(x), len(y)

    def k(a, b):
        return np.exp(-pairwise(a, b) ** 2 / (scale * bandwidth**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    if biased:
        return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def sorted_gaps(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """[N, P]: differences of the sorted projections."""
    return np.sort(x @ theta.T, axis=0) - np.sort(y @ theta.T, axis=0)


def ref_sliced_wasserstein(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> float:
    return float(np.sqrt(np.mean(sorted_gaps(x, y, theta) ** 2)))


def median_bandwidth(a: np.ndarray, b: np.ndarray) -> float:
    both = np.concatenate([a, b])
    d = pairwise(both, both)
    return float(np.median(d[np.triu_indices(len(both), 1)]))


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random, well-conditioned covariance that does not commute with another one."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.exp(rng.uniform(math.log(0.05), math.log(5.0), size=d))) @ q.T


def unit_directions(rng: np.random.Generator, count: int, d: int) -> np.ndarray:
    theta = rng.normal(size=(count, d))
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


def draw_metrics(fig: Figure, rows: dict[str, dict[str, float]], floor: float) -> None:
    axes = fig.subplots(1, 4)
    names = list(rows)
    for ax, (metric, label) in zip(axes, [("fd", "Fréchet distance"), ("precision", "precision (k=3)"),
                                          ("recall", "recall (k=3)"), ("memorisation", "memorisation")],
                                   strict=True):
        values = [rows[n][metric] for n in names]
        ax.bar(range(len(names)), values, color=["tab:green", "tab:orange", "tab:blue", "tab:red"])
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
        ax.set_title(label, fontsize=9)
        if metric == "fd":
            ax.axhline(floor, color="k", lw=0.8, ls="--")
    fig.suptitle("The grader's metrics on its four black-box sets (staff features; dashed: real-vs-real floor)",
                 fontsize=9)


# ---------------------------------------------------------------- the checks: what each asks, how it judges
#
# Every check queues its queries in the run's one round (`ask`), and judges the answers afterwards
# (`judge`, inside the check's own section, so a failed query costs only its check).

@dataclass
class Case:
    """One query of a check and what the grader knows about it."""

    label: str
    pending: Any
    truth: Any
    mistakes: dict[str, Any] = field(default_factory=dict)  # what common mistakes would have answered
    info: dict[str, Any] = field(default_factory=dict)


def judge_cases(cases: list[Case], answer: Callable[[Any], Any], error: Callable[[Any, Any], float],
                describe: Callable[[Case, Any], str], suspects: Suspects) -> WorstCase:
    worst = WorstCase()
    for case in cases:
        theirs = answer(case.pending.value)
        worst.see(error(theirs, case.truth), f"{case.label}: {describe(case, theirs)}")
        suspects.see(theirs, case.truth, **case.mistakes)
    return worst


FRECHET_HINTS = {
    "elementwise_sqrt": "Your values match an element-wise square root of Σa Σb: the trace term needs the *matrix* "
                        "square root (from an eigendecomposition of the symmetric Σa^1/2 Σb Σa^1/2).",
    "product_of_roots": "Your values match tr(Σa^1/2 Σb^1/2), which equals tr((Σa Σb)^1/2) only when the two "
                        "covariances commute (diagonal ones do, general ones do not): take the root of "
                        "Σa^1/2 Σb Σa^1/2 instead.",
    "no_factor_two": "Your values match the formula without the factor 2 on the trace of the root term.",
    "biased_covariance": "Your values match covariances divided by N instead of N - 1: use the unbiased "
                         "covariance (torch.cov / np.cov).",
}


def ask_frechet_gaussian(r, s: Setup) -> list[Case]:
    rng = s.rng
    cases = []
    # 1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    mu_a, mu_b = rng.normal(size=1), rng.normal(size=1)
    s_a, s_b = rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0)
    cases.append(("one dimension", mu_a, np.array([[s_a**2]]), mu_b, np.array([[s_b**2]])))
    d = int(rng.integers(3, 8))
    a, b = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
    cases.append(("diagonal covariances", rng.normal(size=d), np.diag(a), rng.normal(size=d), np.diag(b)))
    cov = random_cov(rng, d)
    mu = rng.normal(size=d)
    cases.append(("identical Gaussians", mu, cov, mu.copy(), cov.copy()))
    for _ in range(2):
        d = int(rng.integers(4, 12))
        mu = rng.normal(size=d)
        cases.append(("general covariances", mu, random_cov(rng, d), mu + 0.1 * rng.normal(size=d),
                      random_cov(rng, d)))
    out = []
    for label, *moments in cases:
        m_a, c_a, m_b, c_b = (as_sent_numpy(t) for t in moments)
        out.append(Case(label, r.call("frechet_from_moments", m_a, c_a, m_b, c_b), ref_frechet_moments(m_a, c_a, m_b, c_b),
                        frechet_mistakes(m_a, c_a, m_b, c_b)))
    return out


def frechet_mistakes(m_a, c_a, m_b, c_b) -> dict[str, float]:
    """What the classic mistakes in the trace term give for these moments."""
    base = float(np.sum((m_a - m_b) ** 2) + np.trace(c_a) + np.trace(c_b))
    trace_root = (base - ref_frechet_moments(m_a, c_a, m_b, c_b)) / 2
    return {"elementwise_sqrt": base - 2 * float(np.trace(np.sqrt(np.clip(c_a @ c_b, 0, None)))),
            "product_of_roots": base - 2 * float(np.trace(psd_root(c_a) @ psd_root(c_b))),
            "no_factor_two": base - trace_root}


def judge_frechet_gaussian(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(FRECHET_HINTS, 1e-3)
    worst = judge_cases(cases, float, rel_error, lambda c, t: f"yours {t:.6g}, exact {c.truth:.6g}", suspects)
    general = ("The trace term is tr((Σa^1/2 Σb Σa^1/2)^1/2), a *matrix* square root (not element-wise, and "
               "not Σa^1/2 Σb^1/2 unless they commute); compute it in float64 from an eigendecomposition of a "
               "symmetric matrix.")
    g.metric("frechet_gaussian", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


def ask_frechet_features(r, s: Setup) -> list[Case]:
    rng = s.rng
    pairs = [(f"reference vs {kind}", s.feat_ref, s.feat[kind]) for kind in ("good", "mode_dropped", "memorised")]
    cov_a, cov_b = random_cov(rng, 10), random_cov(rng, 10)
    ga = rng.multivariate_normal(np.zeros(10), cov_a, size=400)
    gb = rng.multivariate_normal(rng.normal(size=10), cov_b, size=300)
    pairs.append(("two Gaussian samples", as_sent_numpy(ga), as_sent_numpy(gb)))
    # few points: the N - 1 of the unbiased covariance matters (a divide-by-N shows here at once)
    d = int(rng.integers(4, 8))
    small_a = rng.multivariate_normal(np.zeros(d), random_cov(rng, d), size=int(rng.integers(12, 25)))
    small_b = rng.multivariate_normal(np.zeros(d), random_cov(rng, d), size=int(rng.integers(12, 25)))
    pairs.append(("two small Gaussian samples", as_sent_numpy(small_a), as_sent_numpy(small_b)))
    out = []
    for label, a, b in pairs:
        moments = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        mistakes = {"biased_covariance": ref_frechet(a, b, ddof=0), **frechet_mistakes(*moments)}
        out.append(Case(label, r.call("frechet_distance", a, b), ref_frechet(a, b), mistakes))
    return out


def judge_frechet_features(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(FRECHET_HINTS, 1e-3)
    worst = judge_cases(cases, float, rel_error, lambda c, t: f"yours {t:.6g}, grader {c.truth:.6g}", suspects)
    general = ("Fit a Gaussian to each set: the mean and the unbiased covariance (divide by N - 1, like np.cov / "
               "torch.cov), then use your frechet_from_moments.")
    g.metric("frechet_features", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


MMD_HINTS = {
    "biased": "Your values match the biased estimate: leave out the diagonal terms k(x_i, x_i) and divide by "
              "n(n - 1) (and m(m - 1)); the unbiased estimate is 0 on average for one distribution and can be negative.",
    "kernel_without_two": "Your values match the kernel exp(-||a - b||² / h²): the kernel is exp(-||a - b||² / (2 h²)).",
    "bandwidth_squared_missing": "Your values match the kernel exp(-||a - b||² / (2 h)): square the bandwidth.",
}


def ask_mmd(r, s: Setup) -> list[Case]:
    rng = s.rng
    sets = [(f"reference vs {kind}", s.feat_ref, s.feat[kind], median_bandwidth(s.feat_ref, s.feat[kind]), False)
            for kind in ("good", "mode_dropped")]
    for _ in range(3):  # two samples of one distribution: an unbiased estimate averages 0
        x, y = as_sent_numpy(rng.normal(size=(120, 5))), as_sent_numpy(rng.normal(size=(90, 5)))
        sets.append(("two samples of one Gaussian", x, y, float(rng.uniform(1.0, 3.0)), True))
    out = []
    for label, x, y, h, same in sets:
        h = float(np.float32(h))
        mistakes = {"biased": ref_mmd2_unbiased(x, y, h, biased=True),
                    "kernel_without_two": ref_mmd2_unbiased(x, y, h, scale=1.0),
                    "bandwidth_squared_missing": ref_mmd2_unbiased(x, y, math.sqrt(h))}
        out.append(Case(label, r.call("mmd2_unbiased", x, y, h), ref_mmd2_unbiased(x, y, h), mistakes,
                        {"same": same}))
    return out


def judge_mmd(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(MMD_HINTS, 1e-4, distance=lambda t, o: abs(t - o))
    worst = judge_cases(cases, float, lambda t, o: abs(t - o), lambda c, t: f"yours {t:.6g}, grader {c.truth:.6g}",
                        suspects)
    same = [(float(c.pending.value), c.truth) for c in cases if c.info["same"]]
    general = (f"On two samples of the same Gaussian your MMD² averaged {np.mean([t for t, _ in same]):.4g} (the "
               f"grader's {np.mean([o for _, o in same]):.4g}). Leave out the diagonal terms k(x_i, x_i) and divide "
               "by n(n-1); the kernel is exp(-||a-b||² / (2 h²)).")
    g.metric("mmd_unbiased", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


SLICED_HINTS = {
    "mean_of_roots": "Your values match the mean over directions of each direction's W2 (a root per direction): the "
                     "sliced distance is the square root of the mean of W2² over directions.",
    "no_root": "Your values match the mean of W2² without the final square root.",
    "unsorted": "Your values match projections compared without sorting: 1-D optimal transport matches the sorted "
                "values of the two sets.",
}


def ask_sliced(r, s: Setup) -> list[Case]:
    rng = s.rng
    sets = [(f"reference vs {kind}", as_sent_numpy(s.feat_ref[:N_SET]), s.feat[kind],
             as_sent_numpy(unit_directions(rng, 50, s.feat_ref.shape[1])), None) for kind in ("good", "blurred")]
    # analytic: a shifted copy keeps the order of every projection, so SW^2 = mean_p (shift . theta_p)^2
    x = as_sent_numpy(rng.normal(size=(150, 4)))
    theta = as_sent_numpy(unit_directions(rng, 20, 4))
    y = as_sent_numpy(x + rng.normal(size=4))
    sets.append(("a shifted copy", x, y, theta, float(np.sqrt(np.mean((theta @ (y - x).T) ** 2)))))
    out = []
    for label, a, b, th, exact in sets:
        gaps = sorted_gaps(a, b, th)
        mistakes = {"mean_of_roots": float(np.mean(np.sqrt(np.mean(gaps**2, axis=0)))),
                    "no_root": float(np.mean(gaps**2)),
                    "unsorted": float(np.sqrt(np.mean((a @ th.T - b @ th.T) ** 2)))}
        truth = ref_sliced_wasserstein(a, b, th) if exact is None else exact
        out.append(Case(label, r.call("sliced_wasserstein", a, b, th), truth, mistakes))
    return out


def relative_to_grader(theirs: float, ours: float) -> float:
    return abs(theirs - ours) / abs(ours)


def judge_sliced(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(SLICED_HINTS, 1e-4, distance=relative_to_grader)
    worst = judge_cases(cases, float, relative_to_grader, lambda c, t: f"yours {t:.6g}, grader {c.truth:.6g}",
                        suspects)
    general = ("Project both sets on each direction, sort each projection, and average the squared differences of "
               "the sorted values over samples and directions; return the square root.")
    g.metric("sliced_wasserstein", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


KNN_HINTS = {
    "swapped": "Your two values match the grader's swapped: precision is about the generated samples (inside the "
               "real balls), recall about the real ones (inside the generated balls).",
    "radius_counts_self": "Your values match k-NN radii that count each point as its own nearest neighbour: the "
                          "radius is the distance to the k-th nearest *other* point (the k + 1-th value of a row "
                          "of distances that includes the point itself).",
    "density_not_over_k": "Your density matches the count of balls per sample without dividing by k.",
    "generated_balls": "Your values match balls around the generated points: density and coverage both use the "
                       "real points' k-NN balls only.",
}


def precision_recall_counting_self(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    d = pairwise(real, fake)
    return (float(np.mean((d <= kth_radius(real, k - 1)[:, None]).any(axis=0))),
            float(np.mean((d <= kth_radius(fake, k - 1)[None, :]).any(axis=1))))


def ask_precision_recall(r, s: Setup) -> list[Case]:
    out = []
    for kind, k in (("good", 3), ("mode_dropped", 3), ("blurred", 3), ("mode_dropped", 5)):
        truth = precision_recall(s.feat_ref, s.feat[kind], k)
        mistakes = {"swapped": truth[::-1], "radius_counts_self": precision_recall_counting_self(s.feat_ref, s.feat[kind], k)}
        out.append(Case(f"reference vs {kind} (k={k})", r.call("precision_recall", s.feat_ref, s.feat[kind], k),
                        truth, mistakes))
    return out


def absolute_pair(theirs: tuple[float, float], ours: tuple[float, float]) -> float:
    return max(abs(theirs[0] - ours[0]), abs(theirs[1] - ours[1]))


def judge_precision_recall(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(KNN_HINTS, 0.01, distance=absolute_pair)
    worst = judge_cases(cases, lambda out: (out["precision"], out["recall"]), absolute_pair,
                        lambda c, t: f"yours P={t[0]:.3f} R={t[1]:.3f}, grader P={c.truth[0]:.3f} R={c.truth[1]:.3f}",
                        suspects)
    general = ("Precision: share of generated samples inside some real sample's k-NN ball; recall: share of real "
               "samples inside some generated sample's k-NN ball. The k-NN radius is the distance to the k-th "
               "nearest *other* point of the same set.")
    g.metric("precision_recall", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


MEMO_HINTS = {
    "squared_distances": "Your values match the rule applied to squared distances (d1² < ratio · d2²): compare the "
                         "distances themselves, d1 < ratio · d2.",
    "ratio_ignored": "Your values match ratio = 1/3 whatever ratio is passed: use the argument.",
    "inverted": "Your values match the share of samples that are *not* near-copies: count d1 < ratio · d2.",
}


def ask_memorisation(r, s: Setup) -> list[Case]:
    rng, digits = s.rng, s.digits
    share = float(rng.uniform(0.2, 0.6))
    n_copy = int(round(share * N_SET))
    good = digits.style.render(digits.pool_images(rng), rng)
    mixed = as_sent_numpy(np.concatenate([digits.copies(rng, n_copy), good[n_copy:]]))
    graded = digits.graded_copies(rng)
    cases = [("memorised set (features)", s.feat_train, s.feat["memorised"], MEMO_RATIO),
             ("good set (features)", s.feat_train, s.feat["good"], MEMO_RATIO),
             ("partly copied set (pixels)", digits.train, mixed, MEMO_RATIO),
             ("graded copies (pixels)", digits.train, graded, MEMO_RATIO),
             ("graded copies (pixels), ratio 0.5", digits.train, graded, 0.5),
             ("graded copies (features), ratio 0.6", s.feat_train, as_sent_numpy(s.cnn.features(graded)), 0.6)]
    out = []
    for label, reference, samples, ratio in cases:
        truth = memorised_fraction(samples, reference, ratio)
        mistakes = {"squared_distances": memorised_fraction(samples, reference, math.sqrt(ratio)),
                    "ratio_ignored": memorised_fraction(samples, reference, MEMO_RATIO) if ratio != MEMO_RATIO else None,
                    "inverted": 1 - truth}
        out.append(Case(label, r.call("memorisation_fraction", reference, samples, ratio), truth, mistakes))
    return out


def judge_memorisation(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(MEMO_HINTS, 0.01, distance=lambda t, o: abs(t - o))
    worst = judge_cases(cases, float, lambda t, o: abs(t - o), lambda c, t: f"yours {t:.3f}, grader {c.truth:.3f}",
                        suspects)
    general = ("Count the samples whose nearest training point is closer than ratio × the distance to the "
               "second-nearest training point (strictly), and divide by the number of samples.")
    g.metric("memorisation", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


def density_coverage_generated_balls(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    inside = pairwise(real, fake) <= kth_radius(fake, k)[None, :]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def density_coverage_counting_self(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    inside = pairwise(real, fake) <= kth_radius(real, k - 1)[:, None]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def ask_density_coverage(r, s: Setup) -> list[Case]:
    out = []
    for kind, k in (("good", 5), ("mode_dropped", 5), ("blurred", 3)):
        truth = density_coverage(s.feat_ref, s.feat[kind], k)
        mistakes = {"density_not_over_k": (truth[0] * k, truth[1]),
                    "generated_balls": density_coverage_generated_balls(s.feat_ref, s.feat[kind], k),
                    "radius_counts_self": density_coverage_counting_self(s.feat_ref, s.feat[kind], k)}
        out.append(Case(f"reference vs {kind} (k={k})", r.call("density_coverage", s.feat_ref, s.feat[kind], k),
                        truth, mistakes))
    return out


def judge_density_coverage(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(KNN_HINTS, 0.01, distance=absolute_pair)
    worst = judge_cases(cases, lambda out: (out["density"], out["coverage"]), absolute_pair,
                        lambda c, t: (f"yours density={t[0]:.3f} coverage={t[1]:.3f}, grader {c.truth[0]:.3f} / "
                                      f"{c.truth[1]:.3f}"), suspects)
    general = ("Both use only the real points' k-NN balls: density counts, for each generated sample, how many "
               "real balls contain it (divided by k M); coverage is the share of real points whose ball contains "
               "at least one generated sample.")
    g.metric("density_coverage", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


# ---------------------------------------------------------------- the diagnosis

def grader_metrics(s: Setup) -> dict[str, dict[str, float]]:
    """The grader's own metrics on one set of each kind, in staff feature space: the diagnosis's evidence."""
    summary = {}
    for kind in KINDS:
        p, r = precision_recall(s.feat_ref, s.feat[kind], 3)
        summary[kind] = {"fd": ref_frechet(s.feat_ref, s.feat[kind]), "precision": p, "recall": r,
                         "memorisation": memorised_fraction(s.feat[kind], s.feat_train, MEMO_RATIO)}
    return summary


def diagnose_kinds(rng: np.random.Generator) -> list[str]:
    """The kinds of the sets diagnose() labels: each kind at least once, the rest drawn at random, in a
    random order (so no count of one kind follows from the others)."""
    kinds = list(KINDS) + list(rng.choice(KINDS, N_DIAGNOSE - len(KINDS)))
    return [str(kinds[i]) for i in rng.permutation(len(kinds))]


def ask_diagnose(r, s: Setup) -> list[Case]:
    out = []
    for kind in diagnose_kinds(s.rng):
        images, how = s.digits.sample_set(kind, s.rng)  # drawn for this query alone
        out.append(Case(kind, r.call("diagnose", s.digits.train, s.digits.reference, images), kind, info={"how": how}))
    return out


def diagnose_feedback(labels: list[str], kinds: list[str], table: str) -> str:
    """What the student reads: how many sets were right, what each wrong one was called, with a branch for a
    diagnose that gives every set one label or answers outside the four labels."""
    n_right = sum(label == kind for label, kind in zip(labels, kinds, strict=True))
    n = len(kinds)
    if n_right == n:
        return (f"All {n} sample sets labelled correctly. For reflection, the grader's metrics on one set of each "
                f"kind (staff features): {table}. Note which metrics could not tell the memoriser from real data.")
    unknown = sorted({repr(label) for label in labels if label not in KINDS})
    wrong = "; ".join(f"a '{kind}' set was labelled {label!r}" for label, kind in zip(labels, kinds, strict=True)
                      if label != kind)
    if unknown:
        why = f"Your diagnose returned {', '.join(unknown)}, which is none of the four labels."
    elif len(set(labels)) == 1:
        why = (f"Your diagnose returned {labels[0]!r} for every set, whatever it was: it does not yet tell the kinds "
               "apart. Measure each property against the reference (copies of training images, sharpness, "
               "coverage of the reference).")
    else:
        why = "Check each decision rule, and its order, on sets made with data.py and several seeds."
    return (f"{n_right} of {n} sample sets labelled correctly; {wrong}. {why} Labels: 'good', 'mode_dropped', "
            f"'blurred', 'memorised'. The grader's own metrics on one set of each kind (staff features): {table}.")


def judge_diagnose(g, s: Setup, cases: list[Case]) -> None:
    summary = grader_metrics(s)
    floor = summary["good"]["fd"]  # the real-vs-real floor at the same sample size
    g.figure("grader-metrics", "The grader's own metrics on the four kinds of sample set, in staff feature space.",
             lambda fig: draw_metrics(fig, summary, floor), size=(10, 2.6))
    labels = [c.pending.value for c in cases]
    kinds = [c.truth for c in cases]
    table = "; ".join(f"{k}: FD {v['fd']:.1f}, P {v['precision']:.2f}, R {v['recall']:.2f}, "
                      f"memorisation {v['memorisation']:.2f}" for k, v in summary.items())
    n_right = sum(label == kind for label, kind in zip(labels, kinds, strict=True))
    notes = "; ".join(f"{c.truth} ({c.info['how']}) -> {label!r}" for c, label in zip(cases, labels, strict=True)
                      if label != c.truth)
    g.record("diagnose", n_right == len(kinds), diagnose_feedback(labels, kinds, table), value=n_right, note=notes)


# ---------------------------------------------------------------- the statistics of a subjective test

MOS_HINTS = {
    "normal_quantile": "Your interval matches the normal quantile (1.96 at 95 %): with n raters use Student's t with "
                       "n - 1 degrees of freedom (tdist.t_ppf), wider for small panels.",
    "population_sd": "Your interval matches the standard deviation divided by n: the sample standard deviation "
                     "divides by n - 1.",
    "df_n": "Your interval matches Student's t with n degrees of freedom: use n - 1.",
}


def t_interval(scores: np.ndarray, conf: float, *, quantile: float | None = None, ddof: int = 1) -> tuple:
    n, mean = len(scores), float(scores.mean())
    q = stats.t.ppf(0.5 + conf / 2, n - 1) if quantile is None else quantile
    half = q * float(scores.std(ddof=ddof)) / math.sqrt(n)
    return mean, mean - half, mean + half


def ask_mos(r, s: Setup) -> list[Case]:
    rng, out = s.rng, []
    for n, conf in ((6, 0.95), (int(rng.integers(10, 30)), 0.95), (int(rng.integers(8, 40)), 0.9),
                    (int(rng.integers(8, 40)), 0.99)):
        scores = rng.choice(np.arange(1, 6), size=n, p=rng.dirichlet(np.ones(5))).astype(np.float64)
        if np.all(scores == scores[0]):
            scores[0] = 1 + (scores[0] % 5)
        mistakes = {"normal_quantile": t_interval(scores, conf, quantile=NormalDist().inv_cdf(0.5 + conf / 2)),
                    "population_sd": t_interval(scores, conf, ddof=0),
                    "df_n": t_interval(scores, conf, quantile=float(stats.t.ppf(0.5 + conf / 2, n)))}
        out.append(Case(f"n={n}, a {conf:.0%} interval", r.call("mos_confidence_interval", scores, conf),
                        t_interval(scores, conf), mistakes))
    return out


def absolute_triple(theirs: tuple, ours: tuple) -> float:
    return max(abs(t - o) for t, o in zip(theirs, ours, strict=True))


def judge_mos(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(MOS_HINTS, 1e-4, distance=absolute_triple)
    worst = judge_cases(cases, lambda out: (out["mean"], out["low"], out["high"]), absolute_triple,
                        lambda c, t: f"yours [{t[1]:.4f}, {t[2]:.4f}], scipy [{c.truth[1]:.4f}, {c.truth[2]:.4f}]",
                        suspects)
    general = ("mean ± t_(1+c)/2, n-1 · s / sqrt(n), with s the sample standard deviation (divide by n - 1) and "
               "Student's t with n - 1 degrees of freedom (tdist.t_ppf), not the normal 1.96.")
    g.metric("mos_interval", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


PAIRED_HINTS = {
    "unpaired": "Your values match a two-sample (unpaired) test: test the per-rater differences d = a - b; an "
                "unpaired test ignores that each rater scored both systems.",
    "one_sided": "Your p-values match a one-sided test: the two-sided p = 2 P(T > |t|).",
    "sign_not_folded": "Your p-values match 2 P(T > t) without the absolute value: wrong (above 1) whenever system b "
                       "scores higher; the two-sided p = 2 P(T > |t|).",
    "df_n": "Your p-values match Student's t with n degrees of freedom: use n - 1.",
}


def paired_test_error(theirs: tuple[float, float], ours: tuple[float, float]) -> float:
    """Relative for t, absolute for p."""
    return max(rel_error(theirs[0], ours[0]), abs(theirs[1] - ours[1]))


def ask_paired(r, s: Setup) -> list[Case]:
    rng, out = s.rng, []
    # no difference, b worse (small and large), and b better: the sign of t must not matter
    for n, effect in ((int(rng.integers(8, 15)), 0.0), (int(rng.integers(15, 40)), 4.0),
                      (int(rng.integers(15, 40)), 10.0), (int(rng.integers(10, 30)), -float(rng.uniform(3, 8)))):
        rater = rng.normal(60, 12, size=n)  # MUSHRA-like 0-100 scores with a strong rater effect
        a = as_sent_numpy(np.clip(rater + rng.normal(0, 6, size=n), 0, 100))
        b = as_sent_numpy(np.clip(rater - effect + rng.normal(0, 6, size=n), 0, 100))
        res = stats.ttest_rel(a, b)
        t, p = float(res.statistic), float(res.pvalue)
        welch = stats.ttest_ind(a, b)
        mistakes = {"unpaired": (float(welch.statistic), float(welch.pvalue)), "one_sided": (t, p / 2),
                    "sign_not_folded": (t, 2 * float(stats.t.sf(t, n - 1))) if t < 0 else None,
                    "df_n": (t, 2 * float(stats.t.sf(abs(t), n)))}
        out.append(Case(f"n={n}, effect {effect:.1f}", r.call("paired_t_test", a, b), (t, p), mistakes))
    return out


def judge_paired(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(PAIRED_HINTS, 1e-4, distance=paired_test_error)
    worst = judge_cases(cases, lambda out: (out["t"], out["p"]), paired_test_error,
                        lambda c, t: f"yours t={t[0]:.4f} p={t[1]:.4g}, scipy t={c.truth[0]:.4f} p={c.truth[1]:.4g}",
                        suspects)
    general = ("Test the per-rater differences d = a - b: t = mean(d) / (s_d / sqrt(n)) with n - 1 degrees of "
               "freedom, two-sided p = 2 P(T > |t|).")
    g.metric("paired_test", worst.value, hint=f"Worst case, {worst.where}. " + suspects.hint(general),
             note=worst.where)


RATERS_HINTS = {
    "one_sided": "Your counts match a one-sided alpha (z_(1-alpha)): the test is two-sided, z_(1-alpha/2).",
    "rounded": "Your counts match rounding to the nearest integer: round *up* (math.ceil), or the power falls short.",
    "two_sample": "Your counts match the two-sample formula (twice as many): with a paired design and sd the "
                  "standard deviation of the per-rater difference, n = ((z_(1-alpha/2) + z_power) sd / effect)².",
}


def raters_formula(effect: float, sd: float, alpha: float, power: float, *, two_sided: bool = True,
                   factor: float = 1.0) -> float:
    z = NormalDist()
    return factor * ((z.inv_cdf(1 - alpha / (2 if two_sided else 1)) + z.inv_cdf(power)) * sd / effect) ** 2


def ask_raters(r, s: Setup) -> list[Case]:
    rng, out = s.rng, []
    for _ in range(6):
        effect, sd = float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.5, 2.0))
        alpha, power = float(rng.choice([0.01, 0.05, 0.1])), float(rng.choice([0.8, 0.9, 0.95]))
        exact = raters_formula(effect, sd, alpha, power)
        mistakes = {"one_sided": math.ceil(raters_formula(effect, sd, alpha, power, two_sided=False)),
                    "rounded": round(exact), "two_sample": math.ceil(raters_formula(effect, sd, alpha, power, factor=2))}
        out.append(Case(f"effect {effect:.3f}, sd {sd:.3f}, alpha {alpha}, power {power}",
                        r.call("raters_needed", effect, sd, alpha, power), math.ceil(exact), mistakes))
    return out


def judge_raters(g, s: Setup, cases: list[Case]) -> None:
    suspects = Suspects(RATERS_HINTS, 0.0, distance=lambda t, o: 0.0 if t == o else math.inf)
    wrong, shown = [], []
    for case in cases:
        theirs = case.pending.value
        suspects.see(theirs, case.truth, **case.mistakes)
        if theirs != case.truth:
            wrong.append(f"{case.label}: yours {theirs}, expected {case.truth}")
            shown.append(f"yours {theirs!r}, expected {case.truth}")
    general = ("n = ceil(((z_(1-alpha/2) + z_power) · sd / effect)²), with sd the standard deviation of the "
               "per-rater difference (a paired design).")
    g.record("raters_needed", not wrong,
             f"All {len(cases)} power calculations agree." if not wrong else
             f"{len(wrong)} of {len(cases)} disagree, e.g. {shown[0]}. " + suspects.hint(general),
             value=len(wrong), note="; ".join(wrong))


@dataclass(frozen=True)
class Check:
    name: str
    ask: Callable[[Any, Setup], list[Case]]
    judge: Callable[[Any, Setup, list[Case]], None]


CHECKS = (
    Check("frechet_gaussian", ask_frechet_gaussian, judge_frechet_gaussian),
    Check("frechet_features", ask_frechet_features, judge_frechet_features),
    Check("mmd_unbiased", ask_mmd, judge_mmd),
    Check("sliced_wasserstein", ask_sliced, judge_sliced),
    Check("precision_recall", ask_precision_recall, judge_precision_recall),
    Check("memorisation", ask_memorisation, judge_memorisation),
    Check("density_coverage", ask_density_coverage, judge_density_coverage),
    Check("diagnose", ask_diagnose, judge_diagnose),
    Check("mos_interval", ask_mos, judge_mos),
    Check("paired_test", ask_paired, judge_paired),
    Check("raters_needed", ask_raters, judge_raters),
)


@contextlib.contextmanager
def only_round(g) -> Iterator[Round]:
    """The run's one round, answered by the sandbox that imported the module: it has answered nothing yet
    (nothing is trained here), so it is as fresh as a new one, and a new one would cost a sandbox start
    (g.round() starts one, and the engine's fingerprint after a closed round another)."""
    batch = Round(g)
    yield batch
    batch.run()


def grade(g) -> None:
    setup = Setup.draw(g.rng)
    asked: dict[str, list[Case]] = {}
    g.progress("asking your metrics, diagnose() and statistics")
    with only_round(g) as r:  # every query of the run, shuffled across checks
        for check in CHECKS:
            with g.section(check.name):
                asked[check.name] = check.ask(r, setup)
    for check in CHECKS:
        if check.name in asked:
            with g.section(check.name):
                check.judge(g, setup, asked[check.name])
