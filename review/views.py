"""Thin views for issue 17: the similarity pages (staff), the regrade queue (staff), a student's regrade
request. Access is the examination pages' (`examination.views._staff_round`: not in the round is a 404,
a student on a staff page a 403); the rules are on `review.models.RegradeRequest` and in
`review.similarity`."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from courseware.models import GradingRun, Part, Submission
from courseware.views import _submission_for
from examination.models import is_examiner
from examination.policy import load_policy
from examination.results import in_course_order
from examination.views import _staff_round
from review.forms import RegradeAnswerForm, RegradeRequestForm
from review.models import RegradeRequest
from review.similarity import SHOWN_PAIRS, Cohort

ORDERS = ("code", "outputs")


def _parts(course_round) -> list[Part]:
    return [a.part for a in in_course_order(list(course_round.assignments.select_related("part")), load_policy())]


@login_required
def similarity(request: HttpRequest, round_id: int) -> HttpResponse:
    """Pairs of one part's submissions, most similar first, by code or by identical outputs."""
    course_round = _staff_round(request, round_id)
    parts = _parts(course_round)
    if not parts:
        raise Http404("This round has no parts")
    part = next((p for p in parts if p.slug == request.GET.get("part")), parts[0])
    order = request.GET.get("order") if request.GET.get("order") in ORDERS else "code"
    started = time.monotonic()
    cohort = Cohort(course_round, part)
    pairs = cohort.ranked(order)
    return render(request, "review/similarity.html", {
        "round": course_round, "is_examiner": is_examiner(course_round, request.user), "parts": parts,
        "part": part, "order": order, "cohort": cohort, "pairs": pairs, "compared": len(cohort.pairs),
        "shown_limit": SHOWN_PAIRS, "unreadable": [e for e in cohort.entries if e.problem],
        "seconds": time.monotonic() - started})


@login_required
def similarity_pair(request: HttpRequest, round_id: int, part_slug: str, first: int, second: int) -> HttpResponse:
    """Two submissions of a part side by side: the code each shares with the other, and their outputs."""
    course_round = _staff_round(request, round_id)
    part = get_object_or_404(Part, slug=part_slug, assignments__round=course_round)
    if first == second:
        raise Http404("Compare two different submissions")
    found = {s.pk: s for s in Submission.objects.filter(pk__in=[first, second], assignment__round=course_round,
                                                        assignment__part=part).select_related("submitter")}
    if len(found) != 2:
        raise Http404("No such submissions of this part")
    cohort = Cohort(course_round, part)
    view = cohort.side_by_side(found[first], found[second])
    return render(request, "review/pair.html", {
        "round": course_round, "is_examiner": is_examiner(course_round, request.user), "part": part,
        "cohort": cohort, "view": view, "pair": view.pair})


@login_required
def regrade_queue(request: HttpRequest, round_id: int) -> HttpResponse:
    """Open requests, oldest first, each with its answer form; then the latest answered ones."""
    course_round = _staff_round(request, round_id)
    requests = RegradeRequest.objects.filter(round=course_round).select_related(
        "student", "run__submission__assignment__part", "answered_by", "new_run")
    return render(request, "review/regrades.html", {
        "round": course_round, "is_examiner": is_examiner(course_round, request.user),
        "open": [(r, RegradeAnswerForm(prefix=f"r{r.pk}")) for r in requests.filter(status=RegradeRequest.Status.OPEN)],
        "answered": requests.exclude(status=RegradeRequest.Status.OPEN).order_by("-answered_at")[:50]})


@login_required
@require_POST
def regrade_answer(request: HttpRequest, round_id: int, request_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    regrade_request = get_object_or_404(RegradeRequest, pk=request_id, round=course_round)
    form = RegradeAnswerForm(request.POST, prefix=f"r{regrade_request.pk}")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("review:regrades", round_id=course_round.pk)
    try:
        regrade_request.answer_by(request.user, answer=form.cleaned_data["answer"], regrade=form.cleaned_data["regrade"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        done = (gettext("Answered; a new grading run is queued (the old run is kept).")
                if regrade_request.new_run_id else gettext("Answered."))
        messages.success(request, done)
    return redirect("review:regrades", round_id=course_round.pk)


@login_required
@require_POST
def regrade_ask(request: HttpRequest, run_id: int) -> HttpResponse:
    """A student asks for a review of one run of a submission they may read (another's is a 404)."""
    run = get_object_or_404(GradingRun.objects.select_related("submission"), pk=run_id)
    submission = _submission_for(request, run.submission_id)
    form = RegradeRequestForm(request.POST)
    if form.is_valid():
        try:
            RegradeRequest.ask(run, by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, gettext("Your request is with the course staff; their answer will show here."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(reverse("submission", args=[submission.pk]) + "#review")
