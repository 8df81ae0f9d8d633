"""A deadline storm: a burst of submissions drained by real workers with 2 slots.

What runs is what production runs: PostgreSQL, a real redis-server, a real Celery worker (`--concurrency 2`,
GRADER_SLOTS=2, the Docker sandbox), uploads through the one upload service (`courseware.uploads.submit`,
from 8 threads at once), the fair queue's dispatcher. The parts are two copies of the example part
(docs/example_part: a Gaussian mixture on a ring) with a 2 s training budget, so that 200 runs drain in
minutes rather than the hours the LAB1 parts' budgets would take; every run is a real grading (training
sandbox, scoring sandboxes rebuilt from the frozen state, trusted checks, figures).

The burst: 100 students; each submits part A, 60 also part B (160 first submissions), and 40 resubmit
part A at once (some twice: 48 resubmissions), interleaved the way a deadline brings them (a student's
resubmission follows their first within the burst, long before everybody's first is graded). One
submission in five is a known-wrong copy.

Printed: the drain time against raw capacity (the sum of the runs' own grading times, as the engine
timed them, divided by the slots), first submissions' and resubmissions' waits (upload to start),
and runs lost (accepted, never graded) or graded twice (more than one attempt or one set of results).

    python bench/deadline_storm.py [--database postgres://user@host:port/name] [--students 100]

The database named is dropped and made again (default: `dd2601_storm` on the server of
DD2601_TEST_DATABASE_URL, which `bin/test` starts). The last line is the one to compare:
    storm ratio=R lost=N double=N first_p95_s=S resub_p95_s=S
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "example_part"
SLOTS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_parts(root: Path) -> list[str]:
    """Two quick parts from the example part: a 2 s training budget, their own slugs."""
    slugs = []
    for slug in ("ring_a", "ring_b"):
        target = root / "lab1" / slug
        shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
        manifest = (target / "part.toml").read_text()
        manifest = manifest.replace('slug = "example_part"', f'slug = "{slug}"')
        manifest = manifest.replace("cpu_seconds = 10", "cpu_seconds = 2").replace("threshold = 12.0", "threshold = 4.0")
        (target / "part.toml").write_text(manifest)
        slugs.append(slug)
    return slugs


def fresh_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_worker(log_path: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "celery", "-A", "courseware", "worker", "-Q", "cpu,gpu", "--concurrency",
            str(SLOTS), "--prefetch-multiplier", "1", "-n", "storm@%h", "--without-gossip", "--without-mingle",
            "--loglevel", "INFO"]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 120
    while b"ready." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.3)
    return proc


def folder_files(folder: Path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.glob("*.py"))]


def the_burst(n_students: int, seed: int = 2601) -> list[tuple[int, str, str, str]]:
    """(student index, part, "solution"|"wrong", "first"|"resub"), in the order they arrive."""
    rng = random.Random(seed)
    burst = []
    for i in range(n_students):
        version = lambda: "wrong" if rng.random() < 0.2 else "solution"  # noqa: E731
        burst.append((i, "ring_a", version(), "first"))
        if i % 5 < 2:  # 40 % resubmit part A at once, one in five of them twice
            burst.append((i, "ring_a", version(), "resub"))
            if i % 25 < 2:
                burst.append((i, "ring_a", version(), "resub"))
        if i % 5 < 3:
            burst.append((i, "ring_b", version(), "first"))
    return burst


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:  # noqa: C901 - a script: set up, burst, wait, report, in that order
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="")
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    base = args.database or os.environ.get("DD2601_TEST_DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("give --database postgres://... (or run bin/test once: it starts the test PostgreSQL)")
    database = args.database or urlunsplit(urlsplit(base)._replace(path="/dd2601_storm"))
    tmp = Path(tempfile.mkdtemp(prefix="dd2601-storm-"))
    os.chmod(tmp, 0o755)
    (tmp / "assignments").mkdir()
    slugs = make_parts(tmp / "assignments")
    fresh_database(database)
    redis_proc, broker = start_redis(tmp)
    os.environ.update({
        "DATABASE_URL": database, "CELERY_BROKER_URL": broker, "DD2601_ASSIGNMENTS_DIR": str(tmp / "assignments"),
        "DD2601_ARCHIVE_ROOT": str(tmp / "archives"), "GRADER_WORK_DIR": str(tmp / "work"),
        "GRADER_SLOTS": str(SLOTS), "GRADER_BACKEND": "docker", "DJANGO_SETTINGS_MODULE": "courseware.settings",
        "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from courseware import uploads
    from courseware.models import Assignment, Course, CourseRound, Enrollment, GradingRun, Part, Submission
    from grader.parts import load_part

    call_command("migrate", verbosity=0)
    today = timezone.localdate()
    course = Course.objects.create(code="DD2601", name="storm")
    course_round = CourseRound.objects.create(course=course, code="HT26", starts_on=today, ends_on=today,
                                              examinable_until=today.replace(year=today.year + 2))
    assignments = {}
    for slug in slugs:
        version, _ = Part.record_version(load_part(slug))
        assignments[slug] = Assignment.objects.create(round=course_round, part=version.part,
                                                      deadline=timezone.now() + dt.timedelta(hours=1))
    password = make_password("storm")
    students = User.objects.bulk_create([User(username=f"s{i:03d}", password=password)
                                         for i in range(args.students + 1)])
    Enrollment.objects.bulk_create([Enrollment(user=u, round=course_round) for u in students])
    solution, wrong = EXAMPLE / "solution", EXAMPLE / "wrong_copies"
    worker = start_worker(tmp / "worker.log")
    try:
        # One run first, outside the figures: the page cache and the worker's imports are warm afterwards.
        warm = uploads.submit(assignments["ring_a"], students[-1], folder_files(solution), declaration="none",
                              client_token="warm-up")
        while not GradingRun.objects.get(submission=warm.submission).is_finished:
            time.sleep(0.5)
        burst = the_burst(args.students)
        kinds: dict[int, str] = {}
        lock = threading.Lock()

        def send(k: int, item: tuple[int, str, str, str]) -> None:
            i, slug, version, kind = item
            result = uploads.submit(assignments[slug], students[i], folder_files(solution if version == "solution"
                                                                                 else wrong),
                                    declaration="none", client_token=f"storm-{k}")
            from django.db import connection

            connection.close()
            if isinstance(result, uploads.Accepted):
                with lock:
                    kinds[result.submission.pk] = kind
            else:
                print(f"refused: {result.message}", file=sys.stderr)

        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(len(burst)), burst))
        uploaded = time.time() - started
        deadline = time.monotonic() + args.timeout
        pending = GradingRun.objects.filter(submission_id__in=kinds).exclude(
            status__in=[GradingRun.Status.DONE, GradingRun.Status.ERROR])
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
        redis_proc.terminate()
    report(kinds, uploaded, Submission, GradingRun)
    shutil.rmtree(tmp, ignore_errors=True)


def report(kinds: dict[int, str], uploaded: float, Submission, GradingRun) -> None:  # noqa: N803 - models
    from courseware.models import CheckResult

    runs = list(GradingRun.objects.filter(submission_id__in=kinds).select_related("submission"))
    done = [r for r in runs if r.status == GradingRun.Status.DONE]
    per_submission = {sid: [r for r in runs if r.submission_id == sid] for sid in kinds}
    lost = sum(1 for rs in per_submission.values() if not any(r.status == GradingRun.Status.DONE for r in rs))
    result_sets = {r.pk: list(CheckResult.objects.filter(run=r).values_list("name", flat=True)) for r in done}
    double = sum(1 for rs in per_submission.values() if len(rs) > 1) + sum(1 for r in runs if r.attempt > 1) + sum(
        1 for names in result_sets.values() if len(names) != len(set(names)))
    first_created = min(r.submission.created_at for r in runs)
    last_finished = max(r.finished_at for r in done)
    drain = (last_finished - first_created).total_seconds()
    own = [float(r.timings.get("total", 0)) for r in done]
    capacity = sum(own) / SLOTS
    waits = {"first": [], "resub": []}
    for r in done:
        waits[kinds[r.submission_id]].append((r.started_at - r.submission.created_at).total_seconds())
    print(f"submissions accepted: {len(kinds)} ({len(waits['first'])} first, {len(waits['resub'])} resubmissions "
          f"graded), uploaded in {uploaded:.1f} s by 8 threads")
    print(f"runs graded: {len(done)}; median run {statistics.median(own):.2f} s (p95 {percentile(own, .95):.2f} s)")
    print(f"drain: {drain:.1f} s from the first upload to the last result; raw capacity {capacity:.1f} s "
          f"(sum of the runs' own times / {SLOTS} slots)")
    for kind, values in waits.items():
        print(f"wait of {kind:5s}: p50 {percentile(values, .5):7.1f} s   p95 {percentile(values, .95):7.1f} s   "
              f"max {max(values, default=float('nan')):7.1f} s")
    print(f"storm ratio={capacity / drain:.3f} lost={lost} double={double} "
          f"first_p95_s={percentile(waits['first'], .95):.1f} resub_p95_s={percentile(waits['resub'], .95):.1f}")


if __name__ == "__main__":
    main()
