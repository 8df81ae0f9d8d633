"""Celery tasks: grade the next run of the fair queue, sweep what the broker lost, reap orphan sandboxes.

The database row is the source of truth. A task claims its run with an attempt number and writes its
results fenced by that number, so a re-delivered message (Redis visibility timeout, a killed worker,
a sweeper re-enqueue) can start over cleanly but can never produce a second set of results.

A broker message is a token, not a run: `grade_next(queue)` takes the first run of the fair order
(`grader/fairqueue.py`) that it can claim. The claim's lease is short and renewed while the run works, so
a worker host that dies gives its runs back within `GRADER_LEASE_SECONDS`, and the sweeper sends them
again. Each pool process grades in its own slot (`grader/slots.py`): every sandbox of the run gets the
slot's cores, memory share and GPU, and the process's trusted checks run on the slot's cores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from courseware.models import CheckResult, GradingRun, Part, RunArtifact, WorkerHeartbeat
from grader import fairqueue, remote_archives, slots
from grader.engine import GradeReport, grade
from grader.parts import PartError, PartSpec, load_part
from grader.sandbox import Backend, InfrastructureError
from grader.workspace import extracted

log = logging.getLogger(__name__)
# Sent once, after the commit, when a run is finished for good (graded, or given up), by whichever delivery
# of whichever task (grade_next's dispatch, grade_run, a retry) finished it: the one hook for "a result is
# ready" (notifications/ sends the e-mail), with `run_id`.
run_finished = Signal()
RETRY_SECONDS = 20
LEASE_SLACK_SECONDS = 300
REENQUEUE_AFTER = dt.timedelta(minutes=10)


def worker_name(node: str | None = None) -> str:
    return f"{node or socket.gethostname()}:{os.getpid()}"


def enqueue(run_id: int) -> bool:
    """Send a token for the run's queue. If the broker is down the run stays queued in the database and
    the sweeper sends it later: an upload is never lost to a broker outage."""
    run = GradingRun.objects.only("queue").get(pk=run_id)
    try:
        grade_next.apply_async(args=[run.queue], queue=run.queue, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure means "later", never a lost upload
        log.warning("could not enqueue run %s (%s); the sweeper will retry", run_id, exc)
        return False
    GradingRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    return True


def enqueue_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: enqueue(run_id))


def _finish(run: GradingRun, attempt: int, **fields) -> bool:
    """End the run if this attempt still owns it, and announce it after the commit."""
    fields.setdefault("finished_at", timezone.now())
    fields.setdefault("phase", "")
    owned = bool(run.fenced(attempt).update(**fields))
    if owned:
        transaction.on_commit(lambda: run_finished.send(sender=GradingRun, run_id=run.pk))
    return owned


def _store_report(run: GradingRun, attempt: int, report: GradeReport) -> bool:
    """Results and status in one transaction, only while this attempt still owns the run."""
    with transaction.atomic():
        owned = _finish(
            run, attempt, status=GradingRun.Status.DONE, points=report.points, max_points=report.max_points,
            all_passed=report.all_passed, error_reason=report.error, student_log=report.student_log,
            staff_log=report.staff_log, timings=report.timings, image_digest=report.image_digest,
            backend=report.backend, grader_errors=len(report.grader_errors), fingerprints=report.fingerprints,
            examiner_flags=report.flags)
        if not owned:
            return False
        CheckResult.objects.filter(run=run).delete()
        CheckResult.objects.bulk_create([CheckResult.from_outcome(run, c) for c in report.checks])
        RunArtifact.objects.filter(run=run).delete()
        RunArtifact.objects.bulk_create([
            RunArtifact(run=run, name=a.name, caption=a.caption, audience=a.audience, content_type=a.content_type,
                        data=a.data, order=i)
            for i, a in enumerate(report.artifacts)
        ])
    return True


@lru_cache(maxsize=1)
def worker_slots() -> tuple[slots.Slot, ...]:
    return tuple(slots.from_settings())


def slot_backend(slot: slots.Slot) -> Backend | None:
    """The backend for this run's slot; None lets the engine open the configured one (bwrap and the unsafe
    local backend take no slot: they confine by rlimits and cgroups of their own)."""
    if settings.GRADER_BACKEND != "docker":
        return None
    from grader.sandbox.docker_backend import DockerBackend

    return DockerBackend.from_settings(slot=slot)


@contextlib.contextmanager
def renewed_lease(run: GradingRun, attempt: int, *, until: float) -> Iterator[None]:
    """Keep the run's lease a GRADER_LEASE_SECONDS ahead while it works (never past `until`, the run's own
    limit plus slack): a live worker keeps its run, a dead host's lease runs out within one lease."""
    stop = threading.Event()
    seconds = settings.GRADER_LEASE_SECONDS

    def renew() -> None:
        try:
            while not stop.wait(seconds / 3) and time.monotonic() < until:
                try:
                    run.fenced(attempt).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=seconds))
                except Exception as exc:  # noqa: BLE001 - a missed renewal costs at most this run's lease
                    log.warning("run %s: could not renew its lease: %s", run.pk, exc)
        finally:
            connection.close()  # this thread's own connection

    renewer = threading.Thread(target=renew, name=f"lease-{run.pk}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(10)


def _fail_part(run_id: int, exc: PartError) -> str:
    failed = GradingRun.objects.filter(pk=run_id, status=GradingRun.Status.QUEUED).update(
        status=GradingRun.Status.ERROR, infrastructure_error=True, finished_at=timezone.now(),
        error_reason="This part cannot be graded right now (a problem on our side; it does not count).",
        staff_log=f"part failed to load: {exc}")
    if failed:
        transaction.on_commit(lambda: run_finished.send(sender=GradingRun, run_id=run_id))
    return "part-error"


def _grade(task, run_id: int) -> str:
    """Claim the run and grade it in this process's slot; "fenced" when another delivery holds it."""
    run = GradingRun.objects.select_related("submission__assignment__part").filter(pk=run_id).first()
    if run is None:
        return "missing"
    try:
        part = load_part(run.submission.assignment.part.slug)
    except PartError as exc:
        return _fail_part(run_id, exc)
    node = getattr(task.request, "hostname", None)
    attempt = GradingRun.claim(run_id, worker_host=worker_name(node), lease_seconds=settings.GRADER_LEASE_SECONDS)
    if attempt is None:
        log.info("run %s is finished or held by another delivery; this one is fenced off", run_id)
        return "fenced"
    if attempt > settings.GRADER_MAX_ATTEMPTS:
        _finish(run, attempt, status=GradingRun.Status.ERROR, infrastructure_error=True,
                error_reason=f"Grading failed {settings.GRADER_MAX_ATTEMPTS} times because of the platform. "
                             "Staff have been notified; this submission does not count against your limit.")
        return "gave-up"
    until = time.monotonic() + part.resources.run_seconds + LEASE_SLACK_SECONDS
    with renewed_lease(run, attempt, until=until):
        return _grade_claimed(task, run, attempt, part, node)


def this_slot() -> slots.Slot:
    try:
        return slots.slot_of_this_process(worker_slots())
    except slots.SlotConfigError as exc:  # the worker's configuration, not the submission: retried later
        raise InfrastructureError(f"this worker's slots are misconfigured: {exc}") from exc


def _grade_claimed(task, run: GradingRun, attempt: int, part: PartSpec, node: str | None) -> str:
    version, _ = Part.record_version(part)  # what this run is graded with; results pages read it from here
    run.fenced(attempt).update(part_version=version, backend=settings.GRADER_BACKEND, not_before=None)
    for stale in Path(settings.GRADER_WORK_DIR).glob(f"run-{run.pk}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # an earlier attempt's, whose worker was killed (no finally ran)
    label = f"run-{run.pk}-{attempt}"
    submission = run.submission
    try:
        slot = this_slot()
        run.fenced(attempt).update(slot=slot.label(node or socket.gethostname()))
        with slots.pinned(slot), \
                remote_archives.available(submission.archive_path, submission.sha256, run.pk, attempt) as archive, \
                extracted(archive, name=label) as submission_dir:
            report = grade(part, submission_dir, backend_name=settings.GRADER_BACKEND, label=label,
                           backend=slot_backend(slot),
                           progress=lambda phase: run.fenced(attempt).update(phase=phase[:64]))
    except InfrastructureError as exc:
        delay = RETRY_SECONDS * attempt
        log.warning("run %s attempt %s: infrastructure error: %s", run.pk, attempt, exc)
        run.fenced(attempt).update(status=GradingRun.Status.QUEUED, phase="waiting to retry (platform problem)",
                                   staff_log=f"attempt {attempt}: {exc}", lease_expires_at=None, slot="",
                                   not_before=timezone.now() + dt.timedelta(seconds=delay))
        raise task.retry(countdown=delay, exc=exc) from None
    except Exception:  # noqa: BLE001 - a bug in the grader or a part's checks: staff must see it
        detail = traceback.format_exc()
        log.error("run %s: grader failure\n%s", run.pk, detail)
        _finish(run, attempt, status=GradingRun.Status.ERROR, infrastructure_error=True, staff_log=detail[-20000:],
                error_reason="The grader failed on our side. Staff have been notified; this does not count "
                             "against your submission limit.")
        return "grader-error"
    if not _store_report(run, attempt, report):
        log.warning("run %s attempt %s lost its lease before storing results; discarded", run.pk, attempt)
        return "lost-lease"
    if report.grader_errors:
        log.error("run %s: %d check section(s) failed in the grader's own code:\n%s", run.pk,
                  len(report.grader_errors), "\n".join(e[-3000:] for e in report.grader_errors))
        return "done-with-grader-errors"
    return "done"


@shared_task(bind=True, name="grader.tasks.grade_next", max_retries=None)
def grade_next(self, queue: str) -> str:
    """A token for `queue`: grade the first run of the fair order that this delivery can claim."""
    for run_id in fairqueue.candidates(queue):
        outcome = _grade(self, run_id)
        if outcome != "fenced":
            return outcome
    return "idle"


@shared_task(bind=True, name="grader.tasks.grade_run", max_retries=None)
def grade_run(self, run_id: int) -> str:
    """One named run, out of the fair order (staff tools, tests; messages sent before the fair queue)."""
    return _grade(self, run_id)


def _queue_backlog(queue: str) -> int | None:
    """Tokens waiting in the broker for `queue`, or None when the broker cannot say."""
    from courseware.celery import app

    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except Exception:  # noqa: BLE001 - a queue never declared, a broker down: "unknown"
        return None


def _replace_lost_tokens(now: dt.datetime) -> int:
    """Runs waiting longer than REENQUEUE_AFTER while the broker holds fewer tokens than waiting runs
    (less the slots that may each hold one reserved): the broker lost them (a flushed or restored Redis).
    A token too many only costs an idle delivery; a token too few would leave a run waiting."""
    sent = 0
    for queue in set(GradingRun.objects.filter(status=GradingRun.Status.QUEUED).values_list("queue", flat=True)):
        stale = fairqueue.waiting(queue, now).filter(status=GradingRun.Status.QUEUED,
                                                     enqueued_at__lt=now - REENQUEUE_AFTER)
        if not stale.exists():
            continue
        backlog = _queue_backlog(queue)
        waiting = fairqueue.waiting(queue, now).count()
        missing = waiting if backlog is None else waiting - backlog - fairqueue.slots_serving(queue, now)
        for run_id in stale.values_list("pk", flat=True)[:max(0, min(missing, 500))]:
            sent += enqueue(run_id)
    return sent


@shared_task(name="grader.tasks.sweep")
def sweep() -> dict[str, int]:
    """Send again what the broker may have lost; runs whose worker died (lease expired) go back too."""
    now = timezone.now()
    counts = {"reenqueued": 0, "expired": 0, "replaced": 0}
    for run_id in GradingRun.objects.filter(status=GradingRun.Status.QUEUED, enqueued_at__isnull=True
                                            ).values_list("pk", flat=True)[:500]:
        counts["reenqueued"] += enqueue(run_id)
    for run_id in GradingRun.objects.filter(status=GradingRun.Status.RUNNING,
                                            lease_expires_at__lt=now).values_list("pk", flat=True)[:500]:
        counts["expired"] += 1
        log.warning("run %s outlived its lease (worker lost?); sending it again", run_id)
        enqueue(run_id)  # the claim takes an expired lease and counts the attempt
    counts["replaced"] = _replace_lost_tokens(now)
    return counts


def _max_run_seconds() -> float:
    try:
        from grader.parts import all_parts

        return max((p.resources.run_seconds for p in all_parts()), default=600)
    except PartError:
        return 3600


@shared_task(name="grader.tasks.reap")
def reap() -> int:
    if settings.GRADER_BACKEND == "bwrap":
        from grader.sandbox.bwrap_backend import reap_cgroups

        try:
            return reap_cgroups(older_than_seconds=_max_run_seconds() + LEASE_SLACK_SECONDS)
        except OSError as exc:
            log.warning("cgroup reaper failed: %s", exc)
            return 0
    if settings.GRADER_BACKEND != "docker":
        return 0
    from grader.sandbox.docker_backend import reap as reap_containers

    try:
        return reap_containers(older_than_seconds=_max_run_seconds() + LEASE_SLACK_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the reaper must never take the worker down
        log.warning("reaper failed: %s", exc)
        return 0


# ---- the worker's heartbeat: what the dashboard's worker list and the queue's estimates read ---------------

_heartbeat_stop = threading.Event()


def beat_once(node: str, queues: list[str]) -> None:
    WorkerHeartbeat.objects.update_or_create(name=node, defaults={
        "host": socket.gethostname(), "queues": queues, "last_seen": timezone.now(),
        "slots": [s.describe() for s in worker_slots()]})


def _heartbeat_loop(node: str, queues: list[str]) -> None:
    try:
        while True:
            try:
                close_old_connections()
                beat_once(node, queues)
            except Exception as exc:  # noqa: BLE001 - a missed beat shows as silence, never as a crash
                log.warning("worker heartbeat failed: %s", exc)
            if _heartbeat_stop.wait(settings.GRADER_HEARTBEAT_SECONDS):
                return
    finally:
        connection.close()


@worker_ready.connect
def at_worker_start(sender=None, **_kwargs) -> None:
    reap()  # inline, before this worker takes jobs
    node = getattr(sender, "hostname", None) or worker_name()
    queues = sorted(q.name for q in sender.task_consumer.queues) if getattr(sender, "task_consumer", None) else []
    pool_size = getattr(getattr(sender, "pool", None), "limit", None)
    if pool_size and pool_size != len(worker_slots()):
        log.warning("this worker runs %s pool processes for %s slots: start it with --concurrency %s",
                    pool_size, len(worker_slots()), len(worker_slots()))
    for slot in worker_slots():
        log.info("slot %s: cpus %s, %s MB, gpu %s", slot.index, slot.cpuset, slot.memory_mb, slot.gpu or "none")
    _heartbeat_stop.clear()
    threading.Thread(target=_heartbeat_loop, args=(node, queues), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def at_worker_stop(sender=None, **_kwargs) -> None:
    """A clean stop is not silence: the worker's row goes."""
    _heartbeat_stop.set()
    node = getattr(sender, "hostname", None)
    if node:
        with contextlib.suppress(Exception):
            WorkerHeartbeat.objects.filter(name=node).delete()
            connection.close()
