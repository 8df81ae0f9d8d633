"""Honest alternative: Gaussianisation couplings with a mixture-CDF transform (in the spirit of Flow++,
Ho et al., 2019), inverted by bisection.

Each coupling moves one coordinate u through y = Phi^-1(F(u)), where F is the CDF of a K-component Gaussian
mixture whose weights, means and scales a small network computes from the other coordinate, and Phi^-1 is
the standard normal quantile. That is a monotone map of the line onto itself with
    log dy/du = log f(u) - log phi(y),
f the mixture's density and phi the standard normal's. It has no closed-form inverse, so inverse solves
F(u) = Phi(y) by bisection in float64. Written for the handout's interface without looking at the
reference solution.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
FLOOR_WEIGHT, FLOOR_SCALE = 0.01, 1.5  # the fixed broad component of every coupling's mixture


def gaussianise(u: torch.Tensor, logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """y = Phi^-1(F(u)) and log dy/du, elementwise: u [N], mixture parameters [N, K].

    Besides the K learned components, a fixed broad one (FLOOR_WEIGHT of the mass, FLOOR_SCALE wide) keeps F
    strictly increasing between narrow components: without it, F is flat to float64 precision in a gap
    between two of them, and the bisection cannot tell where in the gap a point was."""
    log_w = torch.cat([torch.log_softmax(logits, dim=-1) + math.log1p(-FLOOR_WEIGHT),
                       logits.new_full((*logits.shape[:-1], 1), math.log(FLOOR_WEIGHT))], dim=-1)
    means = torch.cat([means, means.new_zeros((*means.shape[:-1], 1))], dim=-1)
    log_scales = torch.cat([log_scales, log_scales.new_full((*log_scales.shape[:-1], 1), math.log(FLOOR_SCALE))], dim=-1)
    t = (u.unsqueeze(-1) - means) * torch.exp(-log_scales)
    log_cdf = torch.logsumexp(log_w + torch.special.log_ndtr(t), dim=-1)
    log_sf = torch.logsumexp(log_w + torch.special.log_ndtr(-t), dim=-1)
    # the quantile from whichever tail is smaller, so that neither end loses its precision; ndtri only ever
    # sees the smaller tail (<= 1/2), because ndtri(1) = inf in the branch torch.where discards would still
    # send inf * 0 = NaN into the gradient and ruin training after one far-out batch
    lower_tail = log_cdf < log_sf
    quantile = lower_quantile(torch.minimum(log_cdf, log_sf))     # <= 0
    y = torch.where(lower_tail, quantile, -quantile)
    log_pdf = torch.logsumexp(log_w - 0.5 * t * t - log_scales - HALF_LOG_2PI, dim=-1)
    return y, log_pdf - (-0.5 * y * y - HALF_LOG_2PI)


def lower_quantile(log_p: torch.Tensor) -> torch.Tensor:
    """Phi^-1(exp(log_p)) for log_p <= log 1/2, exact however far out in the tail.

    ndtri needs exp(log_p), which underflows below about -700 (float64) or -80 (float32); a clamp there
    would make the map flat, so that many u share one y and the inverse cannot find the right one. Below the
    floor: the asymptotic quantile, then Newton steps on log_ndtr (without gradient), and a last Newton step
    with gradient, which gives the implicit-function derivative dy/dlog_p = Phi(y) / phi(y)."""
    floor = -700.0 if log_p.dtype == torch.float64 else -80.0
    far = log_p < floor
    direct = torch.special.ndtri(log_p.clamp(min=floor).exp())
    far_log_p = torch.where(far, log_p, torch.full_like(log_p, 2 * floor))  # a safe value where not used
    with torch.no_grad():
        a = -2.0 * far_log_p
        y = -torch.sqrt(a - torch.log(a) - math.log(2 * math.pi))
        for _ in range(4):
            y = y - (torch.special.log_ndtr(y) - far_log_p) / _dlog_ndtr(y)
    y = y - (torch.special.log_ndtr(y) - far_log_p) / _dlog_ndtr(y)
    return torch.where(far, y, direct)


def _dlog_ndtr(y: torch.Tensor) -> torch.Tensor:
    """d/dy log Phi(y) = phi(y) / Phi(y), in logs so that it holds far in the lower tail."""
    return torch.exp(-0.5 * y * y - HALF_LOG_2PI - torch.special.log_ndtr(y))


class MixtureCoupling(nn.Module):
    def __init__(self, moved: int, components: int, hidden: int):
        super().__init__()
        self.moved, self.k = moved, components
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 3 * components))
        with torch.no_grad():  # start near the identity: one broad mixture spread over the standardised line
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()
            self.net[-1].bias[components : 2 * components] = torch.linspace(-2.0, 2.0, components)
            self.net[-1].bias[2 * components :] = math.log(1.0)

    def mixture(self, other: torch.Tensor):
        out = self.net(other.unsqueeze(-1))
        logits, means, log_scales = out.split(self.k, dim=-1)
        return logits, means, log_scales.clamp(-4.0, 2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, log_d = gaussianise(x[:, self.moved], *self.mixture(x[:, 1 - self.moved]))
        out = x.clone()
        out[:, self.moved] = y
        return out, log_d

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        params = self.mixture(y[:, 1 - self.moved])
        target = y[:, self.moved]
        low = torch.full_like(target, -60.0)
        high = torch.full_like(target, 60.0)
        for _ in range(50):  # bisection: the map is increasing; 120 / 2^50 is far below float32 rounding
            middle = 0.5 * (low + high)
            above = gaussianise(middle, *params)[0] > target
            high = torch.where(above, middle, high)
            low = torch.where(above, low, middle)
        out = y.clone()
        out[:, self.moved] = 0.5 * (low + high)
        return out


class MixtureFlow(nn.Module):
    def __init__(self, layers: int = 4, components: int = 8, hidden: int = 32):
        super().__init__()
        self.config = {"layers": layers, "components": components, "hidden": hidden}
        self.register_buffer("centre", torch.zeros(2, dtype=torch.float64))
        self.register_buffer("spread", torch.ones(2, dtype=torch.float64))
        self.couplings = nn.ModuleList(MixtureCoupling(i % 2, components, hidden) for i in range(layers))

    def _dtype(self) -> torch.dtype:
        return self.couplings[0].net[0].weight.dtype

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = ((x.double() - self.centre) / self.spread).to(self._dtype())
        total = -self.spread.log().sum().to(h.dtype).expand(x.shape[0])
        for coupling in self.couplings:
            h, log_d = coupling(h)
            total = total + log_d
        return h.to(x.dtype), total.to(x.dtype)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        h = z.to(self._dtype())
        for coupling in reversed(self.couplings):
            h = coupling.inverse(h)
        return (h.double() * self.spread + self.centre).to(z.dtype)

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        return self.inverse(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def build_model(config: dict) -> MixtureFlow:
    """Trained in float32 and kept in float64 (so that bisection inverts to float32 precision)."""
    return MixtureFlow(**config).double()


build_model_c = build_model


def _fit(x: torch.Tensor, flow: MixtureFlow, seed: int, max_seconds: float, lr: float) -> MixtureFlow:
    torch.set_num_threads(1)
    t0 = time.monotonic()
    budget = 0.5 * max_seconds
    flow.centre.copy_(x.double().mean(0))
    flow.spread.copy_(x.double().std(0))
    optimiser = torch.optim.Adam(flow.parameters(), lr=lr)
    draw = torch.Generator().manual_seed(seed)
    x = x.float()
    steps = 0
    while (elapsed := time.monotonic() - t0) < budget:
        for group in optimiser.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget)) + 1e-5
        z, log_d = flow(x[torch.randint(len(x), (512,), generator=draw)])
        loss = (0.5 * z.pow(2).sum(1) + 2 * HALF_LOG_2PI - log_d).mean()
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(flow.parameters(), 3.0)
        optimiser.step()
        steps += 1
    print(f"mixture-CDF flow: {steps} steps, last batch NLL {loss.item():.3f}")
    return flow.double().eval()


def fit(x: torch.Tensor, *, seed: int, max_seconds: float) -> MixtureFlow:
    torch.manual_seed(seed)
    return _fit(x, MixtureFlow(layers=4, components=8, hidden=32), seed, max_seconds, lr=5e-3)


def fit_c(x: torch.Tensor, *, seed: int, max_seconds: float) -> MixtureFlow:
    torch.manual_seed(seed)
    return _fit(x, MixtureFlow(layers=6, components=10, hidden=48), seed, max_seconds, lr=4e-3)
