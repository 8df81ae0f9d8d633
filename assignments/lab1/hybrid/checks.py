"""Trusted checks for the hybrid part (classifier-free guidance, ethics made measurable).
Runs in the grader, never in the sandbox.

Data: scikit-learn's 8x8 digits (pixels / 16) are public, so every image the student's code sees is drawn
afresh in the run's secret style (grader/checklib/digit_styles.py): the held-out digits cannot be
rebuilt from the public set, and a public digit is not a sample of the run's distribution. The styled
digits are split with the secret run seed into a training set for fit() (900) and a held-out set the
grader keeps (897); every training call returns before any held-out digit is sent.

Every score is computed here:
- conditional accuracy of samples under the staff CNN (hidden/staff_models.safetensors, trained by
  hidden/train_staff.py on digits drawn in random styles), at no guidance and at a secret guidance
  near 1 (a sampler with an off-by-one guidance convention is right at one of them only);
- k-NN recall (k = 3) in the staff feature space at three guidance values, two of them secret;
- copies: each sample's distance to the training set over its distance to fresh digits of the same
  number (checklib/copies.train_fresh_ratio: noise added to a copy does not make it new);
- the method itself: the grader integrates the student's model.velocity with its own solver and its
  own noise, and applies guidance itself, and compares the result with model.sample (the sampler uses
  the learned model); in the very same calls it asks the velocity at held-out digits on the
  flow-matching path, whose loss a learned field keeps low and a formula over stored digits does not;
  rows of the ODE, of the held-out loss and of training digits (decoys) go out mixed and shuffled
  (checklib/batches.Interleaved), all at the call's one time value;
- repeatability: the same seed gives the same samples in a fresh process, another seed others;
- membership inference: two staff autoencoders (one stopped early, one overfit until it memorised its
  members, both trained on the same fixed 200 public digits) reconstruct members and non-members; the
  student's membership_scores(x, recon) turns them into scores; the grader computes the ROC AUC;
- A (optional): a latent hybrid: compression; reconstruction of held-out digits by a decoder that is a
  smooth function of its latent; samples that are decoder outputs (encoded and decoded in later rounds,
  next to real digits the student's code never produced); accuracy and recall of its samples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from grader.checking import TRAINING_HINT, Round
from grader.checklib.batches import Interleaved
from grader.checklib.copies import train_fresh_ratio
from grader.checklib.digit_styles import DigitStyle
from grader.checklib.digits import scaled_digits, show_mosaic
from grader.checklib.features import StaffCNN, pairwise, precision_recall
from grader.checklib.mistakes import first_true
from grader.checklib.numerics import as_sent, as_sent_numpy, rel_error
from grader.sandbox.session import SandboxError

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN = 900             # the student's training split; the rest (897) is held out
N_EVAL = 400              # samples per guidance value (labels as in the held-out set)
N_SEED = 100              # samples of the seed checks
K_NN = 3
N_MIA = 150               # members and non-members per attack evaluation
NOISE = (0.01, 0.02)      # the sensor noise of the run's drawings
NULL = 10                 # the label that asks model.velocity for the unconditional velocity
ODE_STEPS = 32            # the grader's own sampler: midpoint rule, 2 velocity calls per step
FM_HELD, FM_TRAIN = 12, 4  # held-out and training rows on the flow-matching path per velocity call


# ---------------------------------------------------------------- staff networks (trained by hidden/train_staff.py)

def load_staff() -> tuple[StaffCNN, dict[str, torch.Tensor]]:
    """The staff classifier (its features are the precision/recall space) and all staff tensors."""
    cnn = StaffCNN.load(HIDDEN / "staff_models.safetensors", prefix="cnn.")
    return cnn, cnn.params


def staff_reconstruct(x: torch.Tensor, p: dict[str, torch.Tensor], which: str) -> torch.Tensor:
    """The membership-inference targets: autoencoders 64-128-16-128-64 (ReLU), `which` = "early" or
    "overfit"; both were trained on the same member set."""
    h = x
    for i in range(1, 5):
        h = F.linear(h, p[f"{which}.fc{i}.weight"], p[f"{which}.fc{i}.bias"])
        h = F.relu(h) if i < 4 else h
    return h


# ---------------------------------------------------------------- data and the grader's own metrics

class Digits:
    """The run's digits: drawn in its secret style, split with its secret seed (float32 values, as sent)."""

    def __init__(self, rng: np.random.Generator):
        x, y = scaled_digits()
        self.public = x.astype(np.float32)  # the membership-inference images (the staff models saw these)
        self.style = DigitStyle.draw(rng, noise=NOISE)
        perm = rng.permutation(len(x))
        train_idx, held_idx = perm[:N_TRAIN], perm[N_TRAIN:]
        self.x_train = as_sent_numpy(self.style.render(x[train_idx], rng)).astype(np.float32)
        self.y_train = y[train_idx]
        self.x_held = as_sent_numpy(self.style.render(x[held_idx], rng)).astype(np.float32)
        self.y_held = y[held_idx]


