"""The assignment set tests itself: every reference solution must pass every check with a margin over
several seeds, every starter must fail its hidden checks, and every known-wrong submission must fail
the checks it names."""

from __future__ import annotations

import math
import os
import statistics
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
    reference_seconds: list[float] = field(default_factory=list)


def honest_solutions(part: PartSpec, seeds: list[int], alternative_seeds: int) -> list[tuple[str, Path, list[int]]]:
    """The reference on every seed, then every honest alternative (`alternatives/<name>/`) on the first
    `alternative_seeds` of them."""
    found = [("reference", part.solution_dir, seeds)]
    if alternative_seeds:
        found += [(f"alternative {folder.name}", folder, seeds[:alternative_seeds]) for folder in part.alternatives()]
    return found


# An honest solution must pass an E or C check at least 99 % of the time. Over a few seeds that is shown
# by the margin in units of the value's spread across seeds: for a roughly normal value, a mean margin of
# Z_99 standard deviations means a 1 % chance of falling below the threshold.
Z_99 = 2.326


def spread_row(name: str, tier: str, outcomes: list[CheckOutcome]) -> tuple[str, ...]:
    """pass rate, the value's mean and spread, the worst margin and the margin in units of the spread."""
    passed = sum(o.passed for o in outcomes)
    values = [o.value for o in outcomes if o.value is not None and math.isfinite(o.value)]
    margins = [o.margin for o in outcomes if o.margin is not None and math.isfinite(o.margin)]
    mean = statistics.fmean(values) if values else None
    sd = statistics.stdev(values) if len(values) > 1 else None
    z = None
    if margins and sd:
        z = statistics.fmean(margins) / sd
    elif margins and sd == 0:
        z = math.inf
    return (name, tier, f"{passed}/{len(outcomes)}", format_number(mean), format_number(sd),
            format_number(min(margins) if margins else None), format_number(z))


def judge_honest(part: PartSpec, runs: dict[str, list[GradeReport]], result: PartCalibration,
                 echo: Callable[[str], None]) -> None:
    """Per check and honest solution: every E and C check passes every time, with a margin; the A tier too
    for the reference (alternatives need not attempt it)."""
    rows = [("check", "tier", "passed", "mean", "sd", "worst margin", "margin/sd")]
    for check, spec in part.checks.items():
        for solution, reports in runs.items():
            outcomes = [c for r in reports for c in r.checks if c.name == check]
            row = spread_row(f"{check} [{solution}]" if len(runs) > 1 else check, spec.tier, outcomes)
            rows.append(row)
            must_pass = spec.tier in ("E", "C") or solution == "reference"
            failed = [o for o in outcomes if not o.passed]
            if failed and must_pass:
                result.problems.append(f"{solution} fails {check} on {len(failed)} of {len(outcomes)} seeds: "
                                       f"{failed[0].feedback}")
            elif must_pass and any(o.margin is not None and o.margin <= 0 for o in outcomes):
                result.problems.append(f"{solution} passes {check} without margin")
    echo(_table(rows))


def grade_honest(part: PartSpec, *, backend: str, seeds: list[int], alternative_seeds: int,
                 echo: Callable[[str], None], result: PartCalibration) -> dict[str, list[GradeReport]]:
    runs: dict[str, list[GradeReport]] = {}
    for solution, folder, its_seeds in honest_solutions(part, seeds, alternative_seeds):
        echo(f"== {part.slug}: {solution} over seeds {its_seeds}")
        runs[solution] = []
        for seed in its_seeds:
            report = grade_source(part, folder, backend=backend, seed=seed)
            runs[solution].append(report)
            if report.error:
                result.problems.append(f"{solution}, seed {seed}: {report.error}")
            result.problems += [f"{solution}, seed {seed}: grader error: {e.strip().splitlines()[-1]}"
                                for e in report.grader_errors]
        echo(f"{solution}: wall time per run (s): " + ", ".join(f"{r.timings.get('total', 0.0):.1f}"
                                                              for r in runs[solution]))
    result.reference_seconds = [r.timings.get("total", 0.0) for r in runs["reference"]]
    return runs


