"""Upload load: 50 students at once signing in, opening the assignment and uploading, against gunicorn
(the production config: docker/production/gunicorn.conf.py), PostgreSQL and Redis.

Driven by locust, headless (bench/upload_locustfile.py): 50 users, started 10 a second, each one a student
who signs in, opens the assignment, takes 5-15 s to choose files and write the declaration, uploads, and
watches the result page (its status fragment polled every 2 s, as in the browser) for 10 s, then starts
over after 1-5 s — every student uploads about every 25 s, 2 uploads a second together, far more than a
deadline's last hour brings (300 students). `--think 0` drops the thinking and the watching: every
student uploads as fast as the server answers, which measures the saturated server instead. Uploads go
all the way: the form, the archive checks, the stored archive, the submission and its queued run in one
transaction, the token to Redis after the commit (no worker drains them: the queue is not what is
measured here). Afterwards the database must hold exactly the submissions that locust saw accepted.

    python bench/upload_load.py [--database postgres://user@host:port/name] [--users 50] [--seconds 90]
                                [--think 0]

The database named is dropped and made again (default: `dd2601_upload` on the server of
DD2601_TEST_DATABASE_URL). The last line is the one to compare:
    upload p50_ms=M p95_ms=M p99_ms=M errors=N db_matches=yes|no
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from deadline_storm import free_port, fresh_database, start_redis  # noqa: E402 - the same set-up helpers


def percentile(histogram: dict[str, int], q: float) -> float:
    """From locust's histogram of response times (milliseconds, rounded as locust keeps them -> count)."""
    times = sorted((float(ms), n) for ms, n in histogram.items())
    total = sum(n for _, n in times)
    seen = 0
    for ms, n in times:
        seen += n
        if seen >= q * total:
            return ms
    return float("nan")


def start_gunicorn(port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(REPO / "docker/production/gunicorn.conf.py"),
                                 "--bind", f"127.0.0.1:{port}", "courseware.wsgi:application"],
                                cwd=REPO, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def setup_database(n_users: int) -> int:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from courseware.models import Assignment, Course, CourseRound, Enrollment, Part
    from grader.parts import load_part

    call_command("migrate", verbosity=0)
    today = timezone.localdate()
    course = Course.objects.create(code="DD2601", name="upload load")
    course_round = CourseRound.objects.create(course=course, code="HT26", starts_on=today, ends_on=today,
                                              examinable_until=today.replace(year=today.year + 2))
    version, _ = Part.record_version(load_part("mdn"))
    assignment = Assignment.objects.create(round=course_round, part=version.part, max_submissions_per_day=100_000,
                                           deadline=timezone.now() + dt.timedelta(days=1))
    password = make_password("load-pw-2601")
    users = User.objects.bulk_create([User(username=f"s{i:03d}", password=password) for i in range(n_users)])
    Enrollment.objects.bulk_create([Enrollment(user=u, round=course_round) for u in users])
    return assignment.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--think", type=int, default=1, help="0: no thinking or watching (a saturation test)")
    args = parser.parse_args()
    base = args.database or os.environ.get("DD2601_TEST_DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("give --database postgres://... (or run bin/test once: it starts the test PostgreSQL)")
    database = args.database or urlunsplit(urlsplit(base)._replace(path="/dd2601_upload"))
    tmp = Path(tempfile.mkdtemp(prefix="dd2601-upload-"))
    fresh_database(database)
    redis_proc, broker = start_redis(tmp)
    os.environ.update({
        "DATABASE_URL": database, "CELERY_BROKER_URL": broker, "DD2601_ARCHIVE_ROOT": str(tmp / "archives"),
        "DJANGO_SETTINGS_MODULE": "courseware.settings", "DJANGO_DEBUG": "0", "LOG_LEVEL": "WARNING",
        "DD2601_VAR_DIR": str(tmp / "var"), "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "3")})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    assignment = setup_database(args.users)
    port = free_port()
    gunicorn = start_gunicorn(port, tmp / "gunicorn.log")
    count_file = tmp / "accepted"
    try:
        subprocess.run(["locust", "-f", str(REPO / "bench" / "upload_locustfile.py"), "--headless", "--skip-log",
                        "-u", str(args.users), "-r", "10", "-t", f"{args.seconds}s", "--host", f"http://127.0.0.1:{port}",
                        "--json-file", str(tmp / "stats"), "--stop-timeout", "20"],
                       env={**os.environ, "UPLOAD_LOAD_ASSIGNMENT": str(assignment), "UPLOAD_LOAD_THINK": str(args.think),
                            "UPLOAD_LOAD_COUNT_FILE": str(count_file)}, check=False, timeout=args.seconds + 120,
                       stdout=subprocess.DEVNULL)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(30)
    from courseware.models import GradingRun, Submission

    stats = {entry["name"]: entry for entry in json.loads((tmp / "stats.json").read_text())}
    upload = stats["upload"]
    errors = sum(e["num_failures"] for e in stats.values())
    accepted = int(count_file.read_text()) if count_file.exists() else -1
    in_db = Submission.objects.count()
    matches = accepted == in_db == GradingRun.objects.count() == upload["num_requests"] - upload["num_failures"]
    print(f"requests: {sum(e['num_requests'] for e in stats.values())} ({errors} failed); uploads: "
          f"{upload['num_requests']}, accepted {accepted}, in the database {in_db}")
    for name, entry in stats.items():
        p50, p95, p99 = (percentile(entry["response_times"], q) for q in (0.5, 0.95, 0.99))
        print(f"  {name:16s} n={entry['num_requests']:>5d}  p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  p99 {p99:6.0f} ms  "
              f"failures {entry['num_failures']}")
    redis_proc.terminate()
    p50, p95, p99 = (percentile(upload["response_times"], q) for q in (0.5, 0.95, 0.99))
    print(f"upload p50_ms={p50:.0f} p95_ms={p95:.0f} p99_ms={p99:.0f} errors={errors} "
          f"db_matches={'yes' if matches else 'no'}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
