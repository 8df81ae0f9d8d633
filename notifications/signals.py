"""When to write: a run's result is ready (after the grading task stored it: Celery's task_postrun,
so grader/tasks.py stays as it is), and a grade is decided (a new GradeDecision, after commit)."""

from __future__ import annotations

from celery.signals import task_postrun
from django.db.models.signals import post_save
from django.dispatch import receiver

from courseware.models import GradingRun
from examination.models import GradeDecision
from notifications.models import Kind


@task_postrun.connect
def result_ready(sender=None, args=None, **_kwargs) -> None:
    if getattr(sender, "name", "") != "grader.tasks.grade_run" or not args:
        return
    from notifications.tasks import notify

    run = GradingRun.objects.select_related("submission__submitter").filter(pk=args[0]).first()
    if run is not None and run.is_finished:
        notify(user=run.submission.submitter, kind=Kind.RESULT_READY, key=f"run:{run.pk}")


@receiver(post_save, sender=GradeDecision, dispatch_uid="notifications.grade_decided")
def grade_decided(sender, instance: GradeDecision, created: bool, **_kwargs) -> None:
    if created:
        from notifications.tasks import notify

        notify(user=instance.student, kind=Kind.GRADE_DECIDED, key=f"decision:{instance.pk}")
