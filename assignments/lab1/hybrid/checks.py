"""Trusted checks for the hybrid part (classifier-free guidance, ethics made measurable).
Runs in the grader, never in the sandbox.

Data: scikit-learn's 8x8 digits (pixels / 16, in [0, 1]) split with the secret run seed into a training
set the student's fit() sees and a held-out set the grader keeps. Every score is computed here:
- conditional accuracy of samples under the staff CNN classifier (hidden/staff_models.safetensors,
  trained once by hidden/train_staff.py);
- k-NN precision/recall (k = 3) in the staff feature space (penultimate layer, top 16 PCs);
- samples vs. copies: nearest-training-image distance of samples against that of held-out digits;
- membership inference: two staff autoencoders (one stopped early, one overfit until it memorised its
  members, both trained on the same fixed 200 digits) reconstruct members and non-members the grader
  knows; the student's membership_scores(x, recon) turns them into scores and the grader computes the
  ROC AUC per model.
- A (optional): a latent hybrid (autoencoder + guided latent flow): compression, reconstruction,
  samples on the decoder's manifold, accuracy and recall of its samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from grader.checklib.copies import nn_distance_ratio
from grader.checklib.digits import scaled_digits, show_mosaic
from grader.checklib.features import StaffCNN, precision_recall
from grader.checklib.numerics import as_sent, rel_error

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN = 1100            # the student's training split; the rest (697) is held out
N_EVAL = 400              # samples per guidance value (labels as in the held-out set)
GUIDANCE = (0.0, 1.0, 3.0)
E_GUIDANCE = 1.0          # the E accuracy is measured at this guidance
K_NN = 3
N_MIA = 150               # members and non-members per attack evaluation


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
    """sklearn's digits (pixels / 16, in [0, 1]) split with the secret run seed."""

    def __init__(self, rng: np.random.Generator):
        x, self.y = scaled_digits()
        self.x = x.astype(np.float32)
        perm = rng.permutation(len(self.x))
        self.train_idx, self.held_idx = perm[:N_TRAIN], perm[N_TRAIN:]


