"""Shared fixtures: users and a round, a real Redis server, real Celery worker processes.

Nothing here is mocked: the services are the ones production uses, started on loopback ports.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

REPO = Path(__file__).resolve().parent.parent
MDN = REPO / "assignments" / "lab1" / "mdn"
ATTACKS = Path(__file__).resolve().parent / "redteam" / "attacks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


@pytest.fixture
def course_round(db):
    from courseware.models import Assignment, Course, CourseRound, Part, PartVersion
    from grader.parts import load_part

    spec = load_part("mdn")
    part = Part.objects.create(slug="mdn", title=spec.title)
    part.current_version = PartVersion.objects.create(part=part, content_hash=spec.content_hash, manifest=spec.manifest)
    part.save()
    course = Course.objects.create(code="DD2601", name="Deep Generative Models and Synthesis")
    today = timezone.localdate()
    course_round = CourseRound.objects.create(
        course=course, code="HT26", starts_on=today - dt.timedelta(days=10), ends_on=today + dt.timedelta(days=60),
        examinable_until=today + dt.timedelta(days=800))
    Assignment.objects.create(round=course_round, part=part, deadline=timezone.now() + dt.timedelta(days=7),
                              max_submissions_per_day=5)
    return course_round


@pytest.fixture
def people(course_round, django_user_model):
    from courseware.models import Enrollment, Role

    made = {}
    for name, role in [("alice", Role.STUDENT), ("bob", Role.STUDENT), ("tina", Role.TA), ("erik", Role.EXAMINER)]:
        user = django_user_model.objects.create_user(name, password=f"{name}-pw-2601")
        Enrollment.objects.create(user=user, round=course_round, role=role)
        made[name] = user
    outsider = django_user_model.objects.create_user("olle", password="olle-pw-2601")
    made["olle"] = outsider
    return made


@pytest.fixture
def assignment(course_round):
    return course_round.assignments.get()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[dict]:
    """A real redis-server on a free loopback port, with append-only persistence like production."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed; bin/test installs it with apt-get")
    data = tmp_path_factory.mktemp("redis")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--appendonly", "yes",
            "--save", "", "--daemonize", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    server = {"url": f"redis://127.0.0.1:{port}/0", "proc": proc, "args": args, "port": port}
    yield server
    server["proc"].terminate()
    server["proc"].wait(10)


def point_producer_at(url: str, transport_options: dict) -> None:
    """Point this test process's Celery producer at a broker (the app caches its connection pools)."""
    from courseware.celery import app

    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    app._pool = None
    app.amqp._producer_pool = None


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a real `celery worker` process on the test database and a given broker."""
    from django.db import connection

    workers: list[WorkerProcess] = []

    def start(broker_url: str, *, broker_dir: Path | None = None, extra_env: dict | None = None,
              beat: bool = False) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
        env.update({
            "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
            "CELERY_BROKER_URL": broker_url,
            "GRADER_IMPORT_SECONDS": "8",
            "GRADER_SWEEP_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
        })
        if broker_dir is not None:
            env["DD2601_BROKER_DIR"] = str(broker_dir)
        env.update(extra_env or {})
        log_path = tmp_path / f"worker-{len(workers)}.log"
        args = [sys.executable, "-m", "celery", "-A", "courseware", "worker", "-Q", "cpu,gpu", "--concurrency", "1",
                "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"test{len(workers)}@%h"]
        if beat:
            args += ["-B", "-s", str(tmp_path / "beat-schedule")]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        worker = WorkerProcess(proc, log_path)
        workers.append(worker)
        deadline = time.monotonic() + 60
        while "ready." not in worker.log():
            if not worker.alive() or time.monotonic() > deadline:
                worker.stop(signal.SIGKILL)
                pytest.fail(f"celery worker did not start:\n{worker.log()[-3000:]}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for_run(run_id: int, timeout: float = 180):
    """Poll the database (the source of truth) until the run is finished."""
    from courseware.models import GradingRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = GradingRun.objects.get(pk=run_id)
        if run.is_finished:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s (status {run.status}, phase {run.phase})")
