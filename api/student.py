"""The student's endpoints: their rounds, parts and deadlines, submitting, runs and results.

Each endpoint asks the rule's own home: the round/assignment access helpers of the web views, the
deadline service for standing, the upload service for submitting (through the same form the web page
uses, so the input limits are the same too), `Submission.visible_to` and `review.feedback` (which checks,
pictures and totals; hidden checks' results wait for the deadline where the round says so) for what a user
may read. A student-scope token reaches its user's own work (and their group's); reading
other people's work, or staff-only checks, needs a staff token.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from api.auth import TokenAuth
from api.queue import queue_standing
from api.schemas import MeOut, PartOut, Problem, RunOut, SandboxOut, SubmissionOut, SubmitOut
from courseware import uploads, views
from courseware.forms import SubmissionForm
from courseware.models import CourseRound, GradingRun, RunArtifact, Submission
from examination.deadlines import RoundDeadlines, is_late
from examination.results import RoundResults
from grader.engine import limits_for
from grader.parts import PartError, load_part
from grader.sandbox import seccomp
from languages import stored_language
from review.feedback import FeedbackRules, run_feedback

router = Router(auth=TokenAuth(), tags=["student"])


# ---- access ----------------------------------------------------------------------------------------------

def staff_view(request: HttpRequest, course_round: CourseRound) -> bool:
    """Staff powers over a round's work: a staff token of the round's staff."""
    return request.auth.is_staff_scope and course_round.is_staff(request.user)


def readable_submission(request: HttpRequest, submission_id: int) -> Submission:
    """The web page's rule (`views._submission_for`: 404 unless `visible_to`), and a student token of a
    staff member reaches only their own."""
    submission = views._submission_for(request, submission_id)
    course_round = submission.assignment.round
    if submission.submitter != request.user and course_round.is_staff(request.user) and not staff_view(
            request, course_round):
        raise HttpError(403, _("Reading another person's submission needs a staff token."))
    return submission


def user_rounds(user) -> list[CourseRound]:
    """The rounds the home page lists: the user's enrollments (every round for a superuser)."""
    rounds = CourseRound.objects.select_related("course")
    if not user.is_superuser:
        rounds = rounds.filter(enrollments__user=user)
    return list(rounds.distinct())


# ---- output ----------------------------------------------------------------------------------------------

def run_out(request: HttpRequest, run: GradingRun, *, staff: bool) -> dict:
    """A run as the submission page shows it: checks and pictures only once it is finished, staff-only
    checks, notes and pictures only for staff."""
    standing = queue_standing(run)
    feedback = run_feedback(run, request.user, staff=staff)  # issue 17: the pages' one rule
    checks, artifacts = [], []
    if run.is_finished:
        for c in feedback.checks:
            checks.append({**{f: getattr(c, f) for f in (
                "name", "title", "tier", "visibility", "status", "passed", "value", "threshold", "direction",
                "margin", "unit", "points", "max_points", "feedback", "explain")},
                "staff_note": c.staff_note if staff else None})
        for a in feedback.artifacts:
            artifacts.append({"name": a.name, "caption": a.caption, "audience": a.audience,
                              "url": request.build_absolute_uri(f"/api/v1/runs/{run.pk}/artifacts/{a.name}.png")})
    shown = feedback.points_shown
    return {
        "id": run.pk, "submission_id": run.submission_id, "status": run.status, "phase": run.phase,
        "queue": run.queue, "queue_place": standing.place, "estimated_start": standing.estimated_start,
        "waits_for": standing.waits_for,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "finished": run.is_finished, "points": run.points if shown else None,
        "max_points": run.max_points if shown else None,
        "all_passed": run.all_passed if run.is_finished and feedback.summary_shown else None,
        "hidden_withheld": feedback.withheld, "hidden_shown_from": feedback.withheld_until,
        "error_reason": run.error_reason, "grader_errors": run.grader_errors, "checks": checks,
        "artifacts": artifacts, "student_log": run.student_log if run.is_finished else ""}


