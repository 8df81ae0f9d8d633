"""A new grade decision is sent to Canvas after it commits (the decision itself is examination's)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from examination.models import GradeDecision


@receiver(post_save, sender=GradeDecision, dispatch_uid="lti.grade_decided")
def grade_decided(sender, instance: GradeDecision, created: bool, **_kwargs) -> None:
    if created:
        from lti.grades import queue_decision

        transaction.on_commit(lambda: queue_decision(instance))
