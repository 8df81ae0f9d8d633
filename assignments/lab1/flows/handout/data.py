"""The data of this part, for your own experiments. The grader draws fresh data from the same families
with a seed you don't know, so there is nothing to gain by memorising a sample.

Both data sets are a curve blurred by Gaussian noise, then bent by a smooth map of the plane that the grader
draws anew for every run (`Warp`): a rotation by any angle, then two sinusoidal shears. Every step of that
map preserves area, so the true density of the bent data is the curve's density at the unbent point, and
its entropy (the best possible NLL) is the same for every warp. Your flow has to learn the bend from the
data: `Warp.random(seed)` draws one from the grader's family, so test your model on several.

E: two moons. scikit-learn's make_moons(noise=0.1) (`sklearn.datasets.make_moons` gives the unbent picture),
except that the position along each arc is drawn uniformly at random instead of evenly spaced, so that every
point is an independent draw from one density.

C: two spirals. Two arms winding once around the origin, each the other turned by 180 degrees, blurred by
Gaussian noise.

`moons_log_prob` and `spirals_log_prob` are the exact log-densities: use them to see how many nats your flow
is from the truth (the grader reports exactly that number for the spirals)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

MOONS_NOISE, MOONS_CENTRE = 0.1, (0.5, 0.25)
# Two spirals: arm a in {0, 1}, position s ~ U(0, 1) along it, radius 0.3 + 2.7 s, angle 2 pi s + pi a.
SPIRALS_NOISE, SPIRALS_CENTRE = 0.12, (0.0, 0.0)


@dataclass(frozen=True)
class Warp:
    """Rotate by `angle` about `centre`, then x0 += a1 sin(b1 x1 + p1), then x1 += a2 sin(b2 x0 + p2).
    Each step has Jacobian determinant 1 and is undone in closed form."""

    centre: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    shears: tuple[tuple[float, float, float], ...] = ((0.0, 1.0, 0.0), (0.0, 1.0, 0.0))

    @classmethod
    def random(cls, seed: int, spirals: bool = False) -> Warp:
        """One warp from the grader's family: any angle, shear amplitudes 0.15-0.3, frequencies 1-2 for the
        moons (0.4-0.9 for the larger spirals), any phases."""
        rng = np.random.default_rng(seed)
        low, high = (0.4, 0.9) if spirals else (1.0, 2.0)
        shears = tuple((float(rng.uniform(0.15, 0.3)), float(rng.uniform(low, high)), float(rng.uniform(0, 2 * math.pi)))
                       for _ in range(2))
        return cls(SPIRALS_CENTRE if spirals else MOONS_CENTRE, float(rng.uniform(0, 2 * math.pi)), shears)

    def _rotation(self) -> torch.Tensor:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        centre = torch.tensor(self.centre, dtype=torch.float64)
        x = (x.double() - centre) @ self._rotation().T + centre
        (a1, b1, p1), (a2, b2, p2) = self.shears
        x0 = x[:, 0] + a1 * torch.sin(b1 * x[:, 1] + p1)
        return torch.stack([x0, x[:, 1] + a2 * torch.sin(b2 * x0 + p2)], dim=1)

    def undo(self, x: torch.Tensor) -> torch.Tensor:
        (a1, b1, p1), (a2, b2, p2) = self.shears
        x = x.double()
        x1 = x[:, 1] - a2 * torch.sin(b2 * x[:, 0] + p2)
        x = torch.stack([x[:, 0] - a1 * torch.sin(b1 * x1 + p1), x1], dim=1)
        centre = torch.tensor(self.centre, dtype=torch.float64)
        return (x - centre) @ self._rotation() + centre


def moons_centres(t: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Points on the moons: t in [0, 1] along moon `arm` (0 outer, 1 inner)."""
    angle = math.pi * t
    outer = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    inner = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    return np.where((arm == 0)[:, None], outer, inner)


def spiral_centres(s: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Points on the arms: s in [0, 1] along arm `arm` (0 or 1)."""
    r = 0.3 + 2.7 * s
    phi = 2 * math.pi * s + math.pi * arm
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def _sample(curve, noise: float, n: int, seed: int, warp: Warp | None) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(curve(rng.uniform(0.0, 1.0, n), rng.integers(0, 2, n)) + noise * rng.normal(size=(n, 2)))
    return (warp.apply(x) if warp else x).float()


def _log_prob(curve, noise: float, x: torch.Tensor, warp: Warp | None, k: int) -> torch.Tensor:
    """The curve's uniform measure blurred by N(0, noise^2 I), by the midpoint rule along each arm (k points,
    far closer together than the noise, so the rule is exact to many digits), at the unbent point."""
    t = (np.arange(k) + 0.5) / k
    centres = torch.from_numpy(np.concatenate([curve(t, np.full(k, a)) for a in range(2)]))
    x = warp.undo(x) if warp else x.double()
    out = []
    for rows in x.split(4096):
        d2 = torch.cdist(rows, centres) ** 2
        out.append(torch.logsumexp(-d2 / (2 * noise**2), dim=1) - math.log(2 * math.pi * noise**2) - math.log(2 * k))
    return torch.cat(out)


def make_moons(n: int, seed: int = 0, warp: Warp | None = None, noise: float = MOONS_NOISE) -> torch.Tensor:
    """Two interleaving half circles plus N(0, 0.1^2 I), bent by `warp`: float32 tensor [n, 2]."""
    return _sample(moons_centres, noise, n, seed, warp)


def moons_log_prob(x: torch.Tensor, warp: Warp | None = None) -> torch.Tensor:
    """The exact log-density of the (bent) two moons at x [B, 2], in nats (about -1.01 on average)."""
    return _log_prob(moons_centres, MOONS_NOISE, x, warp, 400)


def make_spirals(n: int, seed: int = 0, warp: Warp | None = None, noise: float = SPIRALS_NOISE) -> torch.Tensor:
    """Two spirals plus N(0, 0.12^2 I), bent by `warp`: float32 tensor [n, 2]."""
    return _sample(spiral_centres, noise, n, seed, warp)


def spirals_log_prob(x: torch.Tensor, warp: Warp | None = None) -> torch.Tensor:
    """The exact log-density of the (bent) two spirals at x [B, 2], in nats (about -2.30 on average)."""
    return _log_prob(spiral_centres, SPIRALS_NOISE, x, warp, 1000)
