"""The assignment set tests itself: every reference solution must pass every check with a margin over
several seeds, every starter must fail its hidden checks, and every known-wrong submission must fail
the checks it names."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.engine import GradeReport, grade
from grader.outcomes import CheckOutcome, format_number
from grader.parts import PartSpec
from grader.workspace import submission_workspace


def calibration_label(part: PartSpec) -> str:
    """The run label of this process's calibration containers: with the pid, so that a test can tell its
    own containers from those of another calibration sharing the Docker engine."""
    return f"calibrate-{part.slug}-{os.getpid()}"


def grade_source(part: PartSpec, source: Path, *, backend: str, seed: int | None) -> GradeReport:
    with submission_workspace(source, part) as folder:
        return grade(part, folder, backend_name=backend, seed=seed, label=calibration_label(part))


def report_table(report: GradeReport) -> str:
    rows = [("check", "tier", "vis", "result", "value", "threshold", "margin", "points")]
    for c in report.checks:
        rows.append((c.name, c.tier, c.visibility, "pass" if c.passed else str(c.status).upper(), format_number(c.value),
                     _threshold(c.threshold, c.direction), format_number(c.margin), f"{c.points:g}/{c.max_points:g}"))
    return _table(rows)


def _threshold(value: float | None, direction: str) -> str:
    return "" if value is None else f"{'≤' if direction == 'max' else '≥'} {format_number(value)}"


@dataclass
class PartCalibration:
    part: str
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)


def calibrate_part(part: PartSpec, *, backend: str, seeds: list[int],
                   echo: Callable[[str], None] = print) -> PartCalibration:
    result = PartCalibration(part.slug)
    per_check: dict[str, list[CheckOutcome]] = {}
    echo(f"== {part.slug}: reference solution over seeds {seeds}")
    for seed in seeds:
        report = grade_source(part, part.solution_dir, backend=backend, seed=seed)
        result.reference_seconds.append(report.timings.get("total", 0.0))
        for c in report.checks:
            per_check.setdefault(c.name, []).append(c)
        if report.error:
            result.problems.append(f"reference, seed {seed}: {report.error}")
        result.problems += [f"reference, seed {seed}: grader error: {e.strip().splitlines()[-1]}"
                            for e in report.grader_errors]
    rows = [("check", "tier", "threshold", "worst value", "min margin", "verdict")]
    for name, outcomes in per_check.items():
        spec = part.checks[name]
        failed = [o for o in outcomes if not o.passed]
        margins = [o.margin for o in outcomes if o.margin is not None]
        worst = min(margins) if margins else None
        worst_value = next((o.value for o in outcomes if o.margin == worst), None) if margins else None
        verdict = "ok"
        if failed:
            verdict = "REFERENCE FAILS"
            result.problems.append(f"reference fails {name} on {len(failed)} of {len(outcomes)} seeds: {failed[0].feedback}")
        elif worst is not None and worst <= 0:
            verdict = "NO MARGIN"
            result.problems.append(f"reference passes {name} without margin ({worst})")
        rows.append((name, spec.tier, _threshold(spec.threshold, spec.direction), format_number(worst_value),
                     format_number(worst), verdict))
    echo(_table(rows))
    times = ", ".join(f"{t:.1f}" for t in result.reference_seconds)
    echo(f"reference wall time per run (s): {times}")

    echo(f"== {part.slug}: starter code (handout/)")
    starter = grade_source(part, part.handout_dir, backend=backend, seed=seeds[0])
    passed_hidden = [c.name for c in starter.checks if c.passed and c.visibility != "public"]
    echo(f"starter: {sum(c.passed for c in starter.checks)} of {len(starter.checks)} checks pass"
         + (f"; HIDDEN CHECKS PASSED: {passed_hidden}" if passed_hidden else "; every hidden check fails"))
    if starter.checks:
        echo(f"  e.g. {starter.checks[0].name}: {starter.checks[0].feedback}")
    if passed_hidden:
        result.problems.append(f"starter passes hidden checks {passed_hidden}")

    for bug, folder, must_fail in part.known_wrong():
        report = grade_source(part, folder, backend=backend, seed=seeds[0])
        outcome = {c.name: c for c in report.checks}
        escaped = [n for n in must_fail if outcome[n].passed]
        result.problems += [f"known-wrong {bug}: grader error: {e.strip().splitlines()[-1]}"
                            for e in report.grader_errors]
        verdict = f"ESCAPED {escaped}" if escaped else "caught"
        echo(f"== {part.slug}: known-wrong '{bug}' must fail {must_fail}: {verdict}")
        for n in must_fail:
            echo(f"  {n}: {outcome[n].feedback}")
        if escaped:
            result.problems.append(f"known-wrong {bug} passes {escaped}")
    return result


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
