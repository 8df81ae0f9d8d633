"""Trusted checks for the evaluation part. Runs in the grader, never in the sandbox.

No training here: the student implements metric functions and a diagnosis, and the grader compares
them with its own float64 references (numpy / scipy, written independently of the reference
solution) on inputs drawn with the secret run seed:
- analytic cases (two Gaussians, a shifted point cloud) and random Gaussians;
- features of real digits from the staff feature extractor (hidden/digits_features.safetensors, a
  small CNN trained by hidden/train_features.py; its penultimate layer before the ReLU, projected on
  its top 16 principal components so that every covariance is well conditioned), for
  four kinds of black-box "generators" built from scikit-learn's 8x8 digits with a secret split:
  good (held-out real digits), mode_dropped (only 4-5 classes), blurred (Gaussian blur) and
  memorised (training images + tiny noise);
- ratings of subjective tests, against scipy.stats.
The student's diagnose() sees images (pixels in [0, 1]), not the staff features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from grader.checklib.copies import memorised_fraction
from grader.checklib.digits import scaled_digits
from grader.checklib.features import StaffCNN, density_coverage, pairwise, precision_recall
from grader.checklib.numerics import WorstCase, as_sent_numpy, rel_error

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN, N_REFERENCE, N_SET = 800, 350, 200
KINDS = ("good", "mode_dropped", "blurred", "memorised")
MEMO_RATIO = 1 / 3


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
    """sklearn's digits (pixels / 16) split secretly into train, reference (held-out real) and a pool."""

    def __init__(self, rng: np.random.Generator):
        self.x, self.y = scaled_digits()
        perm = rng.permutation(len(self.x))
        self.train_idx = perm[:N_TRAIN]
        self.reference_idx = perm[N_TRAIN:N_TRAIN + N_REFERENCE]
        self.pool_idx = perm[N_TRAIN + N_REFERENCE:]  # disjoint from both: the "generator's" real images
        self.train, self.reference = self.x[self.train_idx], self.x[self.reference_idx]

    def sample_set(self, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """N_SET images of one kind, and a staff note describing it."""
        if kind == "good":
            return self.x[rng.choice(self.pool_idx, N_SET, replace=False)], "held-out real"
        if kind == "mode_dropped":
            n_keep = int(rng.integers(4, 6))
            order = rng.permutation(10)
            while True:  # 4-5 classes; more only in the unlikely case the pool is too small
                keep = order[:n_keep]
                candidates = self.pool_idx[np.isin(self.y[self.pool_idx], keep)]
                if len(candidates) >= N_SET:
                    break
                n_keep += 1
            return self.x[rng.choice(candidates, N_SET, replace=False)], f"classes {sorted(keep.tolist())}"
        if kind == "blurred":
            sigma = float(rng.uniform(0.5, 0.8))
            images = gaussian_blur(self.x[rng.choice(self.pool_idx, N_SET, replace=False)], sigma)
            return as_sent_numpy(images), f"blur sigma {sigma:.2f} px"
        if kind == "memorised":
            copies = self.x[rng.choice(self.train_idx, N_SET, replace=False)]
            noisy = np.clip(copies + rng.normal(0.0, 0.02, copies.shape), 0.0, 1.0)
            return as_sent_numpy(noisy), "training images + N(0, 0.02^2) noise"
        raise ValueError(kind)


@dataclass
class Setup:
    """What every check draws on: the secret split, one sample set of each kind, and their staff features
    (float32 values, as the student receives them)."""

    rng: np.random.Generator
    digits: Digits
    sets: dict[str, tuple[np.ndarray, str]]
    feat: dict[str, np.ndarray]
    feat_ref: np.ndarray
    feat_train: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Setup:
        digits = Digits(rng)
        cnn = StaffCNN.load(HIDDEN / "digits_features.safetensors")
        sets = {kind: digits.sample_set(kind, rng) for kind in KINDS}
        feat = {kind: as_sent_numpy(cnn.features(images)) for kind, (images, _) in sets.items()}
        return cls(rng, digits, sets, feat, as_sent_numpy(cnn.features(digits.reference)),
                   as_sent_numpy(cnn.features(digits.train)))


# ---------------------------------------------------------------- the grader's own metrics (float64)

def ref_frechet_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    from scipy import linalg

    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        eps = 1e-10 * np.eye(cov_a.shape[0])
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def ref_frechet(a: np.ndarray, b: np.ndarray) -> float:
    return ref_frechet_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def ref_mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    n, m = len(x), len(y)

    def k(a, b):
        return np.exp(-pairwise(a, b) ** 2 / (2 * bandwidth**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def ref_sliced_wasserstein(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.sort(x @ theta.T, axis=0) - np.sort(y @ theta.T, axis=0)) ** 2)))


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