def submission_out(request: HttpRequest, submission: Submission) -> dict:
    run = submission.runs.select_related("part_version").order_by("-created_at").first()
    staff = staff_view(request, submission.assignment.round)
    return {
        "id": submission.pk, "assignment_id": submission.assignment_id, "part": submission.assignment.part.slug,
        "submitter": submission.submitter.get_username(), "created_at": submission.created_at,
        "late": is_late(submission.assignment, submission.submitter, submission.created_at),
        "files": submission.files, "size": submission.size,
        "url": request.build_absolute_uri(reverse("submission", args=[submission.pk])),
        "run": run_out(request, run, staff=staff) if run else None}


def parts_out(request: HttpRequest, course_round: CourseRound) -> list[dict]:
    """The round page's rows (`RoundResults` for this user: latest submission, theirs or their group's, and
    the tier reached) with each part's standing from the deadline service."""
    user = request.user
    results = RoundResults(course_round, students=[user])
    deadlines = RoundDeadlines(course_round, [user])
    rules = FeedbackRules(course_round, user, staff=False)  # this user's own parts, as the round page shows them
    out = []
    for assignment, cell in zip(results.assignments, results.row(user).cells, strict=True):
        standing = deadlines.standing(assignment, user)
        version = assignment.part.current_version
        manifest = version.manifest if version else {}
        out.append({
            "assignment_id": assignment.pk, "round_id": course_round.pk, "round": str(course_round),
            "slug": assignment.part.slug, "title": assignment.part.title,
            "tier": version.tier if version else "E", "module": manifest.get("module", ""),
            "allowed_files": list(manifest.get("allowed_files", [])),
            "max_points": version.max_points if version else 0.0,
            "opens_at": assignment.opens_at, "deadline": standing.deadline.at,
            "deadline_extended": standing.deadline.extended, "late_now": standing.late_now,
            "may_submit": standing.may_submit,
            "refusal": ({"kind": str(standing.refusal.kind), "message": standing.refusal.message}
                        if standing.refusal else None),
            "used_today": standing.used_today, "max_per_day": assignment.max_submissions_per_day,
            "status": cell.status, "tier_reached": rules.tier(cell.done_run, cell.tier),
            "latest_submission_id": cell.submission.pk if cell.submission else None,
            "latest_run": run_out(request, cell.run, staff=False) if cell.run else None})
    return out


# ---- endpoints -------------------------------------------------------------------------------------------

@router.get("/me", response=MeOut, summary="Who the token acts for, and their rounds")
def me(request: HttpRequest):
    user, token = request.user, request.auth
    return {"username": user.get_username(), "full_name": user.get_full_name(), "email": user.email,
            "language": stored_language(user), "token_name": token.name, "token_scope": token.scope,
            "token_expires_at": token.expires_at,
            "rounds": [{"id": r.pk, "course_code": r.course.code, "course_name": r.course.name, "code": r.code,
                        "role": r.role_of(user), "examinable_until": r.examinable_until}
                       for r in user_rounds(user)]}


@router.get("/parts", response=list[PartOut], summary="Your parts and deadlines, in course order")
def parts(request: HttpRequest, round_id: int | None = None):
    rounds = user_rounds(request.user)
    if round_id is not None:
        rounds = [views._round_for(request, round_id)]
    return [row for course_round in rounds for row in parts_out(request, course_round)]


@router.get("/assignments/{assignment_id}", response=PartOut, summary="One part, with your standing")
def assignment(request: HttpRequest, assignment_id: int):
    found = views._assignment_for(request, assignment_id)
    return next(row for row in parts_out(request, found.round) if row["assignment_id"] == found.pk)


@router.get("/assignments/{assignment_id}/handout.zip", summary="The part's handout (starter code, public tests)")
def handout(request: HttpRequest, assignment_id: int) -> HttpResponse:
    return views.handout_zip(request, assignment_id)  # the one rule for what a handout holds


@router.get("/assignments/{assignment_id}/sandbox", response=SandboxOut,
            summary="The sandbox the grader runs this part in (for `dd2601 check`)")
