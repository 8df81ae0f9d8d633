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

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN, N_REFERENCE, N_SET = 800, 350, 200
KINDS = ("good", "mode_dropped", "blurred", "memorised")
MEMO_RATIO = 1 / 3


# ---------------------------------------------------------------- the staff feature extractor

def staff_penultimate(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    h = x.reshape(-1, 1, 8, 8)
    h = F.relu(F.conv2d(h, p["conv1.weight"], p["conv1.bias"], padding=1))
    h = F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1, stride=2))
    return F.linear(h.flatten(1), p["fc1.weight"], p["fc1.bias"])


def staff_logits(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.linear(F.relu(staff_penultimate(x, p)), p["fc2.weight"], p["fc2.bias"])


def staff_features(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """16-d features of images [B, 64] with pixels in [0, 1]: the penultimate layer (fc1 before its
    ReLU) projected on its top 16 principal components (see hidden/train_features.py)."""
    return (staff_penultimate(x, p) - p["pca.mean"]) @ p["pca.components"]


def load_extractor() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(HIDDEN / "digits_features.safetensors"))


def features(images: np.ndarray, params: dict[str, torch.Tensor]) -> np.ndarray:
    """float32 features as numpy float64 (exactly the float32 values the student receives)."""
    with torch.no_grad():
        return staff_features(torch.from_numpy(images).float(), params).double().numpy()


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
        from sklearn.datasets import load_digits

        digits = load_digits()
        self.x = (digits.data / 16.0).astype(np.float32).astype(np.float64)
        self.y = digits.target
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
            return images.astype(np.float32).astype(np.float64), f"blur sigma {sigma:.2f} px"
        if kind == "memorised":
            copies = self.x[rng.choice(self.train_idx, N_SET, replace=False)]
            noisy = np.clip(copies + rng.normal(0.0, 0.02, copies.shape), 0.0, 1.0)
            return noisy.astype(np.float32).astype(np.float64), "training images + N(0, 0.02^2) noise"
        raise ValueError(kind)


# ---------------------------------------------------------------- the grader's own metrics (float64)

def f32(a: np.ndarray) -> np.ndarray:
    """What the student receives: float32 values, here in float64 again."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b)


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


def kth_radius(points: np.ndarray, k: int) -> np.ndarray:
    d = pairwise(points, points)
    return np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself


def ref_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    d = pairwise(real, fake)
    precision = np.mean((d <= kth_radius(real, k)[:, None]).any(axis=0))
    recall = np.mean((d <= kth_radius(fake, k)[None, :]).any(axis=1))
    return float(precision), float(recall)


def ref_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    inside = pairwise(real, fake) <= kth_radius(real, k)[:, None]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def ref_memorisation(train: np.ndarray, samples: np.ndarray, ratio: float) -> float:
    two = np.sort(pairwise(samples, train), axis=1)[:, :2]
    return float(np.mean(two[:, 0] < ratio * two[:, 1]))


def median_bandwidth(a: np.ndarray, b: np.ndarray) -> float:
    both = np.concatenate([a, b])
    d = pairwise(both, both)
    return float(np.median(d[np.triu_indices(len(both), 1)]))


# ---------------------------------------------------------------- helpers

def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random, well-conditioned covariance that does not commute with another one."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.exp(rng.uniform(math.log(0.05), math.log(5.0), size=d))) @ q.T


def rel_diff(theirs: float, ours: float) -> float:
    return abs(theirs - ours) / (1.0 + abs(ours))


def metrics_figure(rows: dict[str, dict[str, float]], floor: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------- grading

def grade(g) -> None:
    rng = g.rng
    digits = Digits(rng)
    params = load_extractor()
    sets = {kind: digits.sample_set(kind, rng) for kind in KINDS}  # one of each, for the metric checks
    feat = {kind: f32(features(images, params)) for kind, (images, _) in sets.items()}
    feat_ref = f32(features(digits.reference, params))
    feat_train = f32(features(digits.train, params))

    g.progress("checking your Fréchet distance")
    with g.checks("frechet_gaussian"):
        worst, where = 0.0, ""
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
        for label, m_a, c_a, m_b, c_b, truth in cases:
            m_a, c_a, m_b, c_b = (f32(t) for t in (m_a, c_a, m_b, c_b))
            ours = truth(m_a, c_a, m_b, c_b)
            theirs = g.call("frechet_from_moments", m_a, c_a, m_b, c_b)
            err = rel_diff(theirs, ours)
            if err > worst or not math.isfinite(theirs):
                worst, where = (err if math.isfinite(theirs) else math.inf), f"{label}: yours {theirs:.6g}, exact {ours:.6g}"
        g.metric("frechet_gaussian", worst,
                 hint=f"Worst case, {where}. The trace term is tr((Σa^1/2 Σb Σa^1/2)^1/2), a *matrix* square root "
                      "(not element-wise, and not Σa^1/2 Σb^1/2 unless they commute); compute it in float64 "
                      "from an eigendecomposition of a symmetric matrix.",
                 note=where)

    with g.checks("frechet_features"):
        worst, where = 0.0, ""
        pairs = [(f"reference vs {kind}", feat_ref, feat[kind]) for kind in ("good", "mode_dropped", "memorised")]
        cov_a, cov_b = random_cov(rng, 10), random_cov(rng, 10)
        ga = rng.multivariate_normal(np.zeros(10), cov_a, size=400)
        gb = rng.multivariate_normal(rng.normal(size=10), cov_b, size=300)
        pairs.append(("two Gaussian samples", f32(ga), f32(gb)))
        for label, a, b in pairs:
            ours = ref_frechet(a, b)
            theirs = g.call("frechet_distance", a, b)
            err = rel_diff(theirs, ours)
            if err > worst:
                worst, where = err, f"{label}: yours {theirs:.6g}, grader {ours:.6g}"
        g.metric("frechet_features", worst,
                 hint=f"Worst case, {where}. Fit a Gaussian to each set: the mean and the unbiased covariance "
                      "(divide by N - 1, like np.cov / torch.cov), then use your frechet_from_moments.",
                 note=where)

    g.progress("checking your MMD, sliced Wasserstein and k-NN metrics")
    with g.checks("mmd_unbiased"):
        worst, where = 0.0, ""
        cases = []
        for kind in ("good", "mode_dropped"):
            cases.append((f"reference vs {kind}", feat_ref, feat[kind], median_bandwidth(feat_ref, feat[kind])))
        same = []
        for _ in range(3):  # two samples of one distribution: an unbiased estimate averages 0
            x = f32(rng.normal(size=(120, 5)))
            y = f32(rng.normal(size=(90, 5)))
            h = float(rng.uniform(1.0, 3.0))
            cases.append(("two samples of one Gaussian", x, y, h))
            same.append(len(cases) - 1)
        theirs_same, ours_same = [], []
        for i, (label, x, y, h) in enumerate(cases):
            ours = ref_mmd2_unbiased(x, y, h)
            theirs = g.call("mmd2_unbiased", x, y, h)
            if i in same:
                theirs_same.append(theirs)
                ours_same.append(ours)
            err = abs(theirs - ours)
            if err > worst:
                worst, where = err, f"{label}: yours {theirs:.6g}, grader {ours:.6g}"
        g.metric("mmd_unbiased", worst,
                 hint=f"Worst case, {where}. On two samples of the same Gaussian your MMD² averaged "
                      f"{np.mean(theirs_same):.4g} (the grader's {np.mean(ours_same):.4g}); an unbiased estimate "
                      "is 0 on average and can be negative. Leave out the diagonal terms k(x_i, x_i) and divide "
                      "by n(n-1); the kernel is exp(-||a-b||² / (2 h²)).",
                 note=where)

    with g.checks("sliced_wasserstein"):
        worst, where = 0.0, ""
        cases = []
        for kind in ("good", "blurred"):
            theta = rng.normal(size=(50, feat_ref.shape[1]))
            theta /= np.linalg.norm(theta, axis=1, keepdims=True)
            cases.append((f"reference vs {kind}", f32(feat_ref[:N_SET]), feat[kind], f32(theta), None))
        # analytic: a shifted copy keeps the order of every projection, so SW^2 = mean_p (shift . theta_p)^2
        x = f32(rng.normal(size=(150, 4)))
        shift = rng.normal(size=4)
        theta = rng.normal(size=(20, 4))
        theta = f32(theta / np.linalg.norm(theta, axis=1, keepdims=True))
        y = f32(x + shift)
        cases.append(("a shifted copy", x, y, theta, float(np.sqrt(np.mean((theta @ (y - x).T) ** 2)))))
        for label, a, b, th, exact in cases:
            ours = ref_sliced_wasserstein(a, b, th) if exact is None else exact
            theirs = g.call("sliced_wasserstein", a, b, th)
            err = abs(theirs - ours) / abs(ours)
            if err > worst:
                worst, where = err, f"{label}: yours {theirs:.6g}, grader {ours:.6g}"
        g.metric("sliced_wasserstein", worst,
                 hint=f"Worst case, {where}. Project both sets on each direction, sort each projection, and "
                      "average the squared differences of the sorted values over samples and directions; "
                      "return the square root.",
                 note=where)

    with g.checks("precision_recall"):
        worst, where = 0.0, ""
        for kind, k in (("good", 3), ("mode_dropped", 3), ("blurred", 3), ("mode_dropped", 5)):
            ours = ref_precision_recall(feat_ref, feat[kind], k)
            out = g.call("precision_recall", feat_ref, feat[kind], k)
            theirs = (out["precision"], out["recall"])
            err = max(abs(theirs[0] - ours[0]), abs(theirs[1] - ours[1]))
            if err > worst:
                worst, where = err, (f"reference vs {kind} (k={k}): yours P={theirs[0]:.3f} R={theirs[1]:.3f}, "
                                     f"grader P={ours[0]:.3f} R={ours[1]:.3f}")
        g.metric("precision_recall", worst,
                 hint=f"Worst case, {where}. Precision: share of generated samples inside some real sample's "
                      "k-NN ball; recall: share of real samples inside some generated sample's k-NN ball. "
                      "The k-NN radius is the distance to the k-th nearest *other* point of the same set.",
                 note=where)

    with g.checks("memorisation"):
        worst, where = 0.0, ""
        share = float(rng.uniform(0.2, 0.6))
        n_copy = int(round(share * N_SET))
        mixed = np.concatenate([sets["memorised"][0][:n_copy], sets["good"][0][n_copy:]])
        cases = [("memorised set (features)", feat_train, feat["memorised"], MEMO_RATIO),
                 ("good set (features)", feat_train, feat["good"], MEMO_RATIO),
                 ("partly copied set (pixels)", f32(digits.train), f32(mixed), MEMO_RATIO),
                 ("partly copied set (pixels), ratio 0.5", f32(digits.train), f32(mixed), 0.5)]
        for label, train, samples, ratio in cases:
            ours = ref_memorisation(train, samples, ratio)
            theirs = g.call("memorisation_fraction", train, samples, ratio)
            err = abs(theirs - ours)
            if err > worst:
                worst, where = err, f"{label}: yours {theirs:.3f}, grader {ours:.3f}"
        g.metric("memorisation", worst,
                 hint=f"Worst case, {where}. Count the samples whose nearest training point is closer than "
                      "ratio × the distance to the second-nearest training point (strictly), and divide by the "
                      "number of samples.",
                 note=where)

    with g.checks("density_coverage"):
        worst, where = 0.0, ""
        for kind, k in (("good", 5), ("mode_dropped", 5), ("blurred", 3)):
            ours = ref_density_coverage(feat_ref, feat[kind], k)
            out = g.call("density_coverage", feat_ref, feat[kind], k)
            theirs = (out["density"], out["coverage"])
            err = max(abs(theirs[0] - ours[0]), abs(theirs[1] - ours[1]))
            if err > worst:
                worst, where = err, (f"reference vs {kind} (k={k}): yours density={theirs[0]:.3f} "
                                     f"coverage={theirs[1]:.3f}, grader {ours[0]:.3f} / {ours[1]:.3f}")
        g.metric("density_coverage", worst,
                 hint=f"Worst case, {where}. Both use only the real points' k-NN balls: density counts, for "
                      "each generated sample, how many real balls contain it (divided by k M); coverage is the "
                      "share of real points whose ball contains at least one generated sample.",
                 note=where)

    g.progress("asking your diagnose() about black-box generators")
    with g.checks("diagnose"):
        summary = {}
        for kind in KINDS:
            p, r = ref_precision_recall(feat_ref, feat[kind], 3)
            summary[kind] = {"fd": ref_frechet(feat_ref, feat[kind]), "precision": p, "recall": r,
                             "memorisation": ref_memorisation(feat_train, feat[kind], MEMO_RATIO)}
        # The real-vs-real floor at the same sample size: the reference against another held-out sample.
        floor = summary["good"]["fd"]
        try:
            g.attach_image("grader-metrics", metrics_figure(summary, floor),
                           "The grader's own metrics on the four kinds of sample set, in staff feature space.")
        except Exception:  # noqa: BLE001 - a figure is a courtesy; never fail grading over it
            pass
        trials = [(kind, sets[kind]) for kind in KINDS] + [(kind, digits.sample_set(kind, rng)) for kind in KINDS]
        order = rng.permutation(len(trials))
        wrong, notes = [], []
        for i in order:
            kind, (images, how) = trials[i]
            label = g.call("diagnose", f32(digits.train), f32(digits.reference), f32(images))
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

    g.progress("checking the statistics of your listening test")
    from scipy import stats

    with g.checks("mos_interval"):
        worst, where, note = 0.0, "", ""
        for n, conf in ((6, 0.95), (int(rng.integers(10, 30)), 0.95), (int(rng.integers(8, 40)), 0.9),
                        (int(rng.integers(8, 40)), 0.99)):
            p = rng.dirichlet(np.ones(5))
            scores = rng.choice(np.arange(1, 6), size=n, p=p).astype(np.float64)
            if np.all(scores == scores[0]):
                scores[0] = 1 + (scores[0] % 5)
            mean = scores.mean()
            low, high = stats.t.interval(conf, n - 1, loc=mean, scale=stats.sem(scores))
            out = g.call("mos_confidence_interval", scores, conf)
            err = max(abs(out["mean"] - mean), abs(out["low"] - low), abs(out["high"] - high))
            if err > worst:
                worst, where = err, (f"a {conf:.0%} interval: yours [{out['low']:.4f}, {out['high']:.4f}], "
                                     f"scipy [{low:.4f}, {high:.4f}]")
                note = f"n={n}, confidence {conf}: {where}"
        g.metric("mos_interval", worst,
                 hint=f"Worst case, {where}. mean ± t_(1+c)/2, n-1 · s / sqrt(n), with s the sample standard "
                      "deviation (divide by n - 1) and Student's t with n - 1 degrees of freedom (tdist.t_ppf), "
                      "not the normal 1.96.",
                 note=note)

    with g.checks("paired_test"):
        worst, where, note = 0.0, "", ""
        for n, effect in ((int(rng.integers(8, 15)), 0.0), (int(rng.integers(15, 40)), 4.0),
                          (int(rng.integers(15, 40)), 10.0)):
            rater = rng.normal(60, 12, size=n)  # MUSHRA-like 0-100 scores with a strong rater effect
            a = np.clip(rater + rng.normal(0, 6, size=n), 0, 100)
            b = np.clip(rater - effect + rng.normal(0, 6, size=n), 0, 100)
            a, b = f32(a), f32(b)
            res = stats.ttest_rel(a, b)
            out = g.call("paired_t_test", a, b)
            err = max(rel_diff(out["t"], float(res.statistic)), abs(out["p"] - float(res.pvalue)))
            if err > worst:
                worst, where = err, (f"yours t={out['t']:.4f} p={out['p']:.4g}, "
                                     f"scipy t={res.statistic:.4f} p={res.pvalue:.4g}")
                note = f"n={n}, effect {effect}: {where}"
        g.metric("paired_test", worst,
                 hint=f"Worst case, {where}. Test the per-rater differences d = a - b: t = mean(d) / (s_d / "
                      "sqrt(n)) with n - 1 degrees of freedom, two-sided p = 2 P(T > |t|). An unpaired "
                      "(two-sample) test ignores that each rater scored both systems.",
                 note=note)

    with g.checks("raters_needed"):
        from statistics import NormalDist

        z = NormalDist()
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