# ---------------------------------------------------------------- the checks, one function each

def check_frechet_gaussian(g, s: Setup) -> None:
    rng = s.rng
    cases = []
    # 1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    mu_a, mu_b = rng.normal(size=1), rng.normal(size=1)
    s_a, s_b = rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0)
    cases.append(("one dimension", mu_a, np.array([[s_a**2]]), mu_b, np.array([[s_b**2]]),
                  lambda m_a, c_a, m_b, c_b: float((m_a - m_b) @ (m_a - m_b)
                                                   + (np.sqrt(c_a[0, 0]) - np.sqrt(c_b[0, 0])) ** 2)))
    # diagonal covariances: ||mu_a - mu_b||^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    d = 6
    cases.append(("diagonal covariances", rng.normal(size=d), np.diag(rng.uniform(0.1, 3.0, d)),
                  rng.normal(size=d), np.diag(rng.uniform(0.1, 3.0, d)),
                  lambda m_a, c_a, m_b, c_b: float((m_a - m_b) @ (m_a - m_b)
                                                   + ((np.sqrt(np.diag(c_a)) - np.sqrt(np.diag(c_b))) ** 2).sum())))
    # identical Gaussians: 0
    cov = random_cov(rng, 8)
    mu = rng.normal(size=8)
    cases.append(("identical Gaussians", mu, cov, mu, cov, lambda *_: 0.0))
    # general, non-commuting covariances: the grader's scipy.linalg.sqrtm. Close means, so that the
    # trace term dominates (tr(Σa^1/2 Σb^1/2) instead of the matrix root is off by 3-10 % here).
    for _ in range(2):
        d = 16
        mu = rng.normal(size=d)
        cases.append(("general covariances", mu, random_cov(rng, d), mu + 0.1 * rng.normal(size=d),
                      random_cov(rng, d), ref_frechet_moments))
    worst = WorstCase()
    for label, m_a, c_a, m_b, c_b, truth in cases:
        m_a, c_a, m_b, c_b = (as_sent_numpy(t) for t in (m_a, c_a, m_b, c_b))
        ours = truth(m_a, c_a, m_b, c_b)
        theirs = g.call("frechet_from_moments", m_a, c_a, m_b, c_b)
        worst.see(rel_error(theirs, ours), f"{label}: yours {theirs:.6g}, exact {ours:.6g}")
    g.metric("frechet_gaussian", worst.value,
             hint=f"Worst case, {worst.where}. The trace term is tr((Σa^1/2 Σb Σa^1/2)^1/2), a *matrix* square root "
                  "(not element-wise, and not Σa^1/2 Σb^1/2 unless they commute); compute it in float64 "
                  "from an eigendecomposition of a symmetric matrix.",
             note=worst.where)


def check_frechet_features(g, s: Setup) -> None:
    rng = s.rng
    pairs = [(f"reference vs {kind}", s.feat_ref, s.feat[kind]) for kind in ("good", "mode_dropped", "memorised")]
    cov_a, cov_b = random_cov(rng, 10), random_cov(rng, 10)
    ga = rng.multivariate_normal(np.zeros(10), cov_a, size=400)
    gb = rng.multivariate_normal(rng.normal(size=10), cov_b, size=300)
    pairs.append(("two Gaussian samples", as_sent_numpy(ga), as_sent_numpy(gb)))
    worst = WorstCase()
    for label, a, b in pairs:
        ours = ref_frechet(a, b)
        theirs = g.call("frechet_distance", a, b)
        worst.see(rel_error(theirs, ours), f"{label}: yours {theirs:.6g}, grader {ours:.6g}")
    g.metric("frechet_features", worst.value,
             hint=f"Worst case, {worst.where}. Fit a Gaussian to each set: the mean and the unbiased covariance "
                  "(divide by N - 1, like np.cov / torch.cov), then use your frechet_from_moments.",
             note=worst.where)


