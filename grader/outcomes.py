"""What a grading run produces, as plain data: the outcome of each check and the pictures drawn for it.

One list of a check result's fields (`CheckOutcome`): the database row (`courseware.models.CheckResult`),
the calibration tables and the JSON report are all made from it. No torch here, so the web reads it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How a check ended. Only PASSED earns points."""

    PASSED = "passed"
    FAILED = "failed"  # measured, and below the bar
    NOT_CHECKED = "not_checked"  # the student's code failed or was stopped before this could be measured
    NOT_ATTEMPTED = "not_attempted"  # the entry point it needs raises NotImplementedError
    GRADER_ERROR = "grader_error"  # the grader's own code failed: not the student's fault


@dataclass
class Artifact:
    name: str
    caption: str
    audience: str  # student | staff
    data: bytes
    content_type: str = "image/png"


@dataclass
class CheckOutcome:
    """One check's result: the one list of a result's fields. The database row (`CheckResult`), the
    calibration tables and the JSON report are all made from it."""

    name: str
    title: str
    tier: str
    visibility: str
    status: Status
    points: float
    max_points: float
    value: float | None
    threshold: float | None
    direction: str
    unit: str
    feedback: str
    staff_note: str
    order: int

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    @property
    def margin(self) -> float | None:
        if self.value is None or self.threshold is None or not self.direction:
            return None
        return self.threshold - self.value if self.direction == "max" else self.value - self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status), "passed": self.passed}

    def stored_fields(self) -> dict[str, Any]:
        """What a database row keeps of the outcome: every field, and `passed` for fast queries."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "status": str(self.status),
                "passed": self.passed}


def format_number(x: float | None) -> str:
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.3e}"
    return f"{x:.4g}"
