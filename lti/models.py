"""Canvas courses linked to course rounds, and the grades sent back to Canvas.

django-lti keeps the LTI side (registrations, deployments, contexts, platform users and memberships:
`lti_tool.models`); these models say which round a Canvas course (an LTI context) is, what the last
roster sync found, and what was sent to Canvas's gradebook, so that only changed grades are sent and a
failed send is visible to staff until a retry succeeds.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from lti_tool.models import LtiContext

from courseware.models import CourseRound


class RoundLink(models.Model):
    """A Canvas course that is this round. Made by staff in the admin, or by the first launch whose custom
    parameter `dd2601_round` names the round ("DD2601 HT26")."""

    context = models.OneToOneField(LtiContext, on_delete=models.CASCADE, related_name="round_link")
    round = models.ForeignKey(CourseRound, on_delete=models.CASCADE, related_name="lti_links")
    post_part_points = models.BooleanField(default=False, help_text="Also send each part's points to its own "
                                           "gradebook column, not only the decided grade.")
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_report = models.JSONField(default=dict, blank=True, help_text="What the last roster sync did.")

    def __str__(self) -> str:
        return f"{self.context} → {self.round}"


class ScorePost(models.Model):
    """What we want a Canvas gradebook column to hold for a student, and whether Canvas has it. A new
    decision updates `score_given`; only a row whose score differs from what was sent is sent again."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "In Canvas"
        FAILED = "failed", "Failed (retrying)"
        GAVE_UP = "gave_up", "Failed after every retry"

    link = models.ForeignKey(RoundLink, on_delete=models.CASCADE, related_name="score_posts")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tag = models.CharField(max_length=64, help_text='The gradebook column: "grade" or "part:<slug>"')
    label = models.CharField(max_length=200)
    score_given = models.FloatField()
    score_maximum = models.FloatField()
    comment = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    sent_score = models.FloatField(null=True, blank=True, help_text="What Canvas holds, as far as we know.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["link", "student", "tag"]
        constraints = [models.UniqueConstraint(fields=["link", "student", "tag"], name="one_score_per_column")]

    def __str__(self) -> str:
        return f"{self.tag} of {self.student}: {self.score_given}/{self.score_maximum} ({self.status})"