def check_mmd(g, s: Setup) -> None:
    rng = s.rng
    cases = [(f"reference vs {kind}", s.feat_ref, s.feat[kind], median_bandwidth(s.feat_ref, s.feat[kind]), False)
             for kind in ("good", "mode_dropped")]
    for _ in range(3):  # two samples of one distribution: an unbiased estimate averages 0
        x, y = as_sent_numpy(rng.normal(size=(120, 5))), as_sent_numpy(rng.normal(size=(90, 5)))
        cases.append(("two samples of one Gaussian", x, y, float(rng.uniform(1.0, 3.0)), True))
    worst, theirs_same, ours_same = WorstCase(), [], []
    for label, x, y, h, same in cases:
        ours = ref_mmd2_unbiased(x, y, h)
        theirs = g.call("mmd2_unbiased", x, y, h)
        if same:
            theirs_same.append(theirs)
            ours_same.append(ours)
        worst.see(abs(theirs - ours), f"{label}: yours {theirs:.6g}, grader {ours:.6g}")
    g.metric("mmd_unbiased", worst.value,
             hint=f"Worst case, {worst.where}. On two samples of the same Gaussian your MMD² averaged "
                  f"{np.mean(theirs_same):.4g} (the grader's {np.mean(ours_same):.4g}); an unbiased estimate "
                  "is 0 on average and can be negative. Leave out the diagonal terms k(x_i, x_i) and divide "
                  "by n(n-1); the kernel is exp(-||a-b||² / (2 h²)).",
             note=worst.where)


def check_sliced_wasserstein(g, s: Setup) -> None:
    rng = s.rng
    cases = [(f"reference vs {kind}", as_sent_numpy(s.feat_ref[:N_SET]), s.feat[kind],
              as_sent_numpy(unit_directions(rng, 50, s.feat_ref.shape[1])), None) for kind in ("good", "blurred")]
    # analytic: a shifted copy keeps the order of every projection, so SW^2 = mean_p (shift . theta_p)^2
    x = as_sent_numpy(rng.normal(size=(150, 4)))
    shift = rng.normal(size=4)
    theta = as_sent_numpy(unit_directions(rng, 20, 4))
    y = as_sent_numpy(x + shift)
    cases.append(("a shifted copy", x, y, theta, float(np.sqrt(np.mean((theta @ (y - x).T) ** 2)))))
    worst = WorstCase()
    for label, a, b, th, exact in cases:
        ours = ref_sliced_wasserstein(a, b, th) if exact is None else exact
        theirs = g.call("sliced_wasserstein", a, b, th)
        worst.see(abs(theirs - ours) / abs(ours), f"{label}: yours {theirs:.6g}, grader {ours:.6g}")
    g.metric("sliced_wasserstein", worst.value,
             hint=f"Worst case, {worst.where}. Project both sets on each direction, sort each projection, and "
                  "average the squared differences of the sorted values over samples and directions; "
                  "return the square root.",
             note=worst.where)


def check_precision_recall(g, s: Setup) -> None:
    worst = WorstCase()
    for kind, k in (("good", 3), ("mode_dropped", 3), ("blurred", 3), ("mode_dropped", 5)):
        ours = precision_recall(s.feat_ref, s.feat[kind], k)
        out = g.call("precision_recall", s.feat_ref, s.feat[kind], k)
        theirs = (out["precision"], out["recall"])
        worst.see(max(abs(theirs[0] - ours[0]), abs(theirs[1] - ours[1])),
                  f"reference vs {kind} (k={k}): yours P={theirs[0]:.3f} R={theirs[1]:.3f}, "
                  f"grader P={ours[0]:.3f} R={ours[1]:.3f}")
    g.metric("precision_recall", worst.value,
             hint=f"Worst case, {worst.where}. Precision: share of generated samples inside some real sample's "
                  "k-NN ball; recall: share of real samples inside some generated sample's k-NN ball. "
                  "The k-NN radius is the distance to the k-th nearest *other* point of the same set.",
             note=worst.where)


def check_memorisation(g, s: Setup) -> None:
    share = float(s.rng.uniform(0.2, 0.6))
    n_copy = int(round(share * N_SET))
    mixed = np.concatenate([s.sets["memorised"][0][:n_copy], s.sets["good"][0][n_copy:]])
    train = as_sent_numpy(s.digits.train)
    cases = [("memorised set (features)", s.feat_train, s.feat["memorised"], MEMO_RATIO),
             ("good set (features)", s.feat_train, s.feat["good"], MEMO_RATIO),
             ("partly copied set (pixels)", train, as_sent_numpy(mixed), MEMO_RATIO),
             ("partly copied set (pixels), ratio 0.5", train, as_sent_numpy(mixed), 0.5)]
    worst = WorstCase()
    for label, reference, samples, ratio in cases:
        ours = memorised_fraction(samples, reference, ratio)
        theirs = g.call("memorisation_fraction", reference, samples, ratio)
        worst.see(abs(theirs - ours), f"{label}: yours {theirs:.3f}, grader {ours:.3f}")
    g.metric("memorisation", worst.value,
             hint=f"Worst case, {worst.where}. Count the samples whose nearest training point is closer than "
                  "ratio × the distance to the second-nearest training point (strictly), and divide by the "
                  "number of samples.",
             note=worst.where)


