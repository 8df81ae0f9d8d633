"""When to write: a run's result is ready (the grader's `run_finished` signal, sent once after the commit
by whichever task finished the run), and a grade is decided (a new GradeDecision, after commit)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from courseware.models import GradingRun
from examination.models import GradeDecision
from grader.tasks import run_finished
from notifications.models import Kind


@receiver(run_finished, dispatch_uid="notifications.result_ready")
def result_ready(sender, run_id: int, **_kwargs) -> None:
    from notifications.tasks import notify

    run = GradingRun.objects.select_related("submission__submitter").filter(pk=run_id).first()
    if run is not None and run.is_finished:
        notify(user=run.submission.submitter, kind=Kind.RESULT_READY, key=f"run:{run.pk}")


@receiver(post_save, sender=GradeDecision, dispatch_uid="notifications.grade_decided")
def grade_decided(sender, instance: GradeDecision, created: bool, **_kwargs) -> None:
    if created:
        from notifications.tasks import notify

        notify(user=instance.student, kind=Kind.GRADE_DECIDED, key=f"decision:{instance.pk}")
