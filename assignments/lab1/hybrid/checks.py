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

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HIDDEN = Path(__file__).resolve().parent / "hidden"
N_TRAIN = 1100            # the student's training split; the rest (697) is held out
N_EVAL = 400              # samples per guidance value (labels as in the held-out set)
GUIDANCE = (0.0, 1.0, 3.0)
E_GUIDANCE = 1.0          # the E accuracy is measured at this guidance
K_NN = 3
N_MIA = 150               # members and non-members per attack evaluation


# ---------------------------------------------------------------- staff networks (shared with hidden/train_staff.py)

def staff_penultimate(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    h = x.reshape(-1, 1, 8, 8)
    h = F.relu(F.conv2d(h, p["cnn.conv1.weight"], p["cnn.conv1.bias"], padding=1))
    h = F.relu(F.conv2d(h, p["cnn.conv2.weight"], p["cnn.conv2.bias"], padding=1, stride=2))
    return F.linear(h.flatten(1), p["cnn.fc1.weight"], p["cnn.fc1.bias"])


def staff_logits(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.linear(F.relu(staff_penultimate(x, p)), p["cnn.fc2.weight"], p["cnn.fc2.bias"])


def staff_features(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return (staff_penultimate(x, p) - p["pca.mean"]) @ p["pca.components"]


def staff_reconstruct(x: torch.Tensor, p: dict[str, torch.Tensor], which: str) -> torch.Tensor:
    """The membership-inference targets: autoencoders 64-128-16-128-64 (ReLU), `which` = "early" or
    "overfit"; both were trained on the same member set."""
    h = x
    for i in range(1, 5):
        h = F.linear(h, p[f"{which}.fc{i}.weight"], p[f"{which}.fc{i}.bias"])
        h = F.relu(h) if i < 4 else h
    return h


def load_staff() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(HIDDEN / "staff_models.safetensors"))


# ---------------------------------------------------------------- data and the grader's own metrics

class Digits:
    """sklearn's digits (pixels / 16, in [0, 1]) split with the secret run seed."""

    def __init__(self, rng: np.random.Generator):
        from sklearn.datasets import load_digits

        digits = load_digits()
        self.x = (digits.data / 16.0).astype(np.float32)
        self.y = digits.target.astype(np.int64)
        perm = rng.permutation(len(self.x))
        self.train_idx, self.held_idx = perm[:N_TRAIN], perm[N_TRAIN:]


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b)


def kth_radius(points: np.ndarray, k: int) -> np.ndarray:
    return np.partition(pairwise(points, points), k, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K_NN) -> tuple[float, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019) with k-NN balls."""
    d = pairwise(real, fake)
    precision = np.mean((d <= kth_radius(real, k)[:, None]).any(axis=0))
    recall = np.mean((d <= kth_radius(fake, k)[None, :]).any(axis=1))
    return float(precision), float(recall)


def roc_auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member), ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_in, n_out = int(is_member.sum()), int((~is_member).sum())
    return float((ranks[is_member].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def sample_grid(samples: dict[float, np.ndarray], labels: np.ndarray, per_class: int = 4) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(samples) * per_class
    fig, axes = plt.subplots(10, cols, figsize=(cols * 0.45 + 0.4, 10 * 0.45 + 0.9))
    for j, (w, images) in enumerate(samples.items()):
        for c in range(10):
            picks = np.flatnonzero(labels == c)[:per_class]
            for i in range(per_class):
                ax = axes[c, j * per_class + i]
                ax.axis("off")
                if i < len(picks):
                    ax.imshow(images[picks[i]].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[0, j * per_class].set_title(f"w = {w:g}", fontsize=8, loc="left")
    fig.suptitle("Your samples: one row per label 0-9, guidance w = " + ", ".join(f"{w:g}" for w in samples),
                 fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.01, top=0.88, wspace=0.05, hspace=0.05)
    return png(fig)


def tradeoff_figure(rows: dict[float, dict[str, float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = list(rows)
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for key, style in (("accuracy", "o-"), ("precision", "s-"), ("recall", "^-")):
        ax.plot(ws, [rows[w][key] for w in ws], style, label=key)
    ax.set_xlabel("guidance w")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ws)
    ax.legend(fontsize=8)
    ax.set_title("Guidance trade-off (staff classifier and features, k = 3)", fontsize=8)
    fig.tight_layout()
    return png(fig)


# ---------------------------------------------------------------- grading

def grade(g) -> None:
    data = Digits(g.rng)
    staff = load_staff()
    x_train, y_train = data.x[data.train_idx], data.y[data.train_idx]
    eval_idx = g.rng.choice(data.held_idx, N_EVAL, replace=False)
    x_eval, y_eval = data.x[eval_idx], data.y[eval_idx]
    x_held = data.x[data.held_idx]
    with torch.no_grad():
        feat_real = staff_features(torch.from_numpy(x_eval), staff).double().numpy()

    with g.checks("fit_budget", "accuracy", "seed_changes", "not_copies", "tradeoff_accuracy",
                  "tradeoff_recall", "guidance_effect", "recall_c"):
        g.progress("training your model")
        g.train("fit", x_train, y_train, check="fit_budget")

        g.progress("sampling from your model")
        seed = g.torch_seed()
        samples, rows = {}, {}
        for w in GUIDANCE:
            s = g.call("model.sample", y_eval, guidance=w, seed=seed).numpy()
            samples[w] = np.clip(s, 0.0, 1.0).astype(np.float32)
            with torch.no_grad():
                t = torch.from_numpy(samples[w])
                acc = float((staff_logits(t, staff).argmax(1).numpy() == y_eval).mean())
                feats = staff_features(t, staff).double().numpy()
            precision, recall = precision_recall(feat_real, feats)
            rows[w] = {"accuracy": acc, "precision": precision, "recall": recall}
        table = "; ".join(f"w={w:g}: accuracy {r['accuracy']:.3f}, precision {r['precision']:.3f}, "
                          f"recall {r['recall']:.3f}" for w, r in rows.items())
        g.attach_image("samples", sample_grid(samples, y_eval),
                       "Your samples for the labels 0-9 (rows) at guidance w = 0, 1 and 3 (column groups).")
        g.attach_image("tradeoff", tradeoff_figure(rows),
                       "Accuracy under the staff classifier and k-NN precision/recall in its feature space, per w.")

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

        d_samples = pairwise(samples[0.0].astype(np.float64), x_train).min(axis=1)
        d_real = pairwise(x_held.astype(np.float64), x_train).min(axis=1)
        ratio = float(np.median(d_samples) / np.median(d_real))
        g.metric("not_copies", ratio,
                 hint="Your samples lie much closer to training images than new real digits do: the model "
                      "reproduces its training set. Sample from noise with the learned velocity, do not return "
                      "(noisy) training images.",
                 note=f"median NN distance samples {np.median(d_samples):.3f}, held-out {np.median(d_real):.3f}")

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

    with g.checks("guided_velocity"):
        worst = 0.0
        for w in (0.0, 1.0, float(g.rng.uniform(1.5, 5.0))):
            v_cond = torch.from_numpy(g.rng.normal(size=(64, 64))).float().double()
            v_uncond = torch.from_numpy(g.rng.normal(size=(64, 64))).float().double()
            theirs = g.call("guided_velocity", v_cond, v_uncond, w)
            ours = v_cond + w * (v_cond - v_uncond)
            worst = max(worst, float(((theirs - ours).abs() / (1 + ours.abs())).max()))
        g.metric("guided_velocity", worst,
                 hint="Classifier-free guidance: v_cond + w (v_cond - v_uncond); w = 0 is the conditional "
                      "velocity, larger w moves away from the unconditional one.")

    with g.checks("mia_overfit_auc", "mia_leak_gap"):
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

    with g.checks("latent_budget", "latent_dim", "latent_recon", "latent_samples_decoded", "latent_accuracy",
                  "latent_recall"):
        g.progress("A: training your latent hybrid")
        budget_a = 0.75 * g.train_seconds
        g.train("fit_latent", x_train, y_train, check="latent_budget", budget=budget_a, audience="staff")
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
        with torch.no_grad():
            acc = float((staff_logits(torch.from_numpy(s1), staff).argmax(1).numpy() == y_eval).mean())
            feats = staff_features(torch.from_numpy(s0), staff).double().numpy()
        g.metric("latent_accuracy", acc, hint="Condition the latent flow on the label and guide it as in E.")
        g.metric("latent_recall", precision_recall(feat_real, feats)[1],
                 hint="Standardise the latents before fitting the flow, and check the autoencoder's reconstructions.")