def roc_auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member), ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_in, n_out = int(is_member.sum()), int((~is_member).sum())
    return float((ranks[is_member].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def draw_sample_grid(fig: Figure, samples: dict[float, np.ndarray], labels: np.ndarray, per_class: int = 4) -> None:
    """One row per label 0-9, `per_class` samples of it for each guidance value, side by side."""
    axes = fig.subplots(1, len(samples))
    for ax, (w, images) in zip(np.atleast_1d(axes), samples.items(), strict=True):
        rows = [images[np.flatnonzero(labels == c)[:per_class]] for c in range(10)]
        grid = np.concatenate([np.pad(r, ((0, per_class - len(r)), (0, 0)), constant_values=np.nan) for r in rows])
        show_mosaic(ax, grid, cols=per_class, title=f"w = {w:g}")
    fig.suptitle("Your samples: one row per label 0-9, guidance w = " + ", ".join(f"{w:g}" for w in samples),
                 fontsize=8)


def draw_tradeoff(fig: Figure, rows: dict[float, dict[str, float]]) -> None:
    ws = list(rows)
    ax = fig.subplots()
    for key, style in (("accuracy", "o-"), ("precision", "s-"), ("recall", "^-")):
        ax.plot(ws, [rows[w][key] for w in ws], style, label=key)
    ax.set_xlabel("guidance w")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ws)
    ax.legend(fontsize=8)
    ax.set_title("Guidance trade-off (staff classifier and features, k = 3)", fontsize=8)


# ---------------------------------------------------------------- grading

def grade(g) -> None:
    data = Digits(g.rng)
    cnn, staff = load_staff()
    x_train, y_train = data.x[data.train_idx], data.y[data.train_idx]
    eval_idx = g.rng.choice(data.held_idx, N_EVAL, replace=False)
    x_eval, y_eval = data.x[eval_idx], data.y[eval_idx]
    x_held = data.x[data.held_idx]
    feat_real = cnn.features(x_eval)

    g.progress("training your model")
    g.train("fit", x_train, y_train, check="fit_budget",
            probe=("model.sample", (torch.arange(10),), {"guidance": 1.0, "seed": 0}))
    # The optional A model trains in the same training sandbox, before anything is scored: what it
    # prints is the student's to see, and no held-out digit has been sent to any sandbox yet.
    g.progress("A: training your latent hybrid")
    g.train("fit_latent", x_train, y_train, check="latent_budget", budget=0.75 * g.train_seconds,
            probe=("latent.encode", (x_train[:8],), {}))
    seed = g.torch_seed()  # one seed for every sampler, so the guidance values compare like with like
    with g.section("accuracy", "seed_changes", "not_copies", "tradeoff_accuracy", "tradeoff_recall",
                   "guidance_effect", "recall_c"):
        g.progress("sampling from your model")
        samples, rows = {}, {}
        for w in GUIDANCE:
            s = g.call("model.sample", y_eval, guidance=w, seed=seed).numpy()
            samples[w] = np.clip(s, 0.0, 1.0).astype(np.float32)
            acc = float((cnn.classify(samples[w]) == y_eval).mean())
            precision, recall = precision_recall(feat_real, cnn.features(samples[w]), K_NN)
            rows[w] = {"accuracy": acc, "precision": precision, "recall": recall}
        table = "; ".join(f"w={w:g}: accuracy {r['accuracy']:.3f}, precision {r['precision']:.3f}, "
                          f"recall {r['recall']:.3f}" for w, r in rows.items())
        g.figure("samples", "Your samples for the labels 0-9 (rows) at guidance w = 0, 1 and 3 (column groups).",
                 lambda fig: draw_sample_grid(fig, samples, y_eval), size=(6.0, 5.0))
        g.figure("tradeoff", "Accuracy under the staff classifier and k-NN precision/recall in its feature space, per w.",
                 lambda fig: draw_tradeoff(fig, rows), size=(4.2, 2.8))

        g.metric("accuracy", rows[E_GUIDANCE]["accuracy"],
                 hint="Samples for label c should look like the digit c to the staff classifier. Check that "
                      "sample() feeds the labels to the network, that guided_velocity has the right sign, and "
                      "that training drops the label only for a small fraction of the batch.",
                 note=table)

        other = g.call("model.sample", y_eval[:100], guidance=E_GUIDANCE, seed=seed + 1).numpy()
        change = float(np.abs(np.clip(other, 0, 1) - samples[E_GUIDANCE][:100]).mean())
        g.metric("seed_changes", change,
                 hint="sample() must draw its starting noise from a generator seeded with `seed`; different "
                      "seeds must give different images.")

        ratio = nn_distance_ratio(samples[0.0], x_train, x_held)
        g.metric("not_copies", ratio,
                 hint="Your samples lie much closer to training images than new real digits do: the model "
                      "reproduces its training set. Sample from noise with the learned velocity, do not return "
                      "(noisy) training images.",
                 note=f"median nearest-training-image distance of samples over held-out digits {ratio:.3f}")

        accs = [rows[w]["accuracy"] for w in GUIDANCE]
        recalls = [rows[w]["recall"] for w in GUIDANCE]
        g.metric("tradeoff_accuracy", max(a - b for a, b in zip(accs, accs[1:], strict=False)),
                 hint="Accuracy should not drop as the guidance grows: stronger guidance pushes samples towards "
                      "what the label explains best. " + table, note=table)
        g.metric("tradeoff_recall", max(b - a for a, b in zip(recalls, recalls[1:], strict=False)),
                 hint="Recall (coverage of the real digits) should not grow with the guidance. " + table, note=table)
        g.metric("guidance_effect", recalls[0] - recalls[-1],
                 hint="Guidance w = 3 should visibly change the samples compared with w = 0: recall should drop "
                      "as samples concentrate on the most typical digits. Does sample() use `guidance`? " + table,
                 note=table)
        g.metric("recall_c", recalls[0],
                 hint="At w = 0 your samples cover too little of the real digits' variety: train longer or with a "
                      "wider network, and check the label-dropout rate. " + table, note=table)

    with g.section("guided_velocity"):
        worst = 0.0
        for w in (0.0, 1.0, float(g.rng.uniform(1.5, 5.0))):
            v_cond, v_uncond = as_sent(g.rng.normal(size=(64, 64)), g.rng.normal(size=(64, 64)))
            theirs = g.call("guided_velocity", v_cond, v_uncond, w)
            worst = max(worst, rel_error(theirs, v_cond + w * (v_cond - v_uncond)))
        g.metric("guided_velocity", worst,
                 hint="Classifier-free guidance: v_cond + w (v_cond - v_uncond); w = 0 is the conditional "
                      "velocity, larger w moves away from the unconditional one.")

    with g.section("mia_overfit_auc", "mia_leak_gap"):
        g.progress("running your membership-inference attack")
        members = staff["mia.members"].numpy()
        non_members = np.setdiff1d(np.arange(len(data.x)), members)
        pick = np.concatenate([g.rng.choice(members, N_MIA, replace=False),
                               g.rng.choice(non_members, N_MIA, replace=False)])
        is_member = np.r_[np.ones(N_MIA, bool), np.zeros(N_MIA, bool)]
        order = g.rng.permutation(len(pick))
        pick, is_member = pick[order], is_member[order]
        x = torch.from_numpy(data.x[pick])
        aucs = {}
        for which in ("early", "overfit"):
            with torch.no_grad():
                recon = staff_reconstruct(x, staff, which)
            scores = g.call("membership_scores", x, recon).numpy()
            aucs[which] = roc_auc(scores, is_member)
        note = f"AUC early-stopped {aucs['early']:.3f}, overfit {aucs['overfit']:.3f}"
        g.metric("mia_overfit_auc", aucs["overfit"],
                 hint="Against the overfit model your attack should separate members from non-members well. A "
                      "higher score must mean 'more likely a member': members are reconstructed better. "
                      "An AUC below 0.5 means your scores are inverted.", note=note)
        g.metric("mia_leak_gap", aucs["overfit"] - aucs["early"],
                 hint="The overfit model should leak clearly more than the early-stopped one under your attack "
                      f"({note}).", note=note)

    with g.section("latent_dim", "latent_recon", "latent_samples_decoded", "latent_accuracy", "latent_recall"):
        z = g.call("latent.encode", x_eval)
        g.metric("latent_dim", z.shape[1], hint="Use a bottleneck of at most 16 latent numbers.")
        recon = g.call("latent.decode", z).numpy()
        err_real = ((np.clip(recon, 0, 1) - x_eval) ** 2).sum(1)
        g.metric("latent_recon", float(err_real.mean()),
                 hint="Train the autoencoder longer or wider; a bottleneck of 8-16 numbers is enough for 8x8 digits.")
        s0 = np.clip(g.call("latent.sample", y_eval, guidance=0.0, seed=seed).numpy(), 0, 1).astype(np.float32)
        cycle = g.call("latent.decode", g.call("latent.encode", s0)).numpy()
        err_samples = ((np.clip(cycle, 0, 1) - s0) ** 2).sum(1)
        g.metric("latent_samples_decoded", float(err_samples.mean() / err_real.mean()),
                 hint="Samples should be decode(z) for latents z drawn by your latent flow.",
                 note=f"re-encoding error samples {err_samples.mean():.3f}, real {err_real.mean():.3f}")
        s1 = np.clip(g.call("latent.sample", y_eval, guidance=E_GUIDANCE, seed=seed).numpy(), 0, 1).astype(np.float32)
        acc = float((cnn.classify(s1) == y_eval).mean())
        g.metric("latent_accuracy", acc, hint="Condition the latent flow on the label and guide it as in E.")
        g.metric("latent_recall", precision_recall(feat_real, cnn.features(s0), K_NN)[1],
                 hint="Standardise the latents before fitting the flow, and check the autoencoder's reconstructions.")
