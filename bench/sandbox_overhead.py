"""What does the sandbox cost?

1. The fixed cost of one sandboxed run: grading an empty submission (container start, harness start,
   `import torch`, the import of the student's module, teardown), docker backend vs the unsafe local
   subprocess.
2. The ratio of grading the MDN reference in the Docker sandbox to the same checks run against an
   unsandboxed local harness (same seed, same work), median of several runs.
3. Cold against warm start of a single-use sandbox (issue 13): cold is a container created and started
   when the job needs it (container start, harness boot, `import torch`, the student's import); warm is a
   sandbox started beforehand, whose harness already imported torch and waits for its one job (what
   `grader.lifetimes.Sandboxes.prewarm` gives every sandbox of a run after the first); and the teardown.
4. The fixed cost per run against the median job: what a run of the part's reference waits for that is
   not its own work — the sandbox starts on its critical path (the engine's "sandbox starts": the first
   sandbox cold, the later ones taken from the spares started ahead) plus the teardowns it waits for (the
   engine's "sandbox teardowns": a closed sandbox is killed at once and removed in the background; the run
   waits for every removal at its end) — as a fraction of the median of those runs. The issue's bar is 5 %.

    python bench/sandbox_overhead.py [--runs 5] [--part mdn] [--one-spare]
Figures go to stdout; they are machine-dependent, so compare ratios, not seconds, across machines.
The last line is the one to compare:  overhead fixed_s=S median_job_s=S fraction=F
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
from grader.engine import entries_of, limits_for  # noqa: E402
from grader.parts import load_part  # noqa: E402
from grader.sandbox import open_backend  # noqa: E402
from grader.sandbox.session import OutputLog  # noqa: E402


def timed(part, folder: Path, backend: str, seed: int):
    started = time.perf_counter()
    report = grade_source(part, folder, backend=backend, seed=seed)
    elapsed = time.perf_counter() - started
    return elapsed, report


def start_times(part, folder: Path, runs: int) -> dict[str, list[float]]:
    """Cold start, warm start and teardown of single-use sandboxes of the part, on the Docker backend."""
    backend = open_backend("docker")
    limits = limits_for(part)
    times: dict[str, list[float]] = {"cold": [], "warm": [], "teardown": []}

    def hello(session) -> None:
        session.hello(module=part.module, entries=entries_of(part), threads=int(part.resources.cpus), seed=1,
                      timeout=60)

    def sandbox(i: int):
        return backend.start(folder, limits, label=f"overhead-{os.getpid()}-{i}", gpu=False,
                             run_deadline=time.monotonic() + 600, log=OutputLog(limits.log_keep_bytes))

    for i in range(runs):
        started = time.perf_counter()
        context = sandbox(2 * i)
        hello(context.__enter__())
        times["cold"].append(time.perf_counter() - started)
        ended = time.perf_counter()
        context.__exit__(None, None, None)
        times["teardown"].append(time.perf_counter() - ended)
        spare = sandbox(2 * i + 1)  # started ahead of its job, as the lifetimes' prewarm does
        session = spare.__enter__()
        time.sleep(4)  # a job's worth of time: the harness has booted and imported torch by now
        started = time.perf_counter()
        hello(session)
        times["warm"].append(time.perf_counter() - started)
        spare.__exit__(None, None, None)
    return times


def show(name: str, values: list[float]) -> None:
    print(f"  {name:13s} {statistics.median(values):6.2f} s   (min {min(values):.2f}, max {max(values):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--part", default="mdn")
    parser.add_argument("--one-spare", action="store_true",
                        help="the engine as it was before issue 13's last cut, for a before/after on one machine: "
                             "one spare ahead at full CPU weight, every teardown waited for")
    args = parser.parse_args()
    if args.one_spare:
        from grader.sandbox.docker_backend import DockerBackend

        DockerBackend.spares_ahead, DockerBackend.background_teardown = 1, False
    part = load_part(args.part)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / part.module).write_text("# an empty submission: every call fails at once\n")
        timed(part, empty, "docker", 0)  # warm the page cache once
        fixed = {b: [timed(part, empty, b, i)[0] for i in range(args.runs)] for b in ("docker", "unsafe-local")}
    print(f"fixed cost of one run, empty submission, median of {args.runs}:")
    for backend, times in fixed.items():
        print(f"  {backend:13s} {statistics.median(times):6.2f} s   (min {min(times):.2f}, max {max(times):.2f})")
    print(f"  sandbox overhead per run: {statistics.median(fixed['docker']) - statistics.median(fixed['unsafe-local']):.2f} s")

    reference = part.solution_dir
    pairs, reports = [], []
    for i in range(args.runs):
        docker_s, docker_report = timed(part, reference, "docker", 100 + i)
        local_s, local_report = timed(part, reference, "unsafe-local", 100 + i)
        assert docker_report.all_passed and local_report.all_passed
        reports.append(docker_report)
        pairs.append((docker_s, local_s, docker_report.timings.get("call fit", 0), local_report.timings.get("call fit", 0)))
    docker_med = statistics.median(p[0] for p in pairs)
    local_med = statistics.median(p[1] for p in pairs)
    ratios = [p[0] / p[1] for p in pairs]
    print(f"{part.slug} reference, full grading, median of {args.runs}:")
    print(f"  docker sandbox {docker_med:6.2f} s   (fit {statistics.median(p[2] for p in pairs):.2f} s)")
    print(f"  unsafe local   {local_med:6.2f} s   (fit {statistics.median(p[3] for p in pairs):.2f} s)")
    print(f"  ratio sandbox / local: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")

    times = start_times(part, part.solution_dir, args.runs)
    print(f"single-use sandbox of {part.slug}, reference module, median of {args.runs}:")
    for name in ("cold", "warm", "teardown"):
        show(f"{name} start" if name != "teardown" else name, times[name])
    print(f"  warm / cold: {statistics.median(times['warm']) / statistics.median(times['cold']):.2f}")

    jobs = [r.timings["total"] for r in reports]
    starts = [r.timings.get("sandbox starts", 0.0) for r in reports]
    teardowns = [r.timings.get("sandbox teardowns", 0.0) for r in reports]
    sandboxes = [sum(v for k, v in r.timings.items() if k.startswith("sandboxes ")) for r in reports]
    fixed = [s + t for s, t in zip(starts, teardowns, strict=True)]
    print(f"{part.slug} reference in the Docker sandbox, per run (median of {args.runs}): "
          f"{statistics.median(sandboxes):.0f} sandboxes, starts waited for {statistics.median(starts):.2f} s, "
          f"teardowns waited for {statistics.median(teardowns):.2f} s, job {statistics.median(jobs):.2f} s")
    fixed_s, job_s = statistics.median(fixed), statistics.median(jobs)
    print(f"overhead fixed_s={fixed_s:.2f} median_job_s={job_s:.2f} fraction={fixed_s / job_s:.3f}")


if __name__ == "__main__":
    main()