def check_density_coverage(g, s: Setup) -> None:
    worst = WorstCase()
    for kind, k in (("good", 5), ("mode_dropped", 5), ("blurred", 3)):
        ours = density_coverage(s.feat_ref, s.feat[kind], k)
        out = g.call("density_coverage", s.feat_ref, s.feat[kind], k)
        theirs = (out["density"], out["coverage"])
        worst.see(max(abs(theirs[0] - ours[0]), abs(theirs[1] - ours[1])),
                  f"reference vs {kind} (k={k}): yours density={theirs[0]:.3f} coverage={theirs[1]:.3f}, "
                  f"grader {ours[0]:.3f} / {ours[1]:.3f}")
    g.metric("density_coverage", worst.value,
             hint=f"Worst case, {worst.where}. Both use only the real points' k-NN balls: density counts, for "
                  "each generated sample, how many real balls contain it (divided by k M); coverage is the "
                  "share of real points whose ball contains at least one generated sample.",
             note=worst.where)


def grader_metrics(s: Setup) -> dict[str, dict[str, float]]:
    """The grader's own metrics on one set of each kind, in staff feature space: the diagnosis's evidence."""
    summary = {}
    for kind in KINDS:
        p, r = precision_recall(s.feat_ref, s.feat[kind], 3)
        summary[kind] = {"fd": ref_frechet(s.feat_ref, s.feat[kind]), "precision": p, "recall": r,
                         "memorisation": memorised_fraction(s.feat[kind], s.feat_train, MEMO_RATIO)}
    return summary


def check_diagnose(g, s: Setup) -> None:
    summary = grader_metrics(s)
    floor = summary["good"]["fd"]  # the real-vs-real floor at the same sample size
    g.figure("grader-metrics", "The grader's own metrics on the four kinds of sample set, in staff feature space.",
             lambda fig: draw_metrics(fig, summary, floor), size=(10, 2.6))
    trials = [(kind, s.sets[kind]) for kind in KINDS] + [(kind, s.digits.sample_set(kind, s.rng)) for kind in KINDS]
    wrong, notes = [], []
    train, reference = as_sent_numpy(s.digits.train), as_sent_numpy(s.digits.reference)
    for i in s.rng.permutation(len(trials)):
        kind, (images, how) = trials[i]
        label = g.call("diagnose", train, reference, as_sent_numpy(images))
        if label != kind:
            wrong.append(f"a '{kind}' set was labelled {label!r}")
            notes.append(f"{kind} ({how}) -> {label!r}")
    table = "; ".join(f"{k}: FD {v['fd']:.1f}, P {v['precision']:.2f}, R {v['recall']:.2f}, "
                      f"memorisation {v['memorisation']:.2f}" for k, v in summary.items())
    n_right = len(trials) - len(wrong)
    if wrong:
        feedback = (f"{n_right} of {len(trials)} sample sets labelled correctly; " + "; ".join(wrong)
                    + ". Labels: 'good', 'mode_dropped', 'blurred', 'memorised'. The grader's own metrics "
                    f"on one set of each kind (staff features): {table}.")
    else:
        feedback = (f"All {len(trials)} sample sets labelled correctly. For reflection, the grader's metrics "
                    f"on one set of each kind (staff features): {table}. Note which metrics could not tell "
                    "the memoriser from real data.")
    g.record("diagnose", not wrong, feedback, value=n_right, note="; ".join(notes))


def check_mos_interval(g, s: Setup) -> None:
    from scipy import stats

    rng, worst, note = s.rng, WorstCase(), ""
    for n, conf in ((6, 0.95), (int(rng.integers(10, 30)), 0.95), (int(rng.integers(8, 40)), 0.9),
                    (int(rng.integers(8, 40)), 0.99)):
        scores = rng.choice(np.arange(1, 6), size=n, p=rng.dirichlet(np.ones(5))).astype(np.float64)
        if np.all(scores == scores[0]):
            scores[0] = 1 + (scores[0] % 5)
        mean = scores.mean()
        low, high = stats.t.interval(conf, n - 1, loc=mean, scale=stats.sem(scores))
        out = g.call("mos_confidence_interval", scores, conf)
        before = worst.value
        worst.see(max(abs(out["mean"] - mean), abs(out["low"] - low), abs(out["high"] - high)),
                  f"a {conf:.0%} interval: yours [{out['low']:.4f}, {out['high']:.4f}], scipy [{low:.4f}, {high:.4f}]")
        if worst.value > before or not note:
            note = f"n={n}, confidence {conf}: {worst.where}"
    g.metric("mos_interval", worst.value,
             hint=f"Worst case, {worst.where}. mean ± t_(1+c)/2, n-1 · s / sqrt(n), with s the sample standard "
                  "deviation (divide by n - 1) and Student's t with n - 1 degrees of freedom (tdist.t_ppf), "
                  "not the normal 1.96.",
             note=note)


