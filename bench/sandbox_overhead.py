"""What does the sandbox cost?

1. The fixed cost of one sandboxed run: grading an empty submission (container start, harness start,
   `import torch`, the import of the student's module, teardown), docker backend vs the unsafe local
   subprocess.
2. The ratio of grading the MDN reference in the Docker sandbox to the same checks run against an
   unsandboxed local harness (same seed, same work), median of several runs.

    python bench/sandbox_overhead.py [--runs 5]
Figures go to stdout; they are machine-dependent, so compare ratios, not seconds, across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseware.settings")

import django  # noqa: E402

django.setup()

from grader.calibration import grade_source  # noqa: E402
from grader.parts import load_part  # noqa: E402


def timed(part, folder: Path, backend: str, seed: int):
    started = time.perf_counter()
    report = grade_source(part, folder, backend=backend, seed=seed)
    elapsed = time.perf_counter() - started
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    part = load_part("mdn")
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / "mdn.py").write_text("# an empty submission: every call fails at once\n")
        timed(part, empty, "docker", 0)  # warm the page cache once
        fixed = {b: [timed(part, empty, b, i)[0] for i in range(args.runs)] for b in ("docker", "unsafe-local")}
    print(f"fixed cost of one run, empty submission, median of {args.runs}:")
    for backend, times in fixed.items():
        print(f"  {backend:13s} {statistics.median(times):6.2f} s   (min {min(times):.2f}, max {max(times):.2f})")
    print(f"  sandbox overhead per run: {statistics.median(fixed['docker']) - statistics.median(fixed['unsafe-local']):.2f} s")

    reference = part.solution_dir
    pairs = []
    for i in range(args.runs):
        docker_s, docker_report = timed(part, reference, "docker", 100 + i)
        local_s, local_report = timed(part, reference, "unsafe-local", 100 + i)
        assert docker_report.all_passed and local_report.all_passed
        pairs.append((docker_s, local_s, docker_report.timings.get("call fit", 0), local_report.timings.get("call fit", 0)))
    docker_med = statistics.median(p[0] for p in pairs)
    local_med = statistics.median(p[1] for p in pairs)
    ratios = [p[0] / p[1] for p in pairs]
    print(f"MDN reference, full grading, median of {args.runs}:")
    print(f"  docker sandbox {docker_med:6.2f} s   (fit {statistics.median(p[2] for p in pairs):.2f} s)")
    print(f"  unsafe local   {local_med:6.2f} s   (fit {statistics.median(p[3] for p in pairs):.2f} s)")
    print(f"  ratio sandbox / local: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
