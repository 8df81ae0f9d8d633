"""Feedback that names the mistake a wrong value shows.

A check that compares a student's value with the grader's knows, for every case it sends, what the
common mistakes would have returned (the biased estimator, the normal quantile instead of Student's t,
the swapped pair). `Suspects` keeps those values next to the student's answers and names the one
mistake that explains every wrong answer; when none does, the check's general hint stands. So the
feedback fits the number measured instead of listing every possible cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from grader.checklib.numerics import rel_error


def answer_distance(theirs: Any, ours: Any) -> float:
    """The largest relative difference (|t - o| / (1 + |o|)) over an answer's numbers (tuples pairwise)."""
    if isinstance(theirs, (tuple, list)):
        return max((answer_distance(t, o) for t, o in zip(theirs, ours, strict=True)), default=0.0)
    try:
        value = rel_error(theirs, ours)
    except (TypeError, ValueError, RuntimeError):
        return math.inf
    return value if math.isfinite(value) else math.inf


class Suspects:
    """Known mistakes and what each would have answered, case by case (see the module docstring).

    `see(theirs, ours, mistake=value, ...)` records one case; `named()` is the mistake that matches the
    student's answer (within `tolerance`) in every case where that answer is wrong, if exactly one does;
    `hint(general)` is that mistake's hint, or the general one."""

    def __init__(self, hints: dict[str, str], tolerance: float,
                 distance: Callable[[Any, Any], float] = answer_distance):
        self.hints = hints
        self.tolerance = tolerance
        self.distance = distance
        self.wrong_cases = 0
        self.explained: dict[str, int] = dict.fromkeys(hints, 0)

    def see(self, theirs: Any, ours: Any, **mistakes: Any) -> None:
        unknown = set(mistakes) - set(self.hints)
        if unknown:
            raise KeyError(f"no hint for the mistakes {sorted(unknown)}")
        if self.distance(theirs, ours) <= self.tolerance:
            return
        self.wrong_cases += 1
        for name, value in mistakes.items():
            if value is not None and self.distance(theirs, value) <= self.tolerance:
                self.explained[name] += 1

    def named(self) -> str | None:
        if not self.wrong_cases:
            return None
        matches = [name for name, count in self.explained.items() if count == self.wrong_cases]
        return matches[0] if len(matches) == 1 else None

    def hint(self, general: str) -> str:
        name = self.named()
        return self.hints[name] if name else general


def first_true(branches: Iterable[tuple[bool, str]], otherwise: str) -> str:
    """The text of the first branch whose condition holds: hints written as branches on what was measured."""
    return next((text for condition, text in branches if condition), otherwise)