def check_paired_test(g, s: Setup) -> None:
    from scipy import stats

    rng, worst, note = s.rng, WorstCase(), ""
    for n, effect in ((int(rng.integers(8, 15)), 0.0), (int(rng.integers(15, 40)), 4.0),
                      (int(rng.integers(15, 40)), 10.0)):
        rater = rng.normal(60, 12, size=n)  # MUSHRA-like 0-100 scores with a strong rater effect
        a = as_sent_numpy(np.clip(rater + rng.normal(0, 6, size=n), 0, 100))
        b = as_sent_numpy(np.clip(rater - effect + rng.normal(0, 6, size=n), 0, 100))
        res = stats.ttest_rel(a, b)
        out = g.call("paired_t_test", a, b)
        before = worst.value
        worst.see(max(rel_error(out["t"], float(res.statistic)), abs(out["p"] - float(res.pvalue))),
                  f"yours t={out['t']:.4f} p={out['p']:.4g}, scipy t={res.statistic:.4f} p={res.pvalue:.4g}")
        if worst.value > before or not note:
            note = f"n={n}, effect {effect}: {worst.where}"
    g.metric("paired_test", worst.value,
             hint=f"Worst case, {worst.where}. Test the per-rater differences d = a - b: t = mean(d) / (s_d / "
                  "sqrt(n)) with n - 1 degrees of freedom, two-sided p = 2 P(T > |t|). An unpaired "
                  "(two-sample) test ignores that each rater scored both systems.",
             note=note)


def check_raters_needed(g, s: Setup) -> None:
    from statistics import NormalDist

    rng, z = s.rng, NormalDist()
    wrong, shown = [], []
    for _ in range(6):
        effect = float(rng.uniform(0.1, 1.0))
        sd = float(rng.uniform(0.5, 2.0))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        power = float(rng.choice([0.8, 0.9, 0.95]))
        ours = math.ceil(((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / effect) ** 2)
        theirs = g.call("raters_needed", effect, sd, alpha, power)
        if theirs != ours:
            wrong.append(f"effect {effect:.3f}, sd {sd:.3f}, alpha {alpha}, power {power}: yours {theirs}, "
                         f"expected {ours}")
            shown.append(f"yours {theirs!r}, expected {ours}")
    g.record("raters_needed", not wrong,
             "All six power calculations agree." if not wrong else
             f"{len(wrong)} of 6 disagree, e.g. {shown[0]}. n = ceil(((z_(1-alpha/2) + z_power) · sd / "
             "effect)²), with sd the standard deviation of the per-rater difference (a paired design).",
             value=len(wrong), note="; ".join(wrong))


CHECKS = (
    ("checking your Fréchet distance", "frechet_gaussian", check_frechet_gaussian),
    ("checking your Fréchet distance", "frechet_features", check_frechet_features),
    ("checking your MMD, sliced Wasserstein and k-NN metrics", "mmd_unbiased", check_mmd),
    ("checking your MMD, sliced Wasserstein and k-NN metrics", "sliced_wasserstein", check_sliced_wasserstein),
    ("checking your MMD, sliced Wasserstein and k-NN metrics", "precision_recall", check_precision_recall),
    ("checking your MMD, sliced Wasserstein and k-NN metrics", "memorisation", check_memorisation),
    ("checking your MMD, sliced Wasserstein and k-NN metrics", "density_coverage", check_density_coverage),
    ("asking your diagnose() about black-box generators", "diagnose", check_diagnose),
    ("checking the statistics of your listening test", "mos_interval", check_mos_interval),
    ("checking the statistics of your listening test", "paired_test", check_paired_test),
    ("checking the statistics of your listening test", "raters_needed", check_raters_needed),
)


def grade(g) -> None:
    setup = Setup.draw(g.rng)
    for phase, name, check in CHECKS:
        g.progress(phase)
        with g.section(name):
            check(g, setup)
