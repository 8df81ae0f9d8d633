"""What the e-mails say. Only a link and the run's visible summary (its total points, or the reason it
could not be graded that the student's page shows): never a check's name, value or feedback, so nothing
of the hidden checks leaves the site by e-mail."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from courseware.models import GradingRun
from examination.models import GradeDecision
from notifications.models import Kind, Notification
from review.feedback import run_feedback


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def compose(notification: Notification) -> Message:
    kind, _sep, pk = notification.key.partition(":")
    context = {"user": notification.user, "preferences_url": absolute(reverse("notification_settings"))}
    if notification.kind == Kind.RESULT_READY:
        run = GradingRun.objects.select_related("submission__assignment__part",
                                                "submission__assignment__round__course").get(pk=pk)
        assignment = run.submission.assignment
        context.update(run=run, part=assignment.part.title, round=assignment.round,
                       url=absolute(reverse("submission", args=[run.submission_id])),
                       points_shown=run_feedback(run, notification.user).points_shown)  # issue 17's rule
        subject = _("Result ready: %(part)s") % {"part": assignment.part.title}
        return Message(subject, render_to_string("notifications/result_ready.txt", context))
    decision = GradeDecision.objects.select_related("round__course").get(pk=pk)
    context.update(round=decision.round, url=absolute(reverse("exam:my_results", args=[decision.round_id])))
    subject = _("Your grade in %(round)s is decided") % {"round": decision.round}
    return Message(subject, render_to_string("notifications/grade_decided.txt", context))
