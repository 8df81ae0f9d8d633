"""Celery tasks: grade one run, sweep runs the broker lost, reap sandboxes a dead worker left.

The database row is the source of truth. A task claims its run with an attempt number and writes its
results fenced by that number, so a re-delivered message (Redis visibility timeout, a killed worker,
a sweeper re-enqueue) can start over cleanly but can never produce a second set of results.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import traceback
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from courseware.models import CheckResult, GradingRun, Part, RunArtifact
from grader.engine import GradeReport, grade
from grader.parts import PartError, load_part
from grader.sandbox import InfrastructureError
from grader.workspace import extracted

log = logging.getLogger(__name__)
RETRY_SECONDS = 20
LEASE_SLACK_SECONDS = 300
REENQUEUE_AFTER = dt.timedelta(minutes=10)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(run_id: int) -> bool:
    """Send a run to its queue. If the broker is down the run stays queued in the database and the
    sweeper sends it later: an upload is never lost to a broker outage."""
    run = GradingRun.objects.only("queue").get(pk=run_id)
    try:
        grade_run.apply_async(args=[run_id], queue=run.queue, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure means "later", never a lost upload
        log.warning("could not enqueue run %s (%s); the sweeper will retry", run_id, exc)
        return False
    GradingRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    return True


def enqueue_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: enqueue(run_id))


def _finish(run: GradingRun, attempt: int, **fields) -> bool:
    fields.setdefault("finished_at", timezone.now())
    fields.setdefault("phase", "")
    return bool(run.fenced(attempt).update(**fields))


def _store_report(run: GradingRun, attempt: int, report: GradeReport) -> bool:
    """Results and status in one transaction, only while this attempt still owns the run."""
    with transaction.atomic():
        owned = _finish(
            run, attempt, status=GradingRun.Status.DONE, points=report.points, max_points=report.max_points,
            all_passed=report.all_passed, error_reason=report.error, student_log=report.student_log,
            staff_log=report.staff_log, timings=report.timings, image_digest=report.image_digest,
            backend=report.backend, grader_errors=len(report.grader_errors))
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


@shared_task(bind=True, name="grader.tasks.grade_run", max_retries=None)
def grade_run(self, run_id: int) -> str:
    run = GradingRun.objects.select_related("submission__assignment__part").filter(pk=run_id).first()
    if run is None:
        return "missing"
    try:
        part = load_part(run.submission.assignment.part.slug)
    except PartError as exc:
        GradingRun.objects.filter(pk=run_id, status=GradingRun.Status.QUEUED).update(
            status=GradingRun.Status.ERROR, infrastructure_error=True, finished_at=timezone.now(),
            error_reason="This part cannot be graded right now (a problem on our side; it does not count).",
            staff_log=f"part failed to load: {exc}")
        return "part-error"
    attempt = GradingRun.claim(run_id, worker_host=worker_name(),
                               lease_seconds=part.resources.run_seconds + LEASE_SLACK_SECONDS)
    if attempt is None:
        log.info("run %s is finished or held by another delivery; this one is fenced off", run_id)
        return "fenced"
    if attempt > settings.GRADER_MAX_ATTEMPTS:
        _finish(run, attempt, status=GradingRun.Status.ERROR, infrastructure_error=True,
                error_reason=f"Grading failed {settings.GRADER_MAX_ATTEMPTS} times because of the platform. "
                             "Staff have been notified; this submission does not count against your limit.")
        return "gave-up"
    version, _ = Part.record_version(part)  # what this run is graded with; results pages read it from here
    run.fenced(attempt).update(part_version=version, backend=settings.GRADER_BACKEND)
    for stale in Path(settings.GRADER_WORK_DIR).glob(f"run-{run_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # an earlier attempt's, whose worker was killed (no finally ran)
    label = f"run-{run_id}-{attempt}"
    try:
        with extracted(run.submission.archive_path, name=label) as submission_dir:
            report = grade(part, submission_dir, backend_name=settings.GRADER_BACKEND, label=label,
                           progress=lambda phase: run.fenced(attempt).update(phase=phase[:64]))
    except InfrastructureError as exc:
        log.warning("run %s attempt %s: infrastructure error: %s", run_id, attempt, exc)
        run.fenced(attempt).update(status=GradingRun.Status.QUEUED, phase="waiting to retry (platform problem)",
                                   staff_log=f"attempt {attempt}: {exc}", lease_expires_at=None)
        raise self.retry(countdown=RETRY_SECONDS * attempt, exc=exc) from None
    except Exception:  # noqa: BLE001 - a bug in the grader or a part's checks: staff must see it
        detail = traceback.format_exc()
        log.error("run %s: grader failure\n%s", run_id, detail)
        _finish(run, attempt, status=GradingRun.Status.ERROR, infrastructure_error=True, staff_log=detail[-20000:],
                error_reason="The grader failed on our side. Staff have been notified; this does not count "
                             "against your submission limit.")
        return "grader-error"
    if not _store_report(run, attempt, report):
        log.warning("run %s attempt %s lost its lease before storing results; discarded", run_id, attempt)
        return "lost-lease"
    if report.grader_errors:
        log.error("run %s: %d check section(s) failed in the grader's own code:\n%s", run_id,
                  len(report.grader_errors), "\n".join(e[-3000:] for e in report.grader_errors))
        return "done-with-grader-errors"
    return "done"


@shared_task(name="grader.tasks.sweep")
def sweep() -> dict[str, int]:
    """Send again what the broker may have lost; give up on runs that keep failing."""
    now = timezone.now()
    counts = {"reenqueued": 0, "expired": 0}
    stale_queued = GradingRun.objects.filter(status=GradingRun.Status.QUEUED).filter(
        enqueued_at__isnull=True) | GradingRun.objects.filter(
        status=GradingRun.Status.QUEUED, enqueued_at__lt=now - REENQUEUE_AFTER)
    for run_id in stale_queued.values_list("pk", flat=True)[:500]:
        counts["reenqueued"] += enqueue(run_id)
    for run_id in GradingRun.objects.filter(status=GradingRun.Status.RUNNING,
                                            lease_expires_at__lt=now).values_list("pk", flat=True)[:500]:
        counts["expired"] += 1
        log.warning("run %s outlived its lease (worker lost?); sending it again", run_id)
        enqueue(run_id)  # the claim takes an expired lease and counts the attempt
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


@worker_ready.connect
def reap_at_start(**_kwargs) -> None:
    reap()  # inline, before this worker takes jobs
