"""Thin views: who may do what is decided by the access helpers below and by the models' own rules.

Access, the same everywhere: not logged in, a page redirects to the login and an autosave answers 401;
not in the round (or not that student's business) is a 404, ids reveal nothing; in the round but without
the role (a student on a staff page, a TA deciding a grade) is a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courseware.models import CourseRound, Part
from examination import forms
from examination.models import (
    Accommodation,
    AuditEntry,
    ComponentRecord,
    GradeDecision,
    Group,
    OralAnswer,
    OralSession,
    PartOral,
    ReExamination,
    RoundSettings,
    is_examiner,
    is_student,
)
from examination.policy import load_policy
from examination.results import STATUSES, RoundResults, bars, full_results_csv, ladok_csv, regrade_part

# ---- access -------------------------------------------------------------------------------------------

def _round(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = get_object_or_404(CourseRound.objects.select_related("course"), pk=round_id)
    if not (request.user.is_superuser or course_round.role_of(request.user)):
        raise Http404("No such round")
    return course_round


def _staff_round(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = _round(request, round_id)
    if not course_round.is_staff(request.user):
        raise PermissionDenied("Staff only")
    return course_round


def _examiner_round(request: HttpRequest, round_id: int) -> CourseRound:
    course_round = _round(request, round_id)
    if not is_examiner(course_round, request.user):
        raise PermissionDenied("Only the round's examiner may do this")
    return course_round


def _student(course_round: CourseRound, user_id: int):
    student = get_object_or_404(get_user_model(), pk=user_id)
    if not is_student(course_round, student):
        raise Http404("No such student in this round")
    return student


def _session(request: HttpRequest, session_id: int) -> OralSession:
    session = get_object_or_404(OralSession.objects.select_related("round__course", "student"), pk=session_id)
    _staff_round(request, session.round_id)
    return session


def _csv(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ---- student -------------------------------------------------------------------------------------------

@login_required
def my_results(request: HttpRequest, round_id: int) -> HttpResponse:
    """What a student sees: the decided grade, oral outcomes per part and question (no staff notes),
    components, their group and their own deadlines."""
    course_round = _round(request, round_id)
    if not is_student(course_round, request.user):
        raise PermissionDenied("This page is a student's own results")
    policy = load_policy()
    results = RoundResults(course_round, policy, students=[request.user])
    sessions = list(OralSession.objects.filter(round=course_round, student=request.user)
                    .prefetch_related("part_outcomes__part", "answers__question"))
    for session in sessions:
        session.title = block.title if (block := policy.block(session.block)) else session.block
    row = results.row(request.user)
    return render(request, "examination/my_results.html", {
        "round": course_round, "row": row, "sessions": sessions,
        "components": [(spec, row.components.get(spec.key)) for spec in policy.components],
        "group": Group.of(course_round, request.user), "decision": GradeDecision.current(course_round, request.user)})


# ---- staff: dashboard, student overview, decisions ---------------------------------------------------------

@login_required
def dashboard(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    policy = load_policy()
    results = RoundResults(course_round, policy)
    part, status, group = (request.GET.get(k, "") for k in ("part", "status", "group"))
    plots = [(p, bars(results.score_histogram(p))) for p in results.parts]
    grades = results.grade_counts()
    return render(request, "examination/dashboard.html", {
        "round": course_round, "results": results, "rows": results.filtered(part=part, status=status, group=group),
        "filters": {"part": part, "status": status, "group": group}, "statuses": STATUSES,
        "groups": course_round.groups.all(), "plots": plots,
        "grade_plot": {"decided": bars(grades["decided"]), "proposed": bars(grades["proposed"])},
        "is_examiner": is_examiner(course_round, request.user),
        "missing_ids": sum(1 for r in results.rows.values() if not r.kth_id)})


@login_required
@require_POST
def regrade(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    part = get_object_or_404(Part, slug=request.POST.get("part", ""), assignments__round=course_round)
    runs = regrade_part(course_round, part, by=request.user)
    messages.success(request, f"Queued {len(runs)} new grading run(s) for {part.title}; the old runs are kept.")
    return redirect("exam:dashboard", round_id=course_round.pk)


def _overview_context(request: HttpRequest, course_round: CourseRound, student, **extra) -> dict:
    policy = load_policy()
    row = RoundResults(course_round, policy, students=[student]).row(student)
    current = GradeDecision.current(course_round, student)
    components = []
    for spec in policy.components:
        record = row.components.get(spec.key)
        if record is not None and record.round_id != course_round.pk:
            record = None  # kept from an earlier round: shown, but edited there
        version = record.version if record else 0
        form = forms.ComponentForm(initial={"status": record.status if record else "not_done",
                                            "note": record.note if record else "",
                                            "link": record.link if record else "", "version": version},
                                   auto_id=f"id_{spec.key}_%s")
        components.append({"spec": spec, "record": row.components.get(spec.key), "form": form})
    context = {
        "round": course_round, "student": student, "row": row, "policy": policy, "components": components,
        "decision": current, "history": current.history() if current else [],
        "decision_form": forms.DecisionForm(initial={"grade": row.proposal.grade}),
        "session_form": forms.OpenSessionForm(policy=policy),
        "sessions": OralSession.objects.filter(round=course_round, student=student).select_related("opened_by"),
        "accommodations": Accommodation.objects.filter(round=course_round, student=student),
        "audit": AuditEntry.objects.filter(round=course_round, student=student).select_related("actor")[:100],
        "is_examiner": is_examiner(course_round, request.user),
    }
    context.update(extra)
    return context


@login_required
def student_overview(request: HttpRequest, round_id: int, user_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    student = _student(course_round, user_id)
    return render(request, "examination/student.html", _overview_context(request, course_round, student))


@login_required
@require_POST
def decide(request: HttpRequest, round_id: int, user_id: int) -> HttpResponse:
    course_round = _examiner_round(request, round_id)
    student = _student(course_round, user_id)
    policy = load_policy()
    form = forms.DecisionForm(request.POST)
    if form.is_valid():
        proposal = RoundResults(course_round, policy, students=[student]).row(student).proposal
        try:
            decision = GradeDecision.decide(course_round=course_round, student=student, by=request.user,
                                            grade=form.cleaned_data["grade"], rationale=form.cleaned_data["rationale"],
                                            proposal=proposal, policy_digest=policy.digest)
        except ValidationError as exc:
            form.add_error("rationale", exc)
        else:
            messages.success(request, f"Decided {decision.grade} for {student.get_full_name() or student.username}.")
            return redirect("exam:student", round_id=course_round.pk, user_id=student.pk)
    context = _overview_context(request, course_round, student, decision_form=form)
    return render(request, "examination/student.html", context, status=400)


@login_required
@require_POST
def save_component(request: HttpRequest, round_id: int, user_id: int, key: str) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    student = _student(course_round, user_id)
    if load_policy().component(key) is None:
        raise Http404("No such component")
    form = forms.ComponentForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{key} {field}: {' '.join(errors)}")
        return redirect("exam:student", round_id=course_round.pk, user_id=student.pk)
    record, _ = ComponentRecord.objects.get_or_create(round=course_round, student=student, component=key)
    data = form.cleaned_data
    edit = record.edit(base_version=data["version"], by=request.user, status=data["status"], note=data["note"],
                       link=data["link"])
    if edit.conflict:
        other = edit.obj
        messages.error(request, f"Not saved: {other.updated_by} changed {key} meanwhile (now {other.status}, "
                                f"note “{other.note}”, link {other.link or 'none'}). Check and save again.")
    else:
        messages.success(request, f"Saved {key}.")
    return redirect("exam:student", round_id=course_round.pk, user_id=student.pk)


# ---- oral sessions ---------------------------------------------------------------------------------------

@login_required
@require_POST
def open_session(request: HttpRequest, round_id: int, user_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    student = _student(course_round, user_id)
    policy = load_policy()
    form = forms.OpenSessionForm(request.POST, policy=policy)
    if not form.is_valid():
        messages.error(request, "Choose an oral block.")
        return redirect("exam:student", round_id=course_round.pk, user_id=student.pk)
    session = OralSession.open(course_round=course_round, student=student, block=form.cleaned_data["block"],
                               by=request.user, policy=policy)
    return redirect("exam:session", session_id=session.pk)


@login_required
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    policy = load_policy()
    parts = session.parts(policy)
    row = RoundResults(session.round, policy, students=[session.student]).row(session.student)
    cells = {c.part.pk: c for c in row.cells}
    answers = session.answers.select_related("question", "updated_by")
    part_orals = {po.part_id: po for po in session.part_outcomes.select_related("updated_by")}
    sections = []
    for part in parts:
        cell = cells.get(part.pk)
        checks = cell.done_run.checks.all() if cell and cell.done_run else []
        sections.append({"part": part, "cell": cell, "checks": checks, "part_oral": part_orals.get(part.pk),
                         "answers": [a for a in answers if a.question.part_id == part.pk]})
    return render(request, "examination/session.html", {
        "session": session, "oral_block": policy.block(session.block), "sections": sections, "row": row,
        "adhoc_form": forms.AdhocQuestionForm(parts=parts), "is_examiner": is_examiner(session.round, request.user)})


def _expired(request: HttpRequest) -> HttpResponse:
    """A save from a page whose login has expired: a clear 401 that the page shows beside the text,
    never a redirect to the login page (htmx would follow it and show the login form as the status)."""
    return render(request, "examination/_save_status.html", {"state": "expired", "login_url": reverse("login")},
                  status=401)


def _autosave(request: HttpRequest, obj: OralAnswer | PartOral) -> HttpResponse:
    context = {"obj": obj}
    if request.method == "GET":  # "use theirs": the form as stored now
        return render(request, "examination/_autosave_form.html", context)
    form = forms.AutosaveForm(request.POST)
    if not form.is_valid():
        return render(request, "examination/_save_status.html", {**context, "state": "invalid", "form": form},
                      status=400)
    data = form.cleaned_data
    edit = obj.edit(base_version=data["version"], by=request.user, outcome=data["outcome"], note=data["note"])
    state = "conflict" if edit.conflict else "saved"
    return render(request, "examination/_save_status.html",
                  {**context, "obj": edit.obj, "state": state, "changed": edit.changed},
                  status=409 if edit.conflict else 200)


@require_http_methods(["GET", "POST"])
def save_answer(request: HttpRequest, session_id: int, answer_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return _expired(request)
    session = _session(request, session_id)
    answer = get_object_or_404(OralAnswer.objects.select_related("question", "updated_by"), pk=answer_id,
                               session=session)
    return _autosave(request, answer)


@require_http_methods(["GET", "POST"])
def save_part_oral(request: HttpRequest, session_id: int, part_oral_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return _expired(request)
    session = _session(request, session_id)
    part_oral = get_object_or_404(PartOral.objects.select_related("part", "updated_by"), pk=part_oral_id,
                                  session=session)
    return _autosave(request, part_oral)


@login_required
@require_POST
def add_question(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    form = forms.AdhocQuestionForm(request.POST, parts=session.parts(load_policy()))
    if not form.is_valid():
        if request.htmx:
            return HttpResponse(format_html('<p class="error">{}</p>', form.errors.as_text()), status=400)
        messages.error(request, "The question needs a part and a text.")
        return redirect("exam:session", session_id=session.pk)
    answer = session.add_question(by=request.user, **form.cleaned_data)
    if request.htmx:
        return render(request, "examination/_adhoc_added.html", {
            "answer": answer, "session": session, "adhoc_form": forms.AdhocQuestionForm(parts=session.parts(load_policy()))})
    return redirect(reverse("exam:session", args=[session.pk]) + f"#part-{answer.question.part.slug}")


@require_GET
def csrf_token(request: HttpRequest) -> HttpResponse:
    """A fresh CSRF token for an open oral page after its user logged in again elsewhere (logging in
    rotates the token); the page then saves every form again."""
    response = HttpResponse(f'<input type="hidden" id="csrf-token" name="csrfmiddlewaretoken" value="{get_token(request)}">')
    response["HX-Trigger-After-Swap"] = "exam-resave"
    return response


# ---- groups ---------------------------------------------------------------------------------------------------

@login_required
def groups(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _round(request, round_id)
    staff = course_round.is_staff(request.user)
    return render(request, "examination/groups.html", {
        "round": course_round, "is_staff": staff, "settings": RoundSettings.of(course_round),
        "is_examiner": is_examiner(course_round, request.user),
        "groups": course_round.groups.prefetch_related("memberships__user") if staff else [],
        "mine": Group.of(course_round, request.user), "name_form": forms.GroupNameForm(),
        "join_form": forms.JoinGroupForm(), "member_form": forms.AddMemberForm()})


def _group_action(request: HttpRequest, course_round: CourseRound, action) -> HttpResponse:
    try:
        action()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("exam:groups", round_id=course_round.pk)


@login_required
@require_POST
def group_create(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _round(request, round_id)
    form = forms.GroupNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    return _group_action(request, course_round, lambda: Group.start(course_round, name, by=request.user))


@login_required
@require_POST
def group_join(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _round(request, round_id)
    if not is_student(course_round, request.user):
        raise PermissionDenied("Only students join groups.")
    group = course_round.groups.filter(join_code=request.POST.get("join_code", "").strip()).first()
    if group is None:
        messages.error(request, "No group in this round has that code.")
        return redirect("exam:groups", round_id=course_round.pk)
    return _group_action(request, course_round, lambda: group.add_member(request.user, by=request.user))


@login_required
@require_POST
def group_add_member(request: HttpRequest, round_id: int, group_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    group = get_object_or_404(Group, pk=group_id, round=course_round)
    user = get_user_model().objects.filter(username=request.POST.get("username", "").strip()).first()
    if user is None:
        messages.error(request, "No such user.")
        return redirect("exam:groups", round_id=course_round.pk)
    return _group_action(request, course_round, lambda: group.add_member(user, by=request.user))


@login_required
@require_POST
def group_remove_member(request: HttpRequest, round_id: int, group_id: int, user_id: int) -> HttpResponse:
    course_round = _round(request, round_id)
    group = get_object_or_404(Group, pk=group_id, round=course_round)
    if not (course_round.is_staff(request.user) or group.memberships.filter(user=request.user).exists()):
        raise Http404("No such group")
    member = get_object_or_404(get_user_model(), pk=user_id)
    return _group_action(request, course_round, lambda: group.remove_member(member, by=request.user))


# ---- accommodations, re-examination, round rules ------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def accommodations(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    policy = load_policy()
    form = forms.AccommodationForm(course_round=course_round)
    if request.method == "POST":
        if not is_examiner(course_round, request.user):
            raise PermissionDenied("Only the round's examiner decides accommodations.")
        form = forms.AccommodationForm(request.POST, course_round=course_round)
        if form.is_valid():
            try:
                Accommodation.grant(by=request.user, round=course_round, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Accommodation recorded.")
                return redirect("exam:accommodations", round_id=course_round.pk)
    return render(request, "examination/accommodations.html", {
        "round": course_round, "form": form, "is_examiner": is_examiner(course_round, request.user),
        "accommodations": course_round.accommodations.select_related("student", "part", "decided_by"),
        "reexaminations": course_round.reexaminations.select_related("student", "earlier_round").prefetch_related("kept_parts"),
        "reexam_form": forms.ReExaminationForm(course_round=course_round, policy=policy),
        "settings_form": forms.RoundSettingsForm(instance=RoundSettings.of(course_round)),
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def accommodation_revoke(request: HttpRequest, round_id: int, accommodation_id: int) -> HttpResponse:
    course_round = _examiner_round(request, round_id)
    accommodation = get_object_or_404(Accommodation, pk=accommodation_id, round=course_round)
    accommodation.revoke(by=request.user)
    messages.success(request, "Accommodation revoked (it stays in the record).")
    return redirect("exam:accommodations", round_id=course_round.pk)


@login_required
@require_POST
def reexamination(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _examiner_round(request, round_id)
    form = forms.ReExaminationForm(request.POST, course_round=course_round, policy=load_policy())
    if form.is_valid():
        data = form.cleaned_data
        try:
            ReExamination.decide(by=request.user, student=data["student"], course_round=course_round,
                                 earlier_round=data["earlier_round"], kept_parts=list(data["kept_parts"]),
                                 kept_components=data["kept_components"], other_form=data["other_form"],
                                 rationale=data["rationale"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Re-examination recorded.")
    else:
        messages.error(request, f"Re-examination not recorded: {form.errors.as_text()}")
    return redirect("exam:accommodations", round_id=course_round.pk)


@login_required
@require_POST
def round_settings(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _examiner_round(request, round_id)
    form = forms.RoundSettingsForm(request.POST, instance=RoundSettings.of(course_round))
    if form.is_valid():
        changed = form.save(commit=False).save_by(request.user)
        messages.success(request, "Round rules saved." if changed else "Nothing changed.")
    else:
        messages.error(request, " ".join(f"{form.fields[f].label if f in form.fields else ''}: {' '.join(e)}"
                                         for f, e in form.errors.items()))
    return redirect("exam:accommodations", round_id=course_round.pk)


# ---- exports and the log ------------------------------------------------------------------------------------

@login_required
def export_ladok(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _examiner_round(request, round_id)
    results = RoundResults(course_round)
    return _csv(ladok_csv(results), f"{course_round.course.code}-{course_round.code}-ladok.csv")


@login_required
def export_results(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    policy = load_policy()
    return _csv(full_results_csv(RoundResults(course_round, policy), policy),
                f"{course_round.course.code}-{course_round.code}-results.csv")


@login_required
def audit_log(request: HttpRequest, round_id: int) -> HttpResponse:
    course_round = _staff_round(request, round_id)
    entries = AuditEntry.objects.filter(round=course_round).select_related("actor", "student")[:1000]
    return render(request, "examination/audit.html", {"round": course_round, "entries": entries,
                                                      "is_examiner": is_examiner(course_round, request.user)})
