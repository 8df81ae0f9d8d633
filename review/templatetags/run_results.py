"""The feedback rule (`review.feedback`) in templates: every badge, total and tier shown to a user asks it,
so a page cannot show a student more of a run than the rule allows."""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.utils.translation import gettext

from courseware.models import GradingRun
from review.feedback import FeedbackRules, RunFeedback

register = template.Library()


def _rules(request: HttpRequest, run: GradingRun) -> FeedbackRules:
    """One `FeedbackRules` per request and round: a page of badges loads the round's settings and the
    viewer's extensions once, not once per badge (Django's render context does not outlive an include)."""
    memo = request.__dict__.setdefault("_feedback_rules", {})
    course_round = run.submission.assignment.round
    if course_round.pk not in memo:
        memo[course_round.pk] = FeedbackRules(course_round, request.user)
    return memo[course_round.pk]


@register.simple_tag(takes_context=True)
def feedback_for(context, run: GradingRun | None) -> RunFeedback | None:
    """`{% feedback_for run as fb %}`: what the signed-in user may see of the run."""
    if run is None:
        return None
    return _rules(context["request"], run).run(run)


@register.simple_tag(takes_context=True)
def shown_tier(context, cell) -> str:
    """`{% shown_tier cell %}`: the tier a results cell reached as the user may see it ("—" when none yet,
    "after the deadline" while the hidden checks' results are held back)."""
    if cell.done_run is None or cell.tier is None:
        return "—"
    return _rules(context["request"], cell.done_run).tier(cell.done_run, cell.tier) or gettext("after the deadline")
