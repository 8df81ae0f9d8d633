"""Train this part's staff decoder, the secret source of its digit images (run once; the result is committed).

    python assignments/lab1/autoregressive/hidden/train_digit_source.py

Writes digit_source.safetensors beside this file: the decoder of a VAE with a 4-dimensional latent space
trained on scikit-learn's 1797 binarised digits, and the latent codes of those digits. Every run draws its
own source from it (grader/checklib/digit_mixtures.py). Each part trains its own (seed 2), so that the
sources of two parts are not the same. Deterministic on one thread; about a minute on a shared core.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from grader.checklib.digit_mixtures import train_staff_decoder
from grader.checklib.digits import binary_digits

OUT = Path(__file__).resolve().parent / "digit_source.safetensors"

if __name__ == "__main__":
    save_file(train_staff_decoder(binary_digits(), seed=2), str(OUT), metadata={"seed": "2", "steps": "6000"})
    print(f"wrote {OUT}")