def calibrate_part(part: PartSpec, *, backend: str, seeds: list[int], alternative_seeds: int = 0,
                   wrong_seeds: int = 1, echo: Callable[[str], None] = print) -> PartCalibration:
    """Honest solutions pass with margin, the starter fails its hidden checks, every known-wrong fails the
    checks it names (on the first `wrong_seeds` seeds)."""
    result = PartCalibration(part.slug)
    runs = grade_honest(part, backend=backend, seeds=seeds, alternative_seeds=alternative_seeds, echo=echo,
                        result=result)
    judge_honest(part, runs, result, echo)
    slowest: dict[str, float] = {}
    for report in (r for reports in runs.values() for r in reports):
        for entry, seconds in report.slowest_calls.items():
            slowest[entry] = max(slowest.get(entry, 0.0), seconds)
    table, too_tight = call_limits(part, slowest)
    echo(table)
    result.problems += too_tight
    calibrate_starter(part, backend=backend, seed=seeds[0], echo=echo, result=result)
    for seed in seeds[:wrong_seeds]:
        calibrate_wrongs(part, backend=backend, seed=seed, echo=echo, result=result)
    return result


def calibrate_starter(part: PartSpec, *, backend: str, seed: int, echo: Callable[[str], None],
                      result: PartCalibration) -> None:
    echo(f"== {part.slug}: starter code (handout/)")
    starter = grade_source(part, part.handout_dir, backend=backend, seed=seed)
    passed_hidden = [c.name for c in starter.checks if c.passed and c.visibility != "public"]
    echo(f"starter ({starter.timings.get('total', 0.0):.1f} s): {sum(c.passed for c in starter.checks)} of "
         f"{len(starter.checks)} checks pass"
         + (f"; HIDDEN CHECKS PASSED: {passed_hidden}" if passed_hidden else "; every hidden check fails"))
    if starter.checks:
        echo(f"  e.g. {starter.checks[0].name}: {starter.checks[0].feedback}")
    if passed_hidden:
        result.problems.append(f"starter passes hidden checks {passed_hidden}")


def calibrate_wrongs(part: PartSpec, *, backend: str, seed: int, echo: Callable[[str], None],
                     result: PartCalibration) -> None:
    for bug, folder, must_fail in part.known_wrong():
        report = grade_source(part, folder, backend=backend, seed=seed)
        outcome = {c.name: c for c in report.checks}
        escaped = [n for n in must_fail if outcome[n].passed]
        result.problems += [f"known-wrong {bug}: grader error: {e.strip().splitlines()[-1]}"
                            for e in report.grader_errors]
        verdict = f"ESCAPED {escaped}" if escaped else "caught"
        echo(f"== {part.slug}: known-wrong '{bug}' must fail {must_fail} (seed {seed}): {verdict} "
             f"({report.timings.get('total', 0.0):.1f} s)")
        for n in must_fail:
            echo(f"  {n}: {outcome[n].feedback}")
        if escaped:
            result.problems.append(f"known-wrong {bug} passes {escaped} (seed {seed})")


# A call's limit must leave an honest model that is several times slower than the reference room to
# answer (and the grader's channel its transfer time), yet be far too short to train the model in.
LIMIT_ROOM, LIMIT_SLACK = 3.0, 0.5


def call_limits(part: PartSpec, slowest: dict[str, float]) -> tuple[str, list[str]]:
    """Per scoring entry point: the reference's slowest call, the limit one call gets, and the ratio; a
    limit tighter than LIMIT_ROOM x the reference + LIMIT_SLACK s is a problem."""
    rows, problems = [("entry point", "reference slowest (s)", "limit (s)", "limit / reference")], []
    for call, spec in part.entry_points.items():
        if spec.stores_object or call not in slowest:
            continue
        limit = spec.seconds or part.resources.call_seconds
        rows.append((call, f"{slowest[call]:.3f}", f"{limit:g}", f"{limit / max(slowest[call], 1e-3):.0f}x"))
        if limit < LIMIT_ROOM * slowest[call] + LIMIT_SLACK:
            problems.append(f"the limit of {call} ({limit:g} s) leaves too little room over the reference's "
                            f"{slowest[call]:.2f} s")
    return _table(rows), problems


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
