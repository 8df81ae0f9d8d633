"""Train the staff feature extractor of the evaluation part (run once; the result is committed).

    python assignments/lab1/evaluation/hidden/train_features.py

A small CNN classifier for scikit-learn's 8x8 digits (pixels / 16, so in [0, 1]). Its penultimate
layer (64 units, taken before the ReLU) is the "Inception network" of this part: the grader computes
Fréchet distance, MMD, precision/recall etc. in that feature space. The 64 units span only about 45
dimensions (their covariance has exact zero eigenvalues, which makes the matrix square root of the
Fréchet distance ill-conditioned), so the features are the projection on the top FEATURE_DIM = 16
principal components of the penultimate layer over the training split (99 % of its variance; the
smallest kept eigenvalue is about 1.5, the largest about 260), stored with the weights. The architecture lives in grader/checklib/features.py (`StaffCNN`) so
that training and grading cannot drift apart.

Deterministic: fixed seeds, one thread, deterministic algorithms; a stratified 80/20 split with
random_state=0. Measured on the 20 % test split (360 images), PyTorch 2.13 CPU:
    test accuracy 0.9861 (355 / 360), train accuracy 1.0000, 38 282 network parameters (+ the PCA),
    4-10 s on one shared core.
The weights are bit-identical between runs (the file bytes may differ: safetensors writes the
metadata in hash order).
Output: digits_features.safetensors beside this file (float32, about 150 KB), with the accuracy
and the training recipe in its metadata.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from grader.checklib.features import StaffCNN

HERE = Path(__file__).resolve().parent
OUT = HERE / "digits_features.safetensors"
FEATURE_DIM = 16
EPOCHS = 60
BATCH = 64
LR = 3e-3


def init_params(gen: torch.Generator) -> dict[str, torch.Tensor]:
    def uniform(shape, fan_in):
        bound = 1.0 / fan_in**0.5
        return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).requires_grad_()

    return {
        "conv1.weight": uniform((16, 1, 3, 3), 9), "conv1.bias": uniform((16,), 9),
        "conv2.weight": uniform((32, 16, 3, 3), 144), "conv2.bias": uniform((32,), 144),
        "fc1.weight": uniform((64, 512), 512), "fc1.bias": uniform((64,), 512),
        "fc2.weight": uniform((10, 64), 64), "fc2.bias": uniform((10,), 64),
    }


def shift_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to one pixel (zero padding): features that do not hinge on one pixel grid."""
    padded = torch.nn.functional.pad(x.view(-1, 8, 8), (1, 1, 1, 1))
    dx, dy = (int(v) for v in torch.randint(0, 3, (2,), generator=gen))
    return padded[:, dy:dy + 8, dx:dx + 8].reshape(-1, 64)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_tr, x_te = torch.from_numpy(x_tr), torch.from_numpy(x_te)
    y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)

    gen = torch.Generator().manual_seed(0)
    params = init_params(gen)
    opt = torch.optim.Adam(params.values(), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    started = time.monotonic()
    for _ in range(EPOCHS):
        order = torch.randperm(x_tr.shape[0], generator=gen)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            xb = x_tr[idx] if i % (2 * BATCH) == 0 else shift_batch(x_tr[idx], gen)
            loss = torch.nn.functional.cross_entropy(StaffCNN(params).logits(xb), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        acc_tr = float((StaffCNN(params).logits(x_tr).argmax(1) == y_tr).float().mean())
        acc_te = float((StaffCNN(params).logits(x_te).argmax(1) == y_te).float().mean())
        # PCA of the penultimate layer on the training split; signs fixed so the file is reproducible.
        h = StaffCNN(params).penultimate(x_tr).double()
        mean = h.mean(0)
        vals, vecs = torch.linalg.eigh(torch.cov(h.T))
        comps = vecs[:, vals.argsort(descending=True)[:FEATURE_DIM]]
        comps = comps * torch.sign(comps[comps.abs().argmax(0), torch.arange(FEATURE_DIM)])
        kept = vals.sort(descending=True).values[:FEATURE_DIM]
    seconds = time.monotonic() - started
    tensors = {k: v.detach().contiguous() for k, v in params.items()}
    tensors["pca.mean"] = mean.float().contiguous()
    tensors["pca.components"] = comps.float().contiguous()
    save_file(tensors, str(OUT), metadata={
        "what": "staff feature extractor for LAB1 evaluation: CNN on sklearn 8x8 digits / 16",
        "features": f"fc1 output before ReLU (64-d), projected on its top {FEATURE_DIM} principal components",
        "pca_eigenvalues": " ".join(f"{v:.3g}" for v in kept.tolist()),
        "test_accuracy": f"{acc_te:.4f}", "train_accuracy": f"{acc_tr:.4f}",
        "recipe": f"Adam lr {LR} wd 1e-4 cosine, {EPOCHS} epochs, batch {BATCH}, +-1 px shifts on half the batches, "
                  "stratified 80/20 split random_state=0, torch seed 0",
    })
    n_params = sum(v.numel() for v in tensors.values())
    print(f"kept eigenvalues {kept[0]:.3g} ... {kept[-1]:.3g} ({float(kept.sum() / vals.sum()):.2%} of the variance)")
    print(f"test accuracy {acc_te:.4f}, train accuracy {acc_tr:.4f}, {n_params} parameters, "
          f"{OUT.stat().st_size / 1024:.0f} KB, {seconds:.1f} s")


if __name__ == "__main__":
    main()
