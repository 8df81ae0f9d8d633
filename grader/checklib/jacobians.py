"""Jacobians of a map the grader can only call, by central differences on the rows it scores.

Autograd cannot cross the sandbox: the grader sees only the values a model returns. So it sends, next to
each point x it scores, the neighbours x +- h e_j, and differentiates the answers itself. The neighbours
are rounded to float32 before they are sent (what the student's code receives) and the true step
x+ - x- is used in the quotient, so float32 rounding of the inputs costs nothing.

With step h in float32 the truncation error grows like h^2 and the rounding error like eps_32 / h;
h = 1e-3 balances them at about 1e-3 nats of log|det J| for a smooth map of order-one scale.
"""

from __future__ import annotations

import torch

from grader.checklib.numerics import as_sent

FD_STEP = 1e-3


def neighbours(points: torch.Tensor, step: float = FD_STEP) -> list[torch.Tensor]:
    """The 2d neighbour sets of `points` [P, d]: x + h e_0, ..., x + h e_{d-1}, x - h e_0, ..., each as sent."""
    d = points.shape[1]
    shifts = torch.eye(d, dtype=torch.float64) * step
    return [as_sent(points + shifts[j]) for j in range(d)] + [as_sent(points - shifts[j]) for j in range(d)]


def jacobian(nbrs: list[torch.Tensor], outputs: list[torch.Tensor]) -> torch.Tensor:
    """J [P, out, in] at the points whose `neighbours` were `nbrs`, from the map's `outputs` there (same order)."""
    d = len(nbrs) // 2
    columns = [(outputs[j] - outputs[d + j]) / (nbrs[j][:, j] - nbrs[d + j][:, j]).unsqueeze(-1) for j in range(d)]
    return torch.stack(columns, dim=-1)


def log_abs_det(nbrs: list[torch.Tensor], outputs: list[torch.Tensor]) -> torch.Tensor:
    """log|det J| [P] at the points whose `neighbours` were `nbrs`, from the map's `outputs` there."""
    return torch.linalg.slogdet(jacobian(nbrs, outputs))[1]
