"""Fault injection with the real components: a real Celery worker process, a real Redis, the real Docker
engine and sandbox, the database as the source of truth. Each test breaks one thing while work is in
flight and asserts that every run finishes exactly once, with one set of results, and that platform
failures are never the student's.

How each fault is made:
- worker killed: SIGKILL to the worker's process group (main process and pool child) mid-run;
- Redis restarted: SIGTERM and start again with the same append-only data directory;
- broker down at upload: Redis stopped while the student uploads, started again afterwards;
- Docker engine lost mid-run: the worker talks to dockerd through a unix-socket proxy that this test
  owns (DOCKER_HOST); stopping the proxy resets every connection and refuses new ones, which is what a
  stopped or crashed dockerd looks like from the worker, without stopping the shared dockerd that other
  people's work runs on. (A second dockerd would need its own copy of the 1.1 GB image.)
- duplicate delivery: the same run's task executed twice at once;
- disk full: a submission fills the sandbox's /tmp.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import docker
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from courseware.models import CheckResult, GradingRun, Submission
from grader.parts import load_part
from grader.sandbox.docker_backend import LABEL

from .conftest import MDN, point_producer_at, wait_for_run, zip_folder

pytestmark = [pytest.mark.services, pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]

HERE = Path(__file__).resolve().parent
SLOW_HONEST = HERE / "redteam" / "baselines" / "slow_honest"
FILL_TMP = HERE / "redteam" / "attacks" / "fill_tmp"


# ---- helpers ----------------------------------------------------------------------------------------

@pytest.fixture
def work_dir(settings):
    path = Path(tempfile.mkdtemp(prefix="dd2601-faults-", dir="/tmp"))
    os.chmod(path, 0o755)
    settings.GRADER_WORK_DIR = path
    yield path
    left = sorted(p.name for p in path.iterdir())
    shutil.rmtree(path, ignore_errors=True)
    assert not left, f"files left behind in GRADER_WORK_DIR: {left}"


@pytest.fixture
def producer():
    """Restore the test process's broker connection afterwards (point_producer_at changes a global)."""
    from courseware.celery import app

    saved = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    yield lambda url: point_producer_at(url, {"visibility_timeout": 6 * 3600})
    point_producer_at(*saved)


@pytest.fixture
def worker_env(work_dir):
    return {"GRADER_WORK_DIR": str(work_dir), "GRADER_IMPORT_SECONDS": "60", "GRADER_BACKEND": "docker"}


def submit(client, assignment, folder: Path, token: str) -> Submission:
    f = io.BytesIO(zip_folder(folder))
    f.name = f"{folder.name}.zip"
    response = client.post(reverse("submit", args=[assignment.pk]),
                           {"files": [f], "declaration": "none", "client_token": token})
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Submission.objects.get(client_token=token)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_training(run_id: int, timeout: float = 120) -> GradingRun:
    """Until the run is inside fit() (the submission sleeps 12 s there), plus a moment."""
    def training():
        run = GradingRun.objects.get(pk=run_id)
        inside = run.status == GradingRun.Status.RUNNING and run.phase in ("training your model", "running checks")
        return run if inside else None
    run = wait_until(training, timeout, f"run {run_id} to be training")
    time.sleep(2)
    return run


def assert_one_set_of_results(run: GradingRun) -> None:
    names = list(CheckResult.objects.filter(run=run).values_list("name", flat=True))
    assert sorted(names) == sorted(load_part("mdn").checks), names
    assert len(names) == len(set(names))


def redis_len(server, queue: str = "cpu") -> int:
    import redis

    return redis.Redis(port=server["port"]).llen(queue)


def stop_redis(server) -> None:
    server["proc"].terminate()  # SIGTERM: Redis writes its append-only file and exits
    server["proc"].wait(20)


