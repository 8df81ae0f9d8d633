"""Train the staff models of the hybrid part (run once; the result is committed).

    python assignments/lab1/hybrid/hidden/train_staff.py

Writes staff_models.safetensors beside this file (float32 + int64, safetensors only), holding
1. `cnn.*` + `pca.*`: a small CNN classifier for scikit-learn's 8x8 digits (pixels / 16, in [0, 1]),
   the judge of conditional accuracy; its penultimate layer (64 units before the ReLU) projected on its
   top 16 principal components is the feature space of the precision/recall check.
   Trained on a stratified 80/20 split (random_state=0), +-1 px shifts on half of the batches, and three
   batches in four drawn in a fresh random style (grader/checklib/digit_styles.py, from a numpy generator
   of its own): every run's data are drawn in a secret style, and the judge must read them all. The
   principal components are those of styled training digits.
2. `early.*` and `overfit.*`: two autoencoders 64-128-16-128-64 trained on the SAME fixed member set
   of N_MEMBERS digits (`mia.members`, indices into load_digits()) with full-batch Adam (lr 1e-3) on the
   summed squared reconstruction error: `early` stopped after EARLY_EPOCHS (members and non-members
   are still reconstructed about equally well), `overfit` trained for OVERFIT_EPOCHS (it memorises its
   members). They are the targets of the membership-inference check; every index not in `mia.members`
   is a non-member. (Small classifiers on digits were tried first: digits are so easy that even an
   overfit MLP's loss separated members from non-members only weakly, AUC 0.58-0.80.)
Deterministic: fixed seeds, one thread, deterministic algorithms (re-running gives bit-identical tensors).
Measured (PyTorch 2.13 CPU, about 20 s on a shared core), also stored in the metadata:
    CNN test accuracy 0.9739 on the 20 % split drawn in 5 random styles, 0.9944 as published;
    early:   200 epochs, squared error members 1.08 / non-members 1.38, error-attack AUC 0.664;
    overfit: 3000 epochs, squared error members 0.17 / non-members 1.58, error-attack AUC 1.000.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from grader.checklib.digit_styles import DigitStyle
from grader.checklib.features import StaffCNN

HERE = Path(__file__).resolve().parent
OUT = HERE / "staff_models.safetensors"
FEATURE_DIM = 16
STYLE_NOISE = (0.01, 0.02)  # as the checks draw
STYLED_SHARE = 0.75
N_MEMBERS = 200
EARLY_EPOCHS = 200
OVERFIT_EPOCHS = 3000


def load_checks():
    """The part's checks.py (the one home of staff_reconstruct), registered as a module before it runs:
    its dataclasses look their module up in sys.modules."""
    spec = importlib.util.spec_from_file_location("hybrid_checks", HERE.parent / "checks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def uniform(shape, fan_in, gen):
    bound = 1.0 / fan_in**0.5
    return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).requires_grad_()


def shift_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    padded = F.pad(x.view(-1, 8, 8), (1, 1, 1, 1))
    dx, dy = (int(v) for v in torch.randint(0, 3, (2,), generator=gen))
    return padded[:, dy:dy + 8, dx:dx + 8].reshape(-1, 64)


def auc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))],
                               np.r_[scores_in, scores_out]))


def train_cnn(checks, x, y, gen) -> tuple[dict, dict]:
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_tr, x_te, y_tr, y_te = map(torch.from_numpy, (x_tr, x_te, y_tr, y_te))
    p = {"cnn.conv1.weight": uniform((16, 1, 3, 3), 9, gen), "cnn.conv1.bias": uniform((16,), 9, gen),
         "cnn.conv2.weight": uniform((32, 16, 3, 3), 144, gen), "cnn.conv2.bias": uniform((32,), 144, gen),
         "cnn.fc1.weight": uniform((64, 512), 512, gen), "cnn.fc1.bias": uniform((64,), 512, gen),
         "cnn.fc2.weight": uniform((10, 64), 64, gen), "cnn.fc2.bias": uniform((10,), 64, gen)}
    epochs, batch = 120, 64
    styles = np.random.default_rng(2601)  # its own generator: `gen` is drawn from exactly as before
    opt = torch.optim.Adam(p.values(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        order = torch.randperm(x_tr.shape[0], generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb = x_tr[idx] if i % (2 * batch) == 0 else shift_batch(x_tr[idx], gen)
            if styles.random() < STYLED_SHARE:
                xb = restyled(xb, styles)
            loss = F.cross_entropy(StaffCNN(p, "cnn.").logits(xb), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        judge = StaffCNN(p, "cnn.")
        acc_raw = float((judge.logits(x_te).argmax(1) == y_te).float().mean())
        styled_te = torch.cat([restyled(x_te, np.random.default_rng(seed)) for seed in range(5)])
        acc_te = float((judge.logits(styled_te).argmax(1) == y_te.repeat(5)).float().mean())
        styled_tr = torch.cat([restyled(x_tr, np.random.default_rng(100 + seed)) for seed in range(3)])
        h = judge.penultimate(styled_tr).double()
        mean = h.mean(0)
        vals, vecs = torch.linalg.eigh(torch.cov(h.T))
        comps = vecs[:, vals.argsort(descending=True)[:FEATURE_DIM]]
        comps = comps * torch.sign(comps[comps.abs().argmax(0), torch.arange(FEATURE_DIM)])
    out = {k: v.detach() for k, v in p.items()}
    out["pca.mean"], out["pca.components"] = mean.float(), comps.float()
    return out, {"cnn_test_accuracy_styled": f"{acc_te:.4f}", "cnn_test_accuracy_raw": f"{acc_raw:.4f}"}


def restyled(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The images drawn in one random style, as a run's data are."""
    style = DigitStyle.draw(rng, noise=STYLE_NOISE)
    return torch.from_numpy(style.render(images.numpy(), rng).astype(np.float32))


