"""The staff page of a round's Canvas links: the roster sync button and its last report, and every grade
sent to Canvas with its state (failures stay visible, with the error, until a retry succeeds)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from courseware.models import CourseRound
from lti.models import RoundLink, ScorePost
from lti.roster import sync_roster
from lti.tasks import post_scores_on_commit


def _staff_round(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = get_object_or_404(CourseRound.objects.select_related("course"), pk=round_id)
    if not (request.user.is_superuser or course_round.role_of(request.user)):
        raise Http404("No such round")
    if not course_round.is_staff(request.user):
        raise PermissionDenied("Staff only")
    return course_round


@login_required
def canvas(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    links = list(course_round.lti_links.select_related("context"))
    posts = ScorePost.objects.filter(link__round=course_round).select_related("student", "link")
    return render(request, "lti/canvas.html", {
        "round": course_round, "links": links, "posts": posts,
        "failing": posts.exclude(status=ScorePost.Status.SENT).count()})


@login_required
@require_POST
def sync(request: HttpRequest, round_id: int, link_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    link = get_object_or_404(RoundLink, pk=link_id, round=course_round)
    report = sync_roster(link, by=request.user)
    (messages.warning if report.error else messages.success)(request, report.summary())
    return redirect("lti:canvas", round_id=round_id)


@login_required
@require_POST
def retry(request: HttpRequest, round_id: int) -> HttpResponse:
    """Send every grade that is not in Canvas again now (after Canvas was down longer than the retries)."""
    course_round = _staff_round(request, round_id)
    waiting = ScorePost.objects.filter(link__round=course_round).exclude(status=ScorePost.Status.SENT)
    pairs = set(waiting.values_list("link_id", "student_id"))
    waiting.update(status=ScorePost.Status.PENDING)
    for link_id, student_id in pairs:
        post_scores_on_commit(link_id, student_id)
    messages.success(request, f"Sending {len(pairs)} students' grades to Canvas again.")
    return redirect("lti:canvas", round_id=round_id)
