"""The regrade box of the submission page: the requests about the submission's runs, and the form to ask
about the run the page shows."""

from __future__ import annotations

from django import template

from courseware.models import GradingRun, Submission
from examination.models import is_student
from review.forms import RegradeRequestForm
from review.models import RegradeRequest

register = template.Library()


@register.inclusion_tag("review/_regrade_box.html", takes_context=True)
def regrade_box(context, submission: Submission, run: GradingRun | None) -> dict:
    user = context["request"].user
    course_round = submission.assignment.round
    staff = course_round.is_staff(user)
    requests = RegradeRequest.objects.filter(run__submission=submission).select_related("answered_by", "student")
    if not staff:
        requests = requests.filter(student=user)
    open_for_run = run is not None and requests.filter(run=run, status=RegradeRequest.Status.OPEN).exists()
    return {"submission": submission, "run": run, "requests": list(requests), "is_staff": staff,
            "can_ask": (run is not None and run.is_finished and not open_for_run and is_student(course_round, user)),
            "form": RegradeRequestForm(), "csrf_token": context.get("csrf_token")}
