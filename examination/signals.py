"""Receivers that keep a new submission's examination facts right whichever view created it.

The upload view (courseware) knows nothing of groups or extensions; rather than teach it, a new
Submission is given its group and its late flag here, from the rules in examination.models.
"""

from __future__ import annotations

from django.db.models.signals import pre_save
from django.dispatch import receiver

from courseware.models import Submission
from examination.models import Accommodation, Group


@receiver(pre_save, sender=Submission)
def submission_group_and_lateness(sender, instance: Submission, **kwargs) -> None:
    if kwargs.get("raw") or not instance._state.adding:  # fixtures load rows as they are
        return
    assignment = instance.assignment
    if instance.group_id is None:
        group = Group.of(assignment.round, instance.submitter)
        if group is not None:
            instance.group = group
    # Late against the student's own deadline: an examiner's extension moves it.
    instance.late = instance.created_at > Accommodation.deadline_for(assignment, instance.submitter)
