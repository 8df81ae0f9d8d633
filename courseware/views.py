"""Thin views: permissions and rules live on the models, deadlines in examination.deadlines, uploads in
courseware.uploads. Pages about a run read its part version (`GradingRun.part_version`), never the disk."""

from __future__ import annotations

import io
import secrets
import zipfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from courseware import uploads
from courseware.forms import SubmissionForm
from courseware.models import Assignment, CourseRound, GradingRun, RunArtifact, Submission
from examination.deadlines import is_late, standing
from examination.results import RoundResults
from grader.parts import PartError, load_part
from review.feedback import run_feedback


def _round_for(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = get_object_or_404(CourseRound.objects.select_related("course"), pk=round_id)
    if not (request.user.is_superuser or course_round.role_of(request.user)):
        raise Http404("No such round")
    return course_round


def _assignment_for(request: HttpRequest, assignment_id: int) -> Assignment:
    assignment = get_object_or_404(Assignment.objects.select_related("round__course", "part"), pk=assignment_id)
    _round_for(request, assignment.round_id)
    return assignment


def _submission_for(request: HttpRequest, submission_id: int) -> Submission:
    """Another student's submission is a 404, not a 403: ids reveal nothing."""
    submission = get_object_or_404(
        Submission.objects.select_related("assignment__round__course", "assignment__part", "submitter"),
        pk=submission_id)
    if not submission.visible_to(request.user):
        raise Http404("No such submission")
    return submission


@login_required
def home(request: HttpRequest) -> HttpResponse:
    rounds = CourseRound.objects.select_related("course")
    if not request.user.is_superuser:
        rounds = rounds.filter(enrollments__user=request.user)
    rounds = list(rounds.distinct())
    if len(rounds) == 1:
        return redirect("round", round_id=rounds[0].pk)
    return render(request, "courseware/home.html", {"rounds": rounds})


@login_required
def round_detail(request: HttpRequest, round_id: int) -> HttpResponse:
    """The parts in course order with the user's own deadline, latest submission (theirs or their group's)
    and the tier it reached: the same facts the examiner's dashboard shows."""
    course_round = _round_for(request, round_id)
    results = RoundResults(course_round, students=[request.user])
    rows = zip(results.assignments, results.row(request.user).cells, strict=True)
    return render(request, "courseware/round.html", {
        "round": course_round, "rows": [{"assignment": a, "cell": c} for a, c in rows],
        "is_staff": course_round.is_staff(request.user), "now": timezone.now()})


@login_required
def assignment_detail(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = _assignment_for(request, assignment_id)
    form = SubmissionForm(initial={"client_token": secrets.token_urlsafe(24)})
    return _render_assignment(request, assignment, form)


def _render_assignment(request: HttpRequest, assignment: Assignment, form: SubmissionForm,
                       status: int = 200) -> HttpResponse:
    """The part as its current version describes it, and the user's standing: their own deadline, whether
    they may submit now (and why not), the submissions used in the last 24 hours."""
    return render(request, "courseware/assignment.html", {
        "assignment": assignment,
        "version": assignment.part.current_version,
        "form": form,
        "standing": standing(assignment, request.user),
        "submissions": assignment.submissions.filter(submitter=request.user).prefetch_related("runs")[:50],
    }, status=status)


@login_required
def handout_zip(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """A zip of the part's handout/ folder and nothing else: checks, hidden data and the solution live
    beside it, never under it."""
    assignment = _assignment_for(request, assignment_id)
    try:
        spec = load_part(assignment.part.slug)
    except PartError as exc:
        raise Http404("This part's handout is not available") from exc
    handout = spec.handout_dir.resolve()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(handout.rglob("*")):
            if path.is_symlink() or not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if not path.resolve().is_relative_to(handout):
                continue
            zf.write(path, f"{spec.slug}/{path.relative_to(handout).as_posix()}")
    buffer.seek(0)
    return FileResponse(buffer, as_attachment=True, filename=f"dd2601-lab1-{spec.slug}-handout.zip")


@login_required
@require_POST
def submit(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """The form's inputs go to the upload service; a refusal is shown on the form, with a fresh token when
    the form came without one, so that sending it again works."""
    assignment = _assignment_for(request, assignment_id)
    data = request.POST.copy()
    token = data.get("client_token", "").strip()
    if not token:
        data["client_token"] = secrets.token_urlsafe(24)
    form = SubmissionForm(data, request.FILES)
    if not form.is_valid():
        return _render_assignment(request, assignment, form, status=400)
    result = uploads.submit(assignment, request.user, form.cleaned_data["files"],
                            declaration=form.cleaned_data["declaration"], client_token=token)
    if isinstance(result, uploads.Refused):
        form.add_error(result.field, result.message)
        unavailable = result.kind == uploads.Problem.PART_UNAVAILABLE
        return _render_assignment(request, assignment, form, status=503 if unavailable else 400)
    if result.late and not result.duplicate:
        messages.warning(request, "Submitted after your deadline: it is graded, and flagged as late for the examiner.")
    return redirect("submission", submission_id=result.submission.pk)


@login_required
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = _submission_for(request, submission_id)
    return render(request, "courseware/submission.html", _submission_context(request, submission))


@login_required
def submission_status(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The live part of the submission page, polled by htmx until the run is finished."""
    submission = _submission_for(request, submission_id)
    response = render(request, "courseware/_run_status.html", _submission_context(request, submission))
    if request.htmx and (run := submission.latest_run) and run.is_finished:
        response["HX-Trigger"] = "run-finished"
    return response


def _submission_context(request: HttpRequest, submission: Submission) -> dict:
    """The latest run with the checks, pictures and total the user may see (`review.feedback`, the one
    rule); each check's `explain` comes from the run's part version."""
    run = submission.runs.select_related("part_version").order_by("-created_at").first()
    is_staff = submission.assignment.round.is_staff(request.user)
    feedback = run_feedback(run, request.user) if run else None
    return {"submission": submission, "run": run, "feedback": feedback, "checks": feedback.checks if run else [],
            "is_staff": is_staff, "runs": submission.runs.all(), "artifacts": feedback.artifacts if run else [],
            "late": is_late(submission.assignment, submission.submitter, submission.created_at)}


@login_required
def run_artifact(request: HttpRequest, run_id: int, name: str) -> HttpResponse:
    artifact = get_object_or_404(RunArtifact.objects.select_related("run__submission"), run_id=run_id, name=name)
    _submission_for(request, artifact.run.submission_id)
    if not run_feedback(artifact.run, request.user).artifacts.filter(pk=artifact.pk).exists():
        raise Http404("No such picture")
    response = HttpResponse(bytes(artifact.data), content_type=artifact.content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def archive_download(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = _submission_for(request, submission_id)
    path = submission.archive_path
    if not path.exists():
        raise Http404("Archive missing")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"submission-{submission.pk}.zip")


@login_required
def staff_runs(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _round_for(request, round_id)
    if not course_round.is_staff(request.user):
        raise PermissionDenied
    runs = (GradingRun.objects.filter(submission__assignment__round=course_round)
            .select_related("submission__submitter", "submission__assignment__part")[:500])
    return render(request, "courseware/staff_runs.html", {"round": course_round, "runs": runs})


@login_required
def staff_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(GradingRun.objects.select_related(
        "submission__assignment__round__course", "submission__submitter", "part_version"), pk=run_id)
    if not run.submission.assignment.round.is_staff(request.user):
        raise Http404("No such run")
    return render(request, "courseware/staff_run.html", {"run": run, "checks": run.checks.all()})
