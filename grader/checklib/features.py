"""The staff feature extractor for digits and the k-NN metrics computed in its feature space.

A small CNN trained once by staff (`assignments/lab1/<part>/hidden/*.py`) classifies 8x8 digits; its
penultimate layer (fc1 before the ReLU) projected on its top 16 principal components is the feature
space in which sample sets are compared (every covariance there is well conditioned). The weights live
in a part's hidden/ folder, never in a sandbox.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class StaffCNN:
    """conv(1->?, 3x3) - ReLU - conv(stride 2) - ReLU - fc1 - ReLU - fc2, from a safetensors file whose
    network keys start with `prefix` ("" or e.g. "cnn."), plus the PCA of fc1 ("pca.mean",
    "pca.components")."""

    def __init__(self, params: dict[str, torch.Tensor], prefix: str = ""):
        self.params = params
        self.prefix = prefix

    @classmethod
    def load(cls, path: Path, prefix: str = "") -> StaffCNN:
        from safetensors.torch import load_file

        return cls(load_file(str(path)), prefix)

    def _p(self, name: str) -> torch.Tensor:
        return self.params[self.prefix + name]

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, 1, 8, 8)
        h = F.relu(F.conv2d(h, self._p("conv1.weight"), self._p("conv1.bias"), padding=1))
        h = F.relu(F.conv2d(h, self._p("conv2.weight"), self._p("conv2.bias"), padding=1, stride=2))
        return F.linear(h.flatten(1), self._p("fc1.weight"), self._p("fc1.bias"))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(self.penultimate(x)), self._p("fc2.weight"), self._p("fc2.bias"))

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Predicted labels of images [B, 64] with pixels in [0, 1]."""
        with torch.no_grad():
            return self.logits(torch.as_tensor(images, dtype=torch.float32)).argmax(1).numpy()

    def features(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """16-d features of images [B, 64] with pixels in [0, 1], computed in float32 (as the network was
        trained), returned as float64 numpy."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
            return ((self.penultimate(x) - self.params["pca.mean"]) @ self.params["pca.components"]).double().numpy()


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] in float64."""
    from scipy.spatial.distance import cdist

    return cdist(a, b)


def kth_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest *other* point of the same set."""
    return np.partition(pairwise(points, points), k, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of fake points inside some real
    point's k-NN ball, and of real points inside some fake point's k-NN ball."""
    d = pairwise(real, fake)
    precision = np.mean((d <= kth_radius(real, k)[:, None]).any(axis=0))
    recall = np.mean((d <= kth_radius(fake, k)[None, :]).any(axis=1))
    return float(precision), float(recall)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), both from the real points' k-NN balls only."""
    inside = pairwise(real, fake) <= kth_radius(real, k)[:, None]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())
