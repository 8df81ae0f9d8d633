"""Staff endpoints: a round's runs, one run in full, a round's results. They need a staff token
(`StaffTokenAuth`), and each one checks, as the staff pages do, that the token's user is staff of the
round it reads (`CourseRound.is_staff`; not in the round is a 404, in it without the role a 403)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from api.auth import StaffTokenAuth
from api.queue import queue_standing
from api.schemas import StaffRunDetailOut, StaffRunOut, StaffStudentOut
from api.student import run_out
from courseware import views
from courseware.models import CourseRound, GradingRun
from examination.policy import load_policy
from examination.results import RoundResults

router = Router(auth=StaffTokenAuth(), tags=["staff"])


def staff_round(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = views._round_for(request, round_id)
    if not course_round.is_staff(request.user):
        raise PermissionDenied("Staff only")
    return course_round


@router.get("/rounds/{round_id}/runs", response=list[StaffRunOut], summary="A round's grading runs, newest first")
def round_runs(request: HttpRequest, round_id: int, status: str = "", limit: int = 200):
    course_round = staff_round(request, round_id)
    runs = (GradingRun.objects.filter(submission__assignment__round=course_round)
            .select_related("submission__submitter", "submission__assignment__part").order_by("-created_at"))
    if status:
        runs = runs.filter(status=status)
    return [{"id": r.pk, "submission_id": r.submission_id, "student": r.submission.submitter.get_username(),
             "part": r.submission.assignment.part.slug, "status": r.status, "phase": r.phase,
             "queue_place": queue_standing(r).place, "created_at": r.created_at, "finished_at": r.finished_at,
             "points": r.points, "max_points": r.max_points, "grader_errors": r.grader_errors,
             "infrastructure_error": r.infrastructure_error}
            for r in runs[:max(1, min(limit, 500))]]


@router.get("/runs/{run_id}", response=StaffRunDetailOut, summary="One run in full: every check, logs, timings")
def run_detail(request: HttpRequest, run_id: int):
    run = get_object_or_404(GradingRun.objects.select_related(
        "submission__assignment__round__course", "submission__submitter", "submission__assignment__part",
        "part_version"), pk=run_id)
    if not run.submission.assignment.round.is_staff(request.user):
        raise Http404("No such run")  # as the staff run page: ids reveal nothing
    return {**run_out(request, run, staff=True), "student": run.submission.submitter.get_username(),
            "part": run.submission.assignment.part.slug, "backend": run.backend, "image_digest": run.image_digest,
            "worker_host": run.worker_host, "attempt": run.attempt, "timings": run.timings,
            "staff_log": run.staff_log, "examiner_flags": run.examiner_flags}


@router.get("/rounds/{round_id}/results", response=list[StaffStudentOut],
            summary="Every student's parts, proposed and decided grade (the dashboard's rows)")
def round_results(request: HttpRequest, round_id: int):
    course_round = staff_round(request, round_id)
    results = RoundResults(course_round, load_policy())
    out = []
    for row in results.rows.values():
        out.append({
            "username": row.student.get_username(), "kth_id": row.kth_id, "name": row.student.get_full_name(),
            "parts": [{"part": c.part.slug, "status": c.status, "tier": c.tier, "points": c.points,
                       "max_points": c.max_points, "late": c.late,
                       "submission_id": c.submission.pk if c.submission else None} for c in row.cells],
            "proposed_grade": row.proposal.grade if row.proposal else None,
            "decided_grade": row.decision.grade if row.decision else None})
    return out