def start_redis(server) -> None:
    import redis

    server["proc"] = subprocess.Popen(server["args"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=server["port"])

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False
    wait_until(up, 30, "redis to come back", 0.05)


def remove_containers(run_label: str) -> list[str]:
    client = docker.from_env(timeout=30)
    found = client.containers.list(all=True, filters={"label": f"org.dd2601.run={run_label}"})
    for container in found:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
    return [c.short_id for c in found]


class EngineProxy:
    """A unix socket in front of the real dockerd. Stopped, it is a dead engine to the worker: open
    connections (the sandbox's attach stream among them) are reset and new ones are refused."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path = path
        self.target = target
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(self.path))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        self.path.unlink(missing_ok=True)
        with self.lock:
            connections, self.connections = self.connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


# ---- the worker dies mid-run --------------------------------------------------------------------------

def test_worker_killed_mid_run_is_sent_again_and_finishes_once(client, people, assignment, redis_server, start_worker,
                                                                producer, worker_env):
    producer(redis_server["url"])
    first = start_worker(redis_server["url"], extra_env=worker_env)
    client.force_login(people["alice"])
    submission = submit(client, assignment, SLOW_HONEST, "killed-worker")
    run = wait_training(submission.runs.get().pk)
    assert run.attempt == 1
    first.stop(signal.SIGKILL)  # the whole process group: main process and its pool child, no cleanup
    try:
        run.refresh_from_db()
        assert run.status == GradingRun.Status.RUNNING  # the database still says a worker holds it
        # The lease would expire by itself after the part's run time + 300 s; move it into the past
        # instead of waiting, then let a fresh worker's periodic sweeper find the run.
        GradingRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
        second = start_worker(redis_server["url"], extra_env=worker_env, beat=True)
        run = wait_for_run(run.pk, timeout=240)
        assert run.status == GradingRun.Status.DONE, (run.error_reason, run.staff_log[-2000:], second.log()[-3000:])
        assert run.attempt == 2 and run.error_reason == ""
        assert "trained" in run.student_log
        assert_one_set_of_results(run)
        assert Submission.objects.count() == 1 and submission.runs.count() == 1
    finally:
        orphans = remove_containers(f"run-{run.pk}-1")  # the killed worker's sandbox: the reaper's job
    assert orphans, "the first attempt's sandbox should have been running when its worker died"


# ---- Redis restarts with runs queued --------------------------------------------------------------------

def test_redis_restart_loses_no_queued_run(client, people, assignment, redis_server, start_worker, producer,
                                           worker_env):
    import redis

    redis.Redis(port=redis_server["port"]).flushdb()
    producer(redis_server["url"])
    client.force_login(people["bob"])
    submissions = [submit(client, assignment, MDN / "handout", f"restart-{i}") for i in range(3)]
    assert all(s.runs.get().enqueued_at is not None for s in submissions)
    assert redis_len(redis_server) == 3  # no worker yet: the messages wait in Redis
    stop_redis(redis_server)
    start_redis(redis_server)
    assert redis_len(redis_server) == 3, "the append-only file should have kept the queue"
    start_worker(redis_server["url"], extra_env=worker_env)  # no beat: only the broker can deliver them
    for s in submissions:
        run = wait_for_run(s.runs.get().pk, timeout=240)
        assert run.status == GradingRun.Status.DONE and run.attempt == 1, run.error_reason
        assert_one_set_of_results(run)


# ---- the broker is down when the student uploads ---------------------------------------------------------------

def test_upload_while_the_broker_is_down_is_graded_once_it_returns(client, people, assignment, redis_server,
                                                                   start_worker, producer, worker_env):
    import redis

    redis.Redis(port=redis_server["port"]).flushdb()
    producer(redis_server["url"])
    client.force_login(people["alice"])
    stop_redis(redis_server)
    try:
        submission = submit(client, assignment, MDN / "handout", "broker-down")  # accepted all the same
        run = submission.runs.get()
        assert run.status == GradingRun.Status.QUEUED and run.enqueued_at is None
    finally:
        start_redis(redis_server)
    assert redis_len(redis_server) == 0  # nothing reached the broker: only the database knows the run
    start_worker(redis_server["url"], extra_env=worker_env, beat=True)  # its sweeper sends the run
    run = wait_for_run(run.pk, timeout=240)
    assert run.status == GradingRun.Status.DONE and run.attempt == 1, run.error_reason
    assert run.enqueued_at is not None
    assert_one_set_of_results(run)


# ---- the Docker engine goes away mid-run -------------------------------------------------------------------------

def test_engine_lost_mid_run_is_an_infrastructure_retry_not_the_students_fault(
        client, people, assignment, redis_server, start_worker, producer, worker_env, work_dir):
    proxy = EngineProxy(work_dir.parent / f"{work_dir.name}.docker.sock")
    proxy.start()
    worker = None
    run = None
    try:
        producer(redis_server["url"])
        worker = start_worker(redis_server["url"], extra_env={**worker_env, "DOCKER_HOST": f"unix://{proxy.path}"})
        client.force_login(people["alice"])
        submission = submit(client, assignment, SLOW_HONEST, "engine-lost")
        run = wait_training(submission.runs.get().pk)
        proxy.stop()  # dockerd is gone, as far as the worker can tell

        def back_in_queue():
            r = GradingRun.objects.get(pk=run.pk)
            return r if r.status == GradingRun.Status.QUEUED and r.attempt == 1 else None
        try:
            waiting = wait_until(back_in_queue, 60, "the run to be queued for a retry")
        except AssertionError as timed_out:
            now = GradingRun.objects.get(pk=run.pk)
            raise AssertionError(f"{timed_out}; the run: {now.status} attempt {now.attempt} phase {now.phase!r} "
                                 f"reason {now.error_reason!r}\n{now.staff_log[-1500:]}\n{worker.log()[-3000:]}") from None
        assert "platform problem" in waiting.phase and "lost the Docker engine" in waiting.staff_log
        assert waiting.error_reason == "" and not CheckResult.objects.filter(run=run).exists()
        assert assignment.submissions_counted_today(people["alice"]) == 1  # the one submission, nothing more

        proxy.start()  # the engine is back; the task's retry (20 s later) grades it again
        run = wait_for_run(run.pk, timeout=240)
        assert run.status == GradingRun.Status.DONE and run.attempt == 2, (run.error_reason, worker.log()[-3000:])
        assert not run.infrastructure_error and run.error_reason == ""
        assert_one_set_of_results(run)
        # The first attempt's container could not be removed while the engine was gone; the worker
        # removed it at its next run instead of leaving it to the periodic reaper.
        leftover = docker.from_env(timeout=30).containers.list(all=True, filters={"label": f"org.dd2601.run=run-{run.pk}-1"})
        assert not leftover
    finally:
        if worker is not None:
            worker.stop()
        proxy.stop()
        if run is not None:
            remove_containers(f"run-{run.pk}-1")


# ---- the same task delivered twice -------------------------------------------------------------------------------

def test_duplicate_delivery_is_fenced_off(people, assignment, settings, work_dir):
    from courseware.models import Submission as SubmissionModel
    from grader import archives
    from grader.tasks import grade_run

    settings.GRADER_BACKEND = "docker"
    part = load_part("mdn")
    checked = archives.check_directory(MDN / "handout", archives.ArchivePolicy(allowed_patterns=part.allowed_patterns))
    archives.store(checked, settings.ARCHIVE_ROOT)
    submission = SubmissionModel.objects.create(
        assignment=assignment, submitter=people["alice"], sha256=checked.sha256, size=len(checked.canonical_zip),
        files=sorted(checked.files), declaration="none", client_token="duplicate")
    run = GradingRun.objects.create(submission=submission)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def deliver():
        try:
            barrier.wait(10)
            results.append(grade_run.apply(args=[run.pk]).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert sorted(results) == ["done", "fenced"], results
    run.refresh_from_db()
    assert run.status == GradingRun.Status.DONE and run.attempt == 1
    assert_one_set_of_results(run)


# ---- the sandbox's disk fills up --------------------------------------------------------------------------------

def test_disk_full_in_the_sandbox_is_a_clear_message_on_the_page(client, people, assignment, redis_server,
                                                                 start_worker, producer, worker_env):
    producer(redis_server["url"])
    start_worker(redis_server["url"], extra_env=worker_env)
    client.force_login(people["bob"])
    submission = submit(client, assignment, FILL_TMP, "disk-full")
    run = wait_for_run(submission.runs.get().pk, timeout=240)
    assert run.status == GradingRun.Status.DONE and not run.infrastructure_error
    assert run.points == 0
    feedback = " ".join(run.checks.values_list("feedback", flat=True))
    assert "No space left on device" in feedback or "File too large" in feedback, feedback
    assert "/tmp holds 64 MB" in feedback
    page = client.get(reverse("submission", args=[submission.pk])).content.decode()
    assert "/tmp holds 64 MB" in page


# ---- orphans: the reaper ------------------------------------------------------------------------------------------

def make_orphan(age_seconds: float, worker: str = "dead-worker-of-test-faults") -> docker.models.containers.Container:
    client = docker.from_env(timeout=30)
    return client.containers.run(
        "dd2601-sandbox:latest", ["python3", "-c", "import time; time.sleep(3600)"], detach=True,
        network_mode="none", user="10001:10001", cap_drop=["ALL"],
        labels={LABEL: "1", "org.dd2601.run": f"orphan-{os.getpid()}-{int(age_seconds)}",
                "org.dd2601.worker": worker, "org.dd2601.created": str(int(time.time() - age_seconds))})


def test_reaper_removes_a_real_orphan_container_but_not_a_live_run(settings):
    from grader.tasks import reap

    settings.GRADER_BACKEND = "docker"
    old = make_orphan(age_seconds=86400)
    young = make_orphan(age_seconds=5)
    try:
        assert old.status in ("created", "running")
        removed = reap()
        assert removed >= 1
        client = docker.from_env(timeout=30)
        ids = {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}
        assert old.id not in ids, "the orphan of a dead worker should be gone"
        assert young.id in ids, "a container young enough to be a running grading run must be left alone"
    finally:
        for container in (old, young):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)


def test_reaper_runs_when_a_worker_starts(redis_server, start_worker, worker_env):
    old = make_orphan(age_seconds=86400)
    try:
        start_worker(redis_server["url"], extra_env=worker_env)  # returns once the worker is ready
        client = docker.from_env(timeout=30)
        assert old.id not in {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            old.remove(force=True)


def test_bwrap_reaper_kills_and_removes_a_leftover_cgroup(settings):
    """bwrap's analogue: a per-run cgroup whose worker died (with --die-with-parent there should be none)."""
    from grader.sandbox.bwrap_backend import Cgroups, reap_cgroups
    from grader.sandbox.session import Limits

    group = Cgroups.create(settings.GRADER_BWRAP_CGROUP, f"run-orphan-{os.getpid()}", Limits())
    assert group is not None, "cgroups are writable on this machine (root, cgroup v1)"
    sleeper = subprocess.Popen(["sleep", "3600"], preexec_fn=lambda: [Path(p).write_text(str(os.getpid()))
                                                                     for p in group.procs_files])
    try:
        wait_until(lambda: sleeper.pid in group.pids(), 10, "the sleeper to join its cgroup")
        assert reap_cgroups(prefix=f"run-orphan-{os.getpid()}") >= 1
        assert sleeper.wait(10) == -signal.SIGKILL
        assert not any(d.exists() for d in group.dirs.values())
    finally:
        sleeper.kill()
        group.kill_all()
        group.remove()