def sandbox(request: HttpRequest, assignment_id: int):
    found = views._assignment_for(request, assignment_id)
    try:
        spec = load_part(found.part.slug)
    except PartError as exc:
        raise Http404("This part is not available") from exc
    limits = limits_for(spec)
    return {"image": settings.GRADER_IMAGE, "memory_mb": limits.memory_mb, "cpus": limits.cpus,
            "pids": limits.pids, "tmpfs_mb": limits.tmpfs_mb, "tmpfs_inodes": limits.tmpfs_inodes,
            "nofile": limits.nofile, "fsize_mb": limits.fsize_mb, "run_seconds": spec.resources.run_seconds,
            "seccomp_profile": seccomp.docker_profile()}


@router.post("/assignments/{assignment_id}/submissions",
             response={200: SubmitOut, 201: SubmitOut, 400: Problem, 503: Problem},
             summary="Submit: one .zip (or the .py files) and the declaration of help and sources")
def submit(request: HttpRequest, assignment_id: int, files: File[list[UploadedFile]],
           declaration: Form[str] = "", client_token: Form[str] = ""):
    """The web form's inputs and rules exactly: `SubmissionForm` gathers them, `courseware.uploads.submit`
    decides. Send a fresh random `client_token` per submission and the same one when you retry: a
    repeated request gives back the first submission (200) instead of making another (201)."""
    found = views._assignment_for(request, assignment_id)
    form = SubmissionForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
        field = next(iter(errors))
        label = form.fields[field].label if field in form.fields else ""
        detail = f"{label}: {errors[field][0]}" if label else errors[field][0]
        return Status(400, {"detail": detail, "kind": "invalid_input", "field": field, "errors": errors})
    result = uploads.submit(found, request.user, form.cleaned_data["files"],
                            declaration=form.cleaned_data["declaration"], client_token=client_token)
    if isinstance(result, uploads.Refused):
        status = 503 if result.kind == uploads.Problem.PART_UNAVAILABLE else 400
        return Status(status, {"detail": result.message, "kind": str(result.kind), "field": result.field})
    body = {"duplicate": result.duplicate, "late": result.late,
            "submission": submission_out(request, result.submission)}
    return Status(200 if result.duplicate else 201, body)


@router.get("/submissions", response=list[SubmissionOut], summary="Your submissions, newest first")
def submissions(request: HttpRequest, assignment_id: int | None = None, limit: int = 20):
    mine = Submission.objects.filter(submitter=request.user).select_related("assignment__part", "assignment__round",
                                                                            "submitter")
    if assignment_id is not None:
        mine = mine.filter(assignment_id=assignment_id)
    return [submission_out(request, s) for s in mine.order_by("-created_at")[:max(1, min(limit, 100))]]


@router.get("/submissions/{submission_id}", response=SubmissionOut,
            summary="A submission with its latest run and the results you may see")
def submission(request: HttpRequest, submission_id: int):
    return submission_out(request, readable_submission(request, submission_id))


@router.get("/runs/{run_id}", response=RunOut, summary="One grading run: status, queue place, results")
def run(request: HttpRequest, run_id: int):
    found = get_object_or_404(GradingRun.objects.select_related("part_version"), pk=run_id)
    submission = readable_submission(request, found.submission_id)
    return run_out(request, found, staff=staff_view(request, submission.assignment.round))


@router.get("/runs/{run_id}/artifacts/{name}.png", summary="A picture the checks drew from a run")
def run_artifact(request: HttpRequest, run_id: int, name: str) -> HttpResponse:
    artifact = get_object_or_404(RunArtifact.objects.select_related("run"), run_id=run_id, name=name)
    submission = readable_submission(request, artifact.run.submission_id)
    feedback = run_feedback(artifact.run, request.user, staff=staff_view(request, submission.assignment.round))
    if not feedback.artifacts.filter(pk=artifact.pk).exists():
        raise Http404("No such picture")
    return HttpResponse(bytes(artifact.data), content_type=artifact.content_type)

