"""A full reference submission of every LAB1 part, graded once each in the sandbox, one after another.

Prints per part: wall time of the whole grading run, training time, points, and the total (the target
is under 10 CPU-minutes on the project's 2-core machines).

    python bench/full_reference.py [--backend docker] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseware.settings")

import django  # noqa: E402

django.setup()

from grader.calibration import grade_source  # noqa: E402
from grader.parts import all_parts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="docker")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    total = 0.0
    print(f"{'part':16s} {'wall s':>7s} {'fit s':>7s} {'points':>12s}  failed checks")
    for part in all_parts():
        started = time.perf_counter()
        report = grade_source(part, part.solution_dir, backend=args.backend, seed=args.seed)
        wall = time.perf_counter() - started
        total += wall
        fit = sum(v for k, v in report.timings.items() if k.startswith("call fit"))
        failed = [c.name for c in report.checks if not c.passed]
        print(f"{part.slug:16s} {wall:7.1f} {fit:7.1f} {report.points:5g} / {report.max_points:<5g}  {', '.join(failed) or '-'}",
              flush=True)
    print(f"{'total':16s} {total:7.1f} s = {total / 60:.1f} min for {len(all_parts())} parts")


if __name__ == "__main__":
    main()
