"""Comparing the student's numbers with the grader's.

The grader computes in float64; the student's code receives float32 (the wire sends float64 tensors
as float32). A fair comparison therefore starts from the float32 values the student actually got,
held in float64 again (`as_sent`), and allows for float32 rounding in the answer (`rel_error`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def as_sent(*values: Any) -> Any:
    """The float32 rounding of each value, held in float64: exactly what the student's code receives.

    Takes numpy arrays, torch tensors or numbers; returns float64 torch tensors (one value in, one out;
    several in, a tuple out)."""
    out = tuple(torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v)
                .to(torch.float32).to(torch.float64) for v in values)
    return out[0] if len(out) == 1 else out


def as_sent_numpy(value: Any) -> np.ndarray:
    """`as_sent` for code that computes its reference with numpy or scipy."""
    return np.asarray(value, dtype=np.float32).astype(np.float64)


def rel_errors(theirs: Any, ours: Any) -> torch.Tensor:
    """|theirs - ours| / (1 + |ours|), elementwise: relative for large values, absolute near zero, so one
    tolerance (1e-4 for float32 answers) fits every scale."""
    theirs = torch.as_tensor(theirs, dtype=torch.float64)
    ours = torch.as_tensor(ours, dtype=torch.float64)
    return (theirs - ours).abs() / (1 + ours.abs())


def rel_error(theirs: Any, ours: Any) -> float:
    """The largest `rel_errors` over all elements (a number for a whole answer)."""
    return float(rel_errors(theirs, ours).max())


class WorstCase:
    """The largest error over a check's cases, with a description of the case where it happened, so the
    feedback can name it ("worst case, reference vs blurred: yours 0.31, grader 0.29")."""

    def __init__(self) -> None:
        self.value = 0.0
        self.where = ""

    def see(self, error: float, where: str) -> None:
        """Keep this case if it is the worst so far; a non-finite error is always the worst."""
        if not math.isfinite(error):
            error = math.inf
        if error > self.value or not self.where:
            self.value, self.where = error, where