def train_autoencoder(checks, which, x_in, gen, *, epochs):
    sizes = [(128, 64), (16, 128), (128, 16), (64, 128)]
    p = {}
    for i, (n_out, n_in) in enumerate(sizes, start=1):
        p[f"{which}.fc{i}.weight"] = uniform((n_out, n_in), n_in, gen)
        p[f"{which}.fc{i}.bias"] = uniform((n_out,), n_in, gen)
    opt = torch.optim.Adam(p.values(), lr=1e-3)
    for _ in range(epochs):  # full batch: every step sees every member
        loss = (checks.staff_reconstruct(x_in, p, which) - x_in).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in p.items()}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    checks = load_checks()
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    started = time.monotonic()
    gen = torch.Generator().manual_seed(0)
    tensors, meta = train_cnn(checks, x, y, gen)

    perm = np.random.default_rng(0).permutation(len(x))
    members = np.sort(perm[:N_MEMBERS])
    nonmem = np.setdiff1d(np.arange(len(x)), members)
    xt = torch.from_numpy(x)
    for which, epochs in (("early", EARLY_EPOCHS), ("overfit", OVERFIT_EPOCHS)):
        p = train_autoencoder(checks, which, xt[members], gen, epochs=epochs)
        tensors.update(p)
        with torch.no_grad():
            err = (checks.staff_reconstruct(xt, p, which) - xt).pow(2).sum(1).numpy()
        a = auc(-err[members], -err[nonmem])
        meta[f"{which}_epochs"] = str(epochs)
        meta[f"{which}_error_auc"] = f"{a:.4f}"
        meta[f"{which}_mean_error_members_nonmembers"] = f"{err[members].mean():.4f} {err[nonmem].mean():.4f}"
        print(f"{which}: {epochs} epochs, mean squared reconstruction error members {err[members].mean():.4f} "
              f"non-members {err[nonmem].mean():.4f}, error-threshold attack AUC {a:.4f}")
    tensors["mia.members"] = torch.from_numpy(members.astype(np.int64))
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta["what"] = "staff models of LAB1 hybrid: CNN judge + PCA features; early-stopped and overfit autoencoders for membership inference"
    save_file(tensors, str(OUT), metadata=meta)
    print(meta)
    print(f"{OUT.stat().st_size / 1024:.0f} KB, {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