@dataclass(frozen=True)
class Guidance:
    """The guidance values asked: none, a secret one near 1 (the E accuracy) and a secret strong one."""

    mid: float
    high: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Guidance:
        return cls(float(np.float32(rng.uniform(0.75, 1.5))), float(np.float32(rng.uniform(2.5, 4.0))))

    @property
    def values(self) -> tuple[float, float, float]:
        return (0.0, self.mid, self.high)


def roc_auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member), ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_in, n_out = int(is_member.sum()), int((~is_member).sum())
    return float((ranks[is_member].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with an RBF kernel at the median pairwise distance (staff features)."""
    both = np.concatenate([x, y])
    d = pairwise(both, both)
    h = float(np.median(d[np.triu_indices(len(both), 1)]))
    k = np.exp(-d**2 / (2 * h**2))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean())


def pixels(samples: torch.Tensor) -> np.ndarray:
    return np.clip(samples.numpy(), 0.0, 1.0).astype(np.float32)


def draw_sample_grid(fig: Figure, samples: dict[float, np.ndarray], labels: np.ndarray, per_class: int = 4) -> None:
    """One row per label 0-9, `per_class` samples of it for each guidance value, side by side."""
    axes = fig.subplots(1, len(samples))
    for ax, (w, images) in zip(np.atleast_1d(axes), samples.items(), strict=True):
        rows = [images[np.flatnonzero(labels == c)[:per_class]] for c in range(10)]
        grid = np.concatenate([np.pad(r, ((0, per_class - len(r)), (0, 0)), constant_values=np.nan) for r in rows])
        show_mosaic(ax, grid, cols=per_class, title=f"w = {w:.2f}")
    fig.suptitle("Your samples: one row per label 0-9, guidance w = " + ", ".join(f"{w:.2f}" for w in samples),
                 fontsize=8)


def draw_tradeoff(fig: Figure, rows: dict[float, dict[str, float]]) -> None:
    ws = list(rows)
    ax = fig.subplots()
    for key, style in (("accuracy", "o-"), ("precision", "s-"), ("recall", "^-")):
        ax.plot(ws, [rows[w][key] for w in ws], style, label=key)
    ax.set_xlabel("guidance w")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ws, [f"{w:.2f}" for w in ws])
    ax.legend(fontsize=8)
    ax.set_title("Guidance trade-off (staff classifier and features, k = 3)", fontsize=8)


# ---------------------------------------------------------------- the grader's own sampler of the student's velocity

@dataclass
class FlowRows:
    """Rows on the flow-matching path x_t = t x1 + (1 - t) x0 (model units: x1 = 2 pixel - 1), asked at one
    time t with their label and with the null label: the held-out loss, and training rows as decoys."""

    x1: torch.Tensor
    x0: torch.Tensor
    labels: torch.Tensor

    def at(self, t: float) -> torch.Tensor:
        return t * self.x1 + (1 - t) * self.x0

    def target(self) -> torch.Tensor:
        return self.x1 - self.x0


def flow_rows(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, per_call: int) -> list[FlowRows]:
    """per_call random rows (with replacement across calls) for each of the 2 * ODE_STEPS velocity calls."""
    out = []
    for _ in range(2 * ODE_STEPS):
        idx = rng.choice(len(images), per_call, replace=False)
        x1 = torch.from_numpy(images[idx]).double() * 2 - 1
        out.append(FlowRows(x1, torch.from_numpy(rng.normal(size=x1.shape)), torch.from_numpy(labels[idx])))
    return out


@dataclass
class Integrated:
    samples: np.ndarray  # [N, 64] pixels in [0, 1]
    loss_cond: float  # held-out flow-matching loss, conditional velocity (summed over pixels, per row)
    loss_uncond: float  # the same, null label
    train_loss_cond: float  # on training digits (for staff: the generalisation gap)


def ask_velocity(g, rng: np.random.Generator, x: torch.Tensor, t: float, labels: torch.Tensor,
                 groups: list[FlowRows]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """One call of model.velocity at time t: the states x with their labels and with the null label, and
    each group of path rows likewise, in one shuffled batch. Returns (v_cond, v_uncond) of the states and
    of each group."""
    blocks = [x, *(grp.at(t) for grp in groups)]
    block_labels = [labels, *(grp.labels for grp in groups)]
    rows = [torch.cat([b, lab.double()[:, None]], dim=1) for b, lab in zip(blocks, block_labels, strict=True)]
    rows += [torch.cat([b, torch.full((len(b), 1), float(NULL), dtype=torch.float64)], dim=1) for b in blocks]
    batch = Interleaved(rng, *rows)
    sent = as_sent(batch.rows[:, :64])
    answer = g.call("model.velocity", sent, torch.full((len(sent),), t, dtype=torch.float32),
                    batch.rows[:, 64].round().long())
    parts = batch.split(answer)
    n = len(blocks)
    return parts[0], parts[n], [(parts[i], parts[n + i]) for i in range(1, n)]


def integrate(g, rng: np.random.Generator, labels: np.ndarray, w: float, held: list[FlowRows],
              train: list[FlowRows]) -> Integrated:
    """Midpoint rule from the grader's own noise at t = 0 to t = 1 with the guided velocity
    v_c + w (v_c - v_u) made here from the student's v(x, t, c) and v(x, t, null)."""
    x = torch.from_numpy(rng.normal(size=(len(labels), 64)))
    labels_t = torch.from_numpy(labels)
    h = 1.0 / ODE_STEPS
    losses: dict[str, list[torch.Tensor]] = {"cond": [], "uncond": [], "train": []}

    def guided(state: torch.Tensor, t: float, call: int) -> torch.Tensor:
        v_c, v_u, (held_v, train_v) = ask_velocity(g, rng, state, t, labels_t, [held[call], train[call]])
        losses["cond"].append((held_v[0] - held[call].target()).pow(2).sum(1))
        losses["uncond"].append((held_v[1] - held[call].target()).pow(2).sum(1))
        losses["train"].append((train_v[0] - train[call].target()).pow(2).sum(1))
        return v_c + w * (v_c - v_u)

    for i in range(ODE_STEPS):
        mid = x + 0.5 * h * guided(x, i * h, 2 * i)
        x = x + h * guided(mid, i * h + 0.5 * h, 2 * i + 1)
    mean = {k: float(torch.cat(v).mean()) for k, v in losses.items()}
    return Integrated(((x + 1) / 2).clamp(0, 1).numpy().astype(np.float32), mean["cond"], mean["uncond"],
                      mean["train"])


# ---------------------------------------------------------------- feedback written as branches on what was measured

def accuracy_hint(acc: dict[float, float], g_mid: float) -> str:
    acc0, acc_mid = acc[0.0], acc[g_mid]
    return first_true([
        (acc0 < 0.3 and acc_mid < 0.3,
         f"Without guidance and at w = {g_mid:.2f} the staff classifier rarely finds the requested digit: does "
         "sample() feed the labels to the network (not the null label), and was the network trained with the "
         "labels?"),
        (acc0 < 0.5 <= acc_mid,
         f"Without guidance (w = 0) {acc0:.0%} of your samples show the requested digit, at w = {g_mid:.2f} "
         f"{acc_mid:.0%} do: at w = 0 the sampler must use the conditional velocity v_c alone. Check the "
         "convention: this lab's w = 0 is unguided (v_c + w (v_c - v_u)); the other convention's s = 1 + w puts "
         "the unconditional model at s = 0."),
        (acc_mid < acc0 - 0.1,
         "Your samples follow their labels without guidance but less with it: check the sign of guided_velocity "
         "in the sampler, and that the unconditional velocity was trained (label dropout: the null label for a "
         "fraction of each batch)."),
    ], "Samples for label c should look like the digit c to the staff classifier: train longer (or with an "
       "average of the weights), check that training drops the label only for a small fraction of the batch.")


def flow_hint(ours: Integrated, limit: float) -> str:
    return first_true([
        (ours.loss_cond <= limit < ours.loss_uncond,
         f"Your velocity predicts the flow well with a label ({ours.loss_cond:.1f}) but not with the null label "
         f"({ours.loss_uncond:.1f}): the unconditional velocity was not learned. Replace the label by NULL for a "
         "fraction of each training batch (label dropout, e.g. 10-20 %), so the same network learns both."),
        (ours.train_loss_cond < 0.5 * ours.loss_cond,
         f"Your velocity fits the flow of training digits ({ours.train_loss_cond:.1f}) far better than that of new "
         f"digits ({ours.loss_cond:.1f}): it memorises its training set. A network trained on the flow-matching "
         "loss with fresh noise and times in every batch generalises."),
    ], "Your velocity does not predict the flow of new digits: train it on the flow-matching loss "
       "|v(x_t, t, c) - (x1 - x0)|² over x_t = t x1 + (1 - t) x0 (model units, noise at t = 0), with "
       "t drawn over all of [0, 1].")


def seed_hint(within: float, across: float) -> str:
    return first_true([
        (within < 0.03,
         "Your samples hardly differ from one another even within one call: the noise does not reach the images "
         f"(mean pixel difference between samples of one label {within:.3f}). Start the ODE from x ~ N(0, I) drawn "
         "with a torch.Generator seeded with `seed`, and let the velocity depend on x."),
    ], "Within one call your samples differ, but two seeds gave (nearly) the same images: draw the starting noise "
       "from torch.Generator().manual_seed(seed), not from a fixed seed.")


def repeat_hint(gap: float) -> str:
    return first_true([
        (gap < 1e-2,
         f"The same seed gave nearly, but not exactly, the same images (largest difference {gap:.2g}): something "
         "in sample() depends on more than `seed` (the global random generator, or the batch it is called with)."),
    ], "The same labels and seed gave other images when asked again in a fresh process: draw every random number "
       "of sample() from torch.Generator().manual_seed(seed), never from the global generator or the clock.")


def mia_hint(auc: float) -> str:
    return first_true([
        (auc < 0.35,  # as far from 0.5 as the 0.65 below which the scores count as no information
         "Your scores are inverted: members get *lower* scores. A higher score must mean 'more likely a member', "
         "and members are reconstructed better (a smaller error)."),
        (auc < 0.65,
         "Your scores carry almost no information about membership (an AUC near 0.5 is guessing): they must "
         "follow how well each image is reconstructed, e.g. minus its summed squared reconstruction error."),
    ], "Your attack separates members from non-members only weakly: score each image by how well the model "
       "reconstructs it (minus the summed squared error), one score per image.")


# ---------------------------------------------------------------- grading

@contextlib.contextmanager
def last_round(g) -> Iterator[Round]:
    """The run's last round: a fresh sandbox (the previous round ended its own) that is not closed at the end,
    so that the engine's fingerprint after the checks needs no sandbox start of its own."""
    batch = Round(g)
    yield batch
    batch.run()


def grade(g) -> None:
    data = Digits(g.rng)
    cnn, staff = load_staff()
    guidance = Guidance.draw(g.rng)
    eval_idx = g.rng.choice(len(data.x_held), N_EVAL, replace=False)
    x_eval, y_eval = data.x_held[eval_idx], data.y_held[eval_idx]
    others = data.x_held[np.setdiff1d(np.arange(len(data.x_held)), eval_idx)]  # never sent before round 2

    g.progress("training your model")
    probe_x = torch.from_numpy(g.rng.normal(size=(11, 64)).astype(np.float32))
    probe = ("model.velocity", (probe_x, torch.linspace(0, 0.97, 11), torch.arange(11)), {})
    trained = g.train("fit", data.x_train, data.y_train, check=None, probe=probe)
    record_budget(g, "fit_budget", trained, g.train_seconds)
    # The optional A model trains in the same training sandbox, before anything is scored: no held-out
    # digit has been sent to any sandbox yet.
    g.progress("A: training your latent hybrid")
    latent = g.train("fit_latent", data.x_train, data.y_train, check=None, budget=0.75 * g.train_seconds,
                     probe=("latent.encode", (data.x_train[:8],), {}))
    record_budget(g, "latent_budget", latent, 0.75 * g.train_seconds)

    seeds = [g.torch_seed() for _ in range(3)]
    g.progress("sampling from your model")
    with g.round() as r:  # round 1: samples, the formula checks, the attack, the latent model's samples
        asked = ask_round_one(r, g, data, guidance, y_eval, x_eval, staff, seeds)
    judge_guided_velocity(g, asked)
    judge_mia(g, asked)
    judge_seed_changes(g, asked, y_eval)

    g.progress("integrating your velocity")
    with g.round() as r:  # round 2: the grader's own sampler, the repeated seed, the latent decode/encode
        later = ask_round_two(r, g, data, guidance, y_eval, others, cnn, asked, seeds)
    judge_seed_repeats(g, asked, later)
    judge_samples(g, data, cnn, guidance, x_eval, y_eval, asked)  # counted only for the learned model's samples
    with last_round(g) as r:  # round 3: decode what round 2 encoded
        cycle = ask_round_three(r, g, later)
    judge_latent(g, data, cnn, x_eval, y_eval, guidance, asked, later, cycle)


def record_budget(g, name: str, training, budget: float) -> None:
    """The training time against its limit, with a note to staff when it is far below what a model needs."""
    with g.section(name):
        if training.error is not None:
            raise training.error
        # g.train flagged a quick training: a closed-form velocity over the training digits passes every E
        # and C check (tests/redteam), so the examiner must look
        note = "flagged to the examiner: far sooner than any training" if training.quick else ""
        g.metric(name, training.seconds, threshold=g.training_limit(budget), hint=TRAINING_HINT, note=note)


def ask_round_one(r, g, data: Digits, guidance: Guidance, y_eval, x_eval, staff, seeds) -> dict:
    asked = {"samples": {w: r.call("model.sample", y_eval, guidance=w, seed=seeds[0]) for w in guidance.values},
             "seed_a": r.call("model.sample", y_eval[:N_SEED], guidance=guidance.mid, seed=seeds[1]),
             "seed_b": r.call("model.sample", y_eval[:N_SEED], guidance=guidance.mid, seed=seeds[2])}
    asked["velocity_cases"] = []
    for w in (0.0, 1.0, float(g.rng.uniform(1.5, 5.0)), float(g.rng.uniform(-1.0, 0.0))):
        v_cond, v_uncond = as_sent(g.rng.normal(size=(64, 64)), g.rng.normal(size=(64, 64)))
        asked["velocity_cases"].append((w, r.call("guided_velocity", v_cond, v_uncond, w),
                                        v_cond + w * (v_cond - v_uncond)))
    members = staff["mia.members"].numpy()
    non_members = np.setdiff1d(np.arange(len(data.public)), members)
    pick = np.concatenate([g.rng.choice(members, N_MIA, replace=False), g.rng.choice(non_members, N_MIA, replace=False)])
    is_member = np.r_[np.ones(N_MIA, bool), np.zeros(N_MIA, bool)]
    order = g.rng.permutation(len(pick))
    x = torch.from_numpy(data.public[pick[order]])
    asked["mia"] = (is_member[order], {which: r.call("membership_scores", x, staff_reconstruct(x, staff, which).detach())
                                       for which in ("early", "overfit")})
    asked["latent_samples"] = {w: r.call("latent.sample", y_eval, guidance=w, seed=seeds[0])
                               for w in (0.0, guidance.mid)}
    asked["latent_encode"] = r.call("latent.encode", x_eval)
    return asked


QUALITY = ("accuracy", "accuracy_unguided", "not_copies", "tradeoff_accuracy", "tradeoff_recall", "guidance_effect",
           "recall_c")
NOT_COUNTED = ("Not counted: samples are scored only when they come from your learned model, and the grader could "
               "not show that they do: model.sample must integrate the velocity model.velocity returns "
               "(sampler_uses_model), and that velocity must predict the flow of digits it never saw (flow_heldout). "
               "See those two checks.")


def counted(g, name: str) -> bool:
    """A sample-quality check counts only once the samples are shown to be the learned model's."""
    return (g.requires(name, "flow_heldout", failed=NOT_COUNTED)
            and g.requires(name, "sampler_uses_model", failed=NOT_COUNTED))


def judge_samples(g, data: Digits, cnn: StaffCNN, guidance: Guidance, x_eval, y_eval, asked: dict) -> None:
    with g.section(*QUALITY):
        samples = {w: pixels(p.value) for w, p in asked["samples"].items()}
        feat_real = cnn.features(x_eval)
        rows = {}
        for w, s in samples.items():
            precision, recall = precision_recall(feat_real, cnn.features(s), K_NN)
            rows[w] = {"accuracy": float((cnn.classify(s) == y_eval).mean()), "precision": precision, "recall": recall}
        table = "; ".join(f"w={w:.2f}: accuracy {r['accuracy']:.3f}, precision {r['precision']:.3f}, "
                          f"recall {r['recall']:.3f}" for w, r in rows.items())
        g.figure("samples", "Your samples for the labels 0-9 (rows) at three guidance values (column groups).",
                 lambda fig: draw_sample_grid(fig, samples, y_eval), size=(6.0, 5.0))
        g.figure("tradeoff", "Accuracy under the staff classifier and k-NN precision/recall in its feature space, per w.",
                 lambda fig: draw_tradeoff(fig, rows), size=(4.2, 2.8))
        acc = {w: rows[w]["accuracy"] for w in (0.0, guidance.mid)}
        ratio = train_fresh_ratio(samples[0.0], data.x_train, data.x_held, g.rng)
        copy_note = (f"median distance to training / to fresh digits {ratio:.3f}"
                     + (" (nearer the training set than fresh data)" if ratio < 0.95 else ""))
        if counted(g, "accuracy"):
            g.metric("accuracy", acc[guidance.mid], hint=accuracy_hint(acc, guidance.mid), note=table,
                     detail=f"Accuracy without guidance {acc[0.0]:.3f}, at w = {guidance.mid:.2f}: {acc[guidance.mid]:.3f}.")
        if counted(g, "accuracy_unguided"):
            g.metric("accuracy_unguided", acc[0.0], hint=accuracy_hint(acc, guidance.mid), note=table,
                     detail=f"Accuracy without guidance {acc[0.0]:.3f}, at w = {guidance.mid:.2f}: {acc[guidance.mid]:.3f}.")
        if counted(g, "not_copies"):
            g.metric("not_copies", ratio, note=copy_note,
                     hint="Your samples lie nearer to training images than to new digits: the model reproduces its "
                          "training set (noise added to a copy does not make it new). Sample from noise with the "
                          "learned velocity; do not return (noisy) training images.")
        else:
            g.log.note("staff", f"not_copies not counted; {copy_note}")
        judge_tradeoff(g, guidance, rows, table)


def judge_seed_changes(g, asked: dict, y_eval) -> None:
    with g.section("seed_changes"):
        seed_changes(g, pixels(asked["seed_a"].value), pixels(asked["seed_b"].value), y_eval)


def seed_changes(g, a: np.ndarray, b: np.ndarray, y_eval) -> None:
    labels = y_eval[:N_SEED]
    same_label = labels[:, None] == labels[None, :]
    np.fill_diagonal(same_label, False)
    within = float(np.abs(a[:, None, :] - a[None, :, :]).mean(-1)[same_label].mean()) if same_label.any() else 0.0
    change = float(np.abs(a - b).mean())
    g.metric("seed_changes", change, hint=seed_hint(within, change),
             note=f"mean pixel difference between seeds {change:.3f}, between samples of one label {within:.3f}")


def judge_tradeoff(g, guidance: Guidance, rows: dict, table: str) -> None:
    ws = guidance.values
    accs = [rows[w]["accuracy"] for w in ws]
    recalls = [rows[w]["recall"] for w in ws]
    if counted(g, "tradeoff_accuracy"):
        g.metric("tradeoff_accuracy", max(a - b for a, b in zip(accs, accs[1:], strict=False)),
                 hint="Accuracy should not drop as the guidance grows: stronger guidance pushes samples towards "
                      "what the label explains best. " + table, note=table)
    if counted(g, "tradeoff_recall"):
        g.metric("tradeoff_recall", max(b - a for a, b in zip(recalls, recalls[1:], strict=False)),
                 hint="Recall (coverage of the real digits) should not grow with the guidance. " + table, note=table)
    if counted(g, "guidance_effect"):
        g.metric("guidance_effect", recalls[0] - recalls[-1],
                 hint=f"Guidance w = {ws[-1]:.2f} should visibly change the samples compared with w = 0: recall "
                      "should drop as samples concentrate on the most typical digits. Does sample() use `guidance`? "
                      + table, note=table)
    if counted(g, "recall_c"):
        g.metric("recall_c", recalls[0],
                 hint="At w = 0 your samples cover too little of the real digits' variety: train longer or with a "
                      "wider network, and check the label-dropout rate. " + table, note=table)


def judge_guided_velocity(g, asked: dict) -> None:
    with g.section("guided_velocity"):
        worst, where = 0.0, ""
        for w, pending, truth in asked["velocity_cases"]:
            err = rel_error(pending.value, truth)
            if err >= worst:
                worst, where = err, f"w = {w:.2f}"
        g.metric("guided_velocity", worst, note=where,
                 hint=f"Worst at {where}. Classifier-free guidance: v_cond + w (v_cond - v_uncond); w = 0 is the "
                      "conditional velocity, w = -1 the unconditional one, larger w moves away from it.")


def judge_mia(g, asked: dict) -> None:
    with g.section("mia_overfit_auc", "mia_leak_gap"):
        is_member, pendings = asked["mia"]
        aucs = {which: roc_auc(p.value.numpy(), is_member) for which, p in pendings.items()}
        note = f"AUC early-stopped {aucs['early']:.3f}, overfit {aucs['overfit']:.3f}"
        g.metric("mia_overfit_auc", aucs["overfit"], note=note, hint=mia_hint(aucs["overfit"]))
        gap_hint = ("The overfit model should leak clearly more than the early-stopped one under your attack "
                    f"({note}).")
        if aucs["overfit"] < 0.9:
            gap_hint += " Against the overfit model your attack is itself weak (see the check above)."
        g.metric("mia_leak_gap", aucs["overfit"] - aucs["early"], hint=gap_hint, note=note)


def ask_round_two(r, g, data: Digits, guidance: Guidance, y_eval, others: np.ndarray, cnn: StaffCNN, asked: dict,
                  seeds: list[int]) -> dict:
    later = {"seed_a_again": r.call("model.sample", y_eval[:N_SEED], guidance=guidance.mid, seed=seeds[1])}
    with g.section("sampler_uses_model", "flow_heldout"):
        held = flow_rows(g.rng, data.x_held, data.y_held, FM_HELD)
        train = flow_rows(g.rng, data.x_train, data.y_train, FM_TRAIN)
        ours = integrate(g, g.rng, y_eval, guidance.mid, held, train)
        judge_method(g, cnn, guidance, ours, asked, y_eval)
    with contextlib.suppress(SandboxError):  # no latent model: its own section says why
        z = asked["latent_encode"].value
        std = z.std(0).clamp_min(1e-6)
        subset = torch.from_numpy(g.rng.choice(len(z), 100, replace=False))
        step = torch.from_numpy(g.rng.normal(size=(100, z.shape[1]))) * std * 0.02
        later["decode"] = Interleaved(g.rng, z, z[subset] + step, z[subset] + 10 * step)
        later["decode_parts"] = (subset, step)
        later["decode_answer"] = r.call("latent.decode", later["decode"].rows)
        s0 = pixels(asked["latent_samples"][0.0].value)
        fresh = others[g.rng.choice(len(others), 200, replace=False)]  # real digits it never produced
        later["encode"] = Interleaved(g.rng, torch.from_numpy(s0).double(), torch.from_numpy(fresh).double())
        later["encode_answer"] = r.call("latent.encode", later["encode"].rows)
    return later


def judge_method(g, cnn: StaffCNN, guidance: Guidance, ours: Integrated, asked: dict, y_eval) -> None:
    g.metric("flow_heldout", max(ours.loss_cond, ours.loss_uncond),
             detail=(f"Flow-matching loss on held-out digits: conditional {ours.loss_cond:.1f}, unconditional "
                     f"{ours.loss_uncond:.1f} (on training digits {ours.train_loss_cond:.1f})."),
             hint=flow_hint(ours, g.part.checks["flow_heldout"].threshold),
             note=f"held-out loss cond {ours.loss_cond:.2f}, uncond {ours.loss_uncond:.2f}, train {ours.train_loss_cond:.2f}")
    theirs = pixels(asked["samples"][guidance.mid].value)  # no samples: only this check is lost
    gap = mmd2(cnn.features(ours.samples), cnn.features(theirs))
    acc_ours = float((cnn.classify(ours.samples) == y_eval).mean())
    acc_theirs = float((cnn.classify(theirs) == y_eval).mean())
    g.metric("sampler_uses_model", gap,
             detail=(f"Integrating your model.velocity at w = {guidance.mid:.2f} from its own noise, with guidance "
                     f"applied by the grader, gives samples of accuracy {acc_ours:.3f}; your model.sample gives "
                     f"{acc_theirs:.3f}."),
             hint="model.sample should integrate the same velocity your model.velocity returns, guided as "
                  "v_c + w (v_c - v_u), from x ~ N(0, I) at t = 0 to t = 1 (any accurate solver), and map the "
                  "result from [-1, 1] back to pixels.",
             note=f"MMD² {gap:.4f}; accuracy grader's sampler {acc_ours:.3f}, yours {acc_theirs:.3f}")


def judge_seed_repeats(g, asked: dict, later: dict) -> None:
    with g.section("seed_repeats"):
        first, again = asked["seed_a"].value, later["seed_a_again"].value
        gap = rel_error(again, first)
        g.metric("seed_repeats", gap, hint=repeat_hint(gap))


def ask_round_three(r, g, later: dict) -> dict:
    cycle = {}
    with contextlib.suppress(SandboxError, KeyError):  # no latent model: its own section says why
        z_samples, z_fresh = later["encode"].split(later["encode_answer"].value)
        cycle["batch"] = Interleaved(g.rng, z_samples, z_fresh)
        cycle["answer"] = r.call("latent.decode", cycle["batch"].rows)
    return cycle


def judge_latent(g, data: Digits, cnn: StaffCNN, x_eval, y_eval, guidance: Guidance, asked: dict, later: dict,
                 cycle: dict) -> None:
    with g.section("latent_dim", "latent_recon", "latent_samples_decoded", "latent_accuracy", "latent_recall"):
        z = asked["latent_encode"].value
        g.metric("latent_dim", z.shape[1], hint="Use a bottleneck of at most 16 latent numbers.")
        recon, near, far = later["decode"].split(later["decode_answer"].value)
        subset, _ = later["decode_parts"]
        err_real = ((np.clip(recon.numpy(), 0, 1) - x_eval) ** 2).sum(1)
        small = (near - recon[subset]).norm(dim=1)
        large = (far - recon[subset]).norm(dim=1).clamp_min(1e-12)
        smoothness = float((small / large).median())  # about 0.1 for a smooth decoder
        if smoothness > 0.3:
            g.record("latent_recon", False,
                     f"Not counted: decode is not a smooth function of its latent (a step of 2 % of the latent's "
                     f"spread changed the image {smoothness:.2f} times as much as a step ten times larger; a smooth "
                     "decoder gives about 0.1). A reconstruction counts only for a decoder that maps nearby latents "
                     "to nearby images.", value=float(err_real.mean()), note=f"smoothness ratio {smoothness:.3f}")
        else:
            g.metric("latent_recon", float(err_real.mean()), note=f"smoothness ratio {smoothness:.3f}",
                     hint="Train the autoencoder longer or wider; a bottleneck of 8-16 numbers is enough for 8x8 digits.")
        judge_latent_samples(g, data, cnn, x_eval, y_eval, guidance, asked, later, cycle, float(err_real.mean()))


def judge_latent_samples(g, data: Digits, cnn: StaffCNN, x_eval, y_eval, guidance: Guidance, asked: dict,
                         later: dict, cycle: dict, err_eval: float) -> None:
    """The latent model's samples, counted only when they are not its training digits: decoded training
    codes kept in the state are decoder outputs of the right labels (they re-encode, classify and recall as
    well as honest samples) and would pass all three without a latent flow; the copy test is E's not_copies,
    at its threshold, on the unguided samples."""
    s0 = pixels(asked["latent_samples"][0.0].value)  # a failed query raises here, before anything below needs it
    s1 = pixels(asked["latent_samples"][guidance.mid].value)
    ratio, limit = train_fresh_ratio(s0, data.x_train, data.x_held, g.rng), g.part.checks["not_copies"].threshold
    if ratio < limit:
        g.flag(f"latent.sample: samples lie nearer the training digits than new digits (median distance ratio "
               f"{ratio:.2f}, the reference about 0.9)")
        for name in ("latent_samples_decoded", "latent_accuracy", "latent_recall"):
            g.record(name, False, f"Not counted: your latent model's samples lie nearer to training images than to "
                     f"new digits (median distance ratio {ratio:.2f}; at least {limit:g} is needed, as for "
                     "not_copies): decode latents drawn by your latent flow, never stored training codes.",
                     note=f"median distance to training / to fresh digits {ratio:.3f}")
        return
    if "answer" not in cycle:
        _ = later["encode_answer"].value  # the encoding's own error (it kept round 3 from decoding)
    sent_samples, sent_fresh = (t.numpy() for t in later["encode"].split(later["encode"].rows))
    decoded_samples, decoded_fresh = cycle["batch"].split(cycle["answer"].value)
    err_samples = ((np.clip(decoded_samples.numpy(), 0, 1) - sent_samples) ** 2).sum(1)
    err_fresh = ((np.clip(decoded_fresh.numpy(), 0, 1) - sent_fresh) ** 2).sum(1)
    g.metric("latent_samples_decoded", float(err_samples.mean() / err_fresh.mean()),
             hint="Samples should be decode(z) for latents z drawn by your latent flow.",
             note=f"re-encoding error samples {err_samples.mean():.3f}, real {err_fresh.mean():.3f} "
                  f"(held-out reconstruction {err_eval:.3f})")
    acc = float((cnn.classify(s1) == y_eval).mean())
    g.metric("latent_accuracy", acc, hint="Condition the latent flow on the label and guide it as in E.")
    g.metric("latent_recall", precision_recall(cnn.features(x_eval), cnn.features(s0), K_NN)[1],
             hint="Standardise the latents before fitting the flow, and check the autoencoder's reconstructions.")
