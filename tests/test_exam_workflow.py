"""The examination workflow without a browser: question banks, oral sessions saved as typed with
optimistic concurrency, components, append-only decisions and the audit log, extensions and late work,
the two-year rule, groups with individual orals, re-examination, the dashboard, regrading and exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import tomllib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from courseware.models import Assignment, CheckResult, CourseRound, Enrollment, GradingRun, Role, Submission
from courseware.uploads import facts_at_upload
from examination import deadlines
from examination.models import (
    Accommodation,
    AuditEntry,
    ComponentRecord,
    GradeDecision,
    Group,
    OralAnswer,
    OralQuestion,
    OralSession,
    ReExamination,
    RoundSettings,
    StudentProfile,
)
from examination.policy import load_policy
from examination.results import RoundResults

from .conftest import MDN, zip_folder

MDN_CHECKS = [("mixture_log_prob", 1), ("fit_budget", 1), ("weights_simplex", 1), ("density_integrates", 1),
              ("nll", 4), ("beats_regression", 2)]
HX = {"HTTP_HX_REQUEST": "true"}
MDN_BANK = len(tomllib.loads((MDN / "oral.toml").read_text())["questions"])


def graded_submission(assignment, student, *, failing=(), status=GradingRun.Status.DONE, when=None) -> Submission:
    """A submission with a finished grading run and its check results, written directly: no sandbox. It
    records what the upload service records at upload (lateness, group)."""
    when = when or timezone.now()
    submission = Submission.objects.create(assignment=assignment, submitter=student, sha256="0" * 64, size=100,
                                           files=["mdn.py"], declaration="none", created_at=when,
                                           **facts_at_upload(assignment, student, when))
    points = sum(p for name, p in MDN_CHECKS if name not in failing)
    run = GradingRun.objects.create(submission=submission, status=status, points=points, max_points=10,
                                    all_passed=not failing, finished_at=when)
    if status == GradingRun.Status.DONE:
        for i, (name, pts) in enumerate(MDN_CHECKS):
            CheckResult.objects.create(run=run, order=i, name=name, title=name.replace("_", " "), tier="E",
                                       passed=name not in failing, points=0 if name in failing else pts,
                                       max_points=pts, value=-1.0 if name == "nll" else 0.0,
                                       threshold=-0.9 if name == "nll" else 1e-4, direction="max")
    return submission


def refusal_reason(assignment, student, now=None) -> str | None:
    refusal = deadlines.refusal(assignment, student, now)
    return refusal.message if refusal else None


def open_oral(course_round, student, by) -> OralSession:
    return OralSession.open(course_round=course_round, student=student, block="oral-1", by=by, policy=load_policy())


def save(client, obj, **data):
    return client.post(obj.autosave_url, {"version": obj.version, "outcome": "", "note": "", **data}, **HX)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The shared fixtures create five users; the production hasher makes that seconds per test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def banks(course_round):
    call_command("import_oral_questions", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def tina(client, people):
    client.force_login(people["tina"])
    return people["tina"]


@pytest.fixture
def erik(client, people):
    client.force_login(people["erik"])
    return people["erik"]


# ---- the question bank --------------------------------------------------------------------------------

def _write_bank(root, questions: list[tuple[str, str]]) -> None:
    folder = root / "lab1" / "mdn"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MDN.parent / "grading.toml", root / "lab1" / "grading.toml")
    (folder / "oral.toml").write_text("".join(
        f'[[questions]]\nid = "{qid}"\noutcome = 3\ntext = "{text}"\ngood_answer = "because"\n\n'
        for qid, text in questions))


def test_oral_bank_import_is_idempotent_updates_and_retires(course_round, settings, tmp_path, people):
    settings.ASSIGNMENTS_DIR = tmp_path
    _write_bank(tmp_path, [("q1", "First?"), ("q2", "Second?"), ("q3", "Third?")])
    call_command("import_oral_questions", stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_oral_questions", stdout=out)
    assert "0 new, 0 updated, 3 unchanged, 0 retired" in out.getvalue()
    session = open_oral(course_round, people["alice"], people["tina"])
    answer = session.answers.get(question__key="q2")

    _write_bank(tmp_path, [("q1", "First, reworded?"), ("q3", "Third?")])
    out = io.StringIO()
    call_command("import_oral_questions", stdout=out)
    assert "0 new, 2 updated, 0 unchanged, 1 retired" in out.getvalue()  # q1's text, q3's place
    assert OralQuestion.objects.get(key="q1").text == "First, reworded?"
    retired = OralQuestion.objects.get(key="q2")
    assert retired.retired_at is not None and OralAnswer.objects.filter(pk=answer.pk).exists()  # kept, not deleted
    later = open_oral(course_round, people["bob"], people["tina"])
    assert sorted(later.answers.values_list("question__key", flat=True)) == ["q1", "q3"]

    _write_bank(tmp_path, [("q1", "First, reworded?"), ("q2", "Second?"), ("q3", "Third?")])
    call_command("import_oral_questions", stdout=io.StringIO())
    assert OralQuestion.objects.get(key="q2").retired_at is None  # back in the bank
    assert OralQuestion.objects.count() == 3


def test_import_assignments_imports_the_oral_banks_too(db, settings, tmp_path):
    shutil.copytree(MDN, tmp_path / "lab1" / "mdn", ignore=shutil.ignore_patterns("__pycache__"))
    settings.ASSIGNMENTS_DIR = tmp_path
    out = io.StringIO()
    call_command("import_assignments", stdout=out)
    assert f"oral: {MDN_BANK} new" in out.getvalue()
    assert OralQuestion.objects.filter(part__slug="mdn", retired_at__isnull=True).count() == MDN_BANK


# ---- oral sessions ----------------------------------------------------------------------------------------

def test_a_session_shows_the_blocks_parts_submissions_checks_and_questions(client, tina, people, assignment, banks):
    graded_submission(assignment, people["alice"], failing=["nll"])
    response = client.post(reverse("exam:open_session", args=[assignment.round.pk, people["alice"].pk]),
                           {"block": "oral-1"})
    session = OralSession.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("exam:session", args=[session.pk])
    assert session.answers.count() == MDN_BANK and session.part_outcomes.get().part.slug == "mdn"
    page = client.get(response["Location"]).content.decode()
    assert "Oral exam 1: parts 1–3" in page
    assert "nll" in page and "failed" in page  # the check results beside the questions
    assert all(escape(q.text) in page for q in OralQuestion.objects.filter(part__slug="mdn"))
    assert 'hx-trigger="keyup changed delay:700ms, change, exam-resave from:body"' in page
    assert page.count('class="autosave"') == MDN_BANK + 1  # one form per question, and one for the part
    assert 'accesskey="1"' in page and 'accesskey="q"' in page


def test_notes_are_saved_as_typed_and_stale_saves_conflict(client, tina, people, course_round, banks, django_user_model):
    session = open_oral(course_round, people["alice"], tina)
    answer = session.answers.first()
    response = save(client, answer, outcome="partly", note="Mentions the mean")
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert 'hx-swap-oob="true"' in response.content.decode() and 'value="1"' in response.content.decode()
    answer.refresh_from_db()
    assert (answer.version, answer.note, answer.outcome, answer.updated_by) == (1, "Mentions the mean", "partly", tina)

    # The same text again from the old version (a double keyup) is not a conflict: nothing to save.
    assert client.post(answer.autosave_url, {"version": 0, "outcome": "partly", "note": "Mentions the mean"},
                       **HX).status_code == 200

    # Erik had the page open at version 0 and types something else: refused, shown Tina's text.
    erik_client = client.__class__()
    erik_client.force_login(people["erik"])
    response = erik_client.post(answer.autosave_url, {"version": 0, "outcome": "passed", "note": "Good answer"}, **HX)
    assert response.status_code == 409
    body = response.content.decode()
    assert "Not saved" in body and "Mentions the mean" in body and "tina" in body and "Keep mine" in body
    answer.refresh_from_db()
    assert (answer.version, answer.note) == (1, "Mentions the mean")  # nothing overwritten

    # Erik keeps his: the "Keep mine" button posts against the version he has now seen.
    response = erik_client.post(answer.autosave_url, {"version": 1, "outcome": "passed", "note": "Good answer"}, **HX)
    assert response.status_code == 200
    answer.refresh_from_db()
    assert (answer.version, answer.note, answer.outcome, answer.updated_by) == (2, "Good answer", "passed", people["erik"])

    # "Use theirs": the form as stored now.
    fragment = client.get(answer.autosave_url, **HX).content.decode()
    assert "Good answer" in fragment and 'value="2"' in fragment

    # Only outcome changes are audited, with before and after.
    entries = AuditEntry.objects.filter(action="oral.question_outcome").order_by("pk")
    assert [(e.actor, e.before, e.after) for e in entries] == [
        (tina, {"outcome": ""}, {"outcome": "partly"}), (people["erik"], {"outcome": "partly"}, {"outcome": "passed"})]


def test_part_outcomes_conflict_too_and_feed_the_proposal(client, tina, people, assignment, banks):
    graded_submission(assignment, people["alice"])
    session = open_oral(assignment.round, people["alice"], tina)
    part_oral = session.part_outcomes.get()
    assert save(client, part_oral, outcome="failed", note="Could not explain the NLL").status_code == 200
    assert save(client, part_oral, outcome="passed").status_code == 409  # still holds version 0
    row = RoundResults(assignment.round, load_policy(), students=[people["alice"]]).row(people["alice"])
    assert row.cells[0].oral == "failed" and row.proposal.grade == "F"
    assert "oral on mdn failed: the part does not count" in row.proposal.explanation[0]


def test_an_expired_login_gets_a_clear_401_not_a_redirect(client, people, course_round, banks):
    session = open_oral(course_round, people["alice"], people["tina"])
    answer = session.answers.first()
    response = client.post(answer.autosave_url, {"version": 0, "note": "half a thought"}, **HX)
    assert response.status_code == 401
    assert "login has expired" in response.content.decode() and "Your text is still in the box" in response.content.decode()
    assert OralAnswer.objects.get(pk=answer.pk).note == ""
    token = client.get(reverse("exam:csrf_token"))
    assert token.status_code == 200 and token["HX-Trigger-After-Swap"] == "exam-resave"


def test_students_and_outsiders_cannot_read_or_save_orals(client, people, course_round, banks):
    session = open_oral(course_round, people["alice"], people["tina"])
    answer = session.answers.first()
    for name, code in [("alice", 403), ("bob", 403), ("olle", 404)]:
        client.force_login(people[name])
        assert client.get(reverse("exam:session", args=[session.pk])).status_code == code
        assert save(client, answer, note="x").status_code == code
    assert OralAnswer.objects.get(pk=answer.pk).version == 0
    with pytest.raises(PermissionDenied):
        open_oral(course_round, people["alice"], people["bob"])


def test_staff_add_ad_hoc_questions_to_one_session(client, tina, people, course_round, banks):
    session = open_oral(course_round, people["alice"], tina)
    other = open_oral(course_round, people["bob"], tina)
    part = session.part_outcomes.get().part
    response = client.post(reverse("exam:add_question", args=[session.pk]),
                           {"part": part.pk, "text": "Why log-sum-exp here?", "good_answer": "stability"}, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'hx-swap-oob="beforeend:#questions-mdn"' in body and "Why log-sum-exp here?" in body
    question = OralQuestion.objects.get(text="Why log-sum-exp here?")
    assert question.is_adhoc and question.session == session
    assert session.answers.count() == MDN_BANK + 1 and other.answers.count() == MDN_BANK
    call_command("import_oral_questions", stdout=io.StringIO())
    assert OralQuestion.objects.get(pk=question.pk).retired_at is None  # the bank import leaves it alone


# ---- components -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("link, ok", [("https://play.kth.se/video/1", True), ("http://example.org/v", True),
                                      ("javascript:alert(1)", False), ("ftp://example.org/v.mp4", False),
                                      ("file:///etc/passwd", False)])
def test_component_links_are_http_or_https_only(client, tina, people, course_round, link, ok):
    url = reverse("exam:save_component", args=[course_round.pk, people["alice"].pk, "video"])
    client.post(url, {"status": "passed", "note": "clear", "link": link, "version": 0})
    record = ComponentRecord.objects.filter(student=people["alice"], component="video").first()
    assert (record is not None and record.link == link) == ok


def test_components_count_in_the_proposal_and_are_audited(client, tina, people, assignment, banks):
    alice = people["alice"]
    graded_submission(assignment, alice)
    session = open_oral(assignment.round, alice, tina)
    save(client, session.part_outcomes.get(), outcome="passed")

    def proposal():
        return RoundResults(assignment.round, load_policy(), students=[alice]).row(alice).proposal

    assert proposal().grade == "FX" and "Ethics quiz not done" in proposal().explanation[0]
    url = reverse("exam:save_component", args=[assignment.round.pk, alice.pk, "ethics"])
    assert client.post(url, {"status": "passed", "note": "", "link": "", "version": 0}).status_code == 302
    assert proposal().grade == "E"
    entry = AuditEntry.objects.get(action="component.changed")
    assert (entry.before, entry.after, entry.student) == ({"status": "not_done", "link": ""},
                                                         {"status": "passed", "link": ""}, alice)
    assert client.post(url, {"status": "failed", "note": "", "link": "", "version": 0}).status_code == 302
    assert ComponentRecord.objects.get(component="ethics").status == "passed"  # stale version: refused
    assert client.post(reverse("exam:save_component", args=[assignment.round.pk, alice.pk, "bribe"]),
                       {"status": "passed", "version": 0}).status_code == 404


# ---- decisions: examiner only, append-only, audited ---------------------------------------------------------

def _decide(client, course_round, student, grade, rationale=""):
    return client.post(reverse("exam:decide", args=[course_round.pk, student.pk]),
                       {"grade": grade, "rationale": rationale})


def test_only_the_examiner_decides_and_differing_grades_need_a_rationale(client, people, assignment, banks):
    alice = people["alice"]
    client.force_login(people["tina"])
    assert _decide(client, assignment.round, alice, "F").status_code == 403
    client.force_login(people["erik"])
    response = _decide(client, assignment.round, alice, "A")  # the proposal is F (nothing submitted)
    assert response.status_code == 400 and "give a rationale" in response.content.decode()
    assert not GradeDecision.objects.exists()
    assert _decide(client, assignment.round, alice, "F").status_code == 302
    first = GradeDecision.objects.get()
    assert (first.grade, first.proposed_grade, first.rationale) == ("F", "F", "")
    assert _decide(client, assignment.round, alice, "E", "Completed the oral on 2026-01-20").status_code == 302
    current = GradeDecision.current(assignment.round, alice)
    assert current.supersedes == first and current.history() == [current, first]
    assert GradeDecision.objects.count() == 2
    entries = list(AuditEntry.objects.filter(action="grade.decided").order_by("pk"))
    assert entries[0].before is None and entries[0].after["grade"] == "F"
    assert entries[1].before == {"grade": "F", "decision": first.pk}
    assert entries[1].after == {"grade": "E", "proposed": "F", "rationale": "Completed the oral on 2026-01-20"}
    assert entries[1].actor == people["erik"]


def test_decisions_and_the_audit_log_are_append_only(client, people, course_round, django_user_model):
    from examination.policy import Proposal

    decision = GradeDecision.decide(course_round=course_round, student=people["alice"], grade="E", rationale="",
                                    by=people["erik"], proposal=Proposal("E", ("E: ...",)))
    entry = AuditEntry.objects.get()
    for obj in (decision, entry):
        with pytest.raises(PermissionDenied):
            obj.save()
        with pytest.raises(PermissionDenied):
            obj.delete()
        with pytest.raises(PermissionDenied):
            type(obj).objects.all().update(at=timezone.now()) if obj is entry else type(obj).objects.update(grade="A")
        with pytest.raises(PermissionDenied):
            type(obj).objects.all().delete()
    assert GradeDecision.objects.get().grade == "E"
    # A fork in the chain is impossible: a second decision must supersede the current one.
    from django.db import IntegrityError, transaction
    with pytest.raises(IntegrityError), transaction.atomic():
        GradeDecision.objects.create(round=course_round, student=people["alice"], grade="A", proposed_grade="E",
                                     decided_by=people["erik"])
    # The admin offers no way to add, change or delete them, even to a superuser.
    admin = django_user_model.objects.create_superuser("root", password="root-pw-2601")
    client.force_login(admin)
    change = reverse("admin:examination_gradedecision_change", args=[decision.pk])
    assert client.get(change).status_code == 200  # view only
    assert client.post(change, {"grade": "A"}).status_code == 403
    assert client.post(reverse("admin:examination_gradedecision_delete", args=[decision.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:examination_gradedecision_add")).status_code == 403
    assert client.post(reverse("admin:examination_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert GradeDecision.objects.get().grade == "E" and AuditEntry.objects.count() == 1
    # A superuser who is not the round's examiner does not decide either.
    with pytest.raises(PermissionDenied):
        GradeDecision.decide(course_round=course_round, student=people["alice"], grade="A", rationale="x", by=admin,
                             proposal=Proposal("E", ()))


def test_the_student_sees_grade_and_oral_outcomes_but_no_staff_notes(client, people, assignment, banks):
    alice = people["alice"]
    graded_submission(assignment, alice)
    session = open_oral(assignment.round, alice, people["tina"])
    answer = session.answers.order_by("question__order").last()
    answer.edit(base_version=0, by=people["tina"], outcome="partly", note="STAFF-ONLY hesitated on clamping")
    session.part_outcomes.get().edit(base_version=0, by=people["tina"], outcome="passed", note="STAFF-ONLY overall fine")
    ComponentRecord.objects.create(round=assignment.round, student=alice, component="ethics", status="passed",
                                   note="STAFF-ONLY quiz 9/10")
    client.force_login(people["erik"])
    assert _decide(client, assignment.round, alice, "E").status_code == 302
    client.force_login(alice)
    page = client.get(reverse("exam:my_results", args=[assignment.round.pk])).content.decode()
    assert "Grade: <span class=\"grade\">E</span>" in page
    assert escape(answer.question.text) in page and "partly" in page and "passed" in page
    assert "STAFF-ONLY" not in page and answer.question.good_answer[:30] not in page
    client.force_login(people["bob"])
    bob_page = client.get(reverse("exam:my_results", args=[assignment.round.pk])).content.decode()
    assert "not decided yet" in bob_page and escape(answer.question.text) not in bob_page


# ---- deadlines, late work, the two-year rule -------------------------------------------------------------------

def test_extensions_move_the_deadline_and_the_late_flag(client, people, assignment):
    alice, bob = people["alice"], people["bob"]
    after_deadline = assignment.deadline + dt.timedelta(hours=3)
    with pytest.raises(PermissionDenied):
        Accommodation.grant(by=people["tina"], round=assignment.round, student=alice, kind="extension",
                            extended_deadline=assignment.deadline + dt.timedelta(days=2), coordinator_reference="R1")
    with pytest.raises(ValidationError):
        Accommodation.grant(by=people["erik"], round=assignment.round, student=alice, kind="extension",
                            extended_deadline=assignment.deadline + dt.timedelta(days=2), coordinator_reference="")
    client.force_login(people["erik"])
    response = client.post(reverse("exam:accommodations", args=[assignment.round.pk]), {
        "student": alice.pk, "kind": "extension", "part": assignment.part.pk,
        "extended_deadline": timezone.localtime(assignment.deadline + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        "description": "", "coordinator_reference": "Funka 2026/117"})
    assert response.status_code == 302
    extension = Accommodation.objects.get()
    assert deadlines.deadline_for(assignment, alice).at == extension.extended_deadline
    assert deadlines.deadline_for(assignment, bob).at == assignment.deadline
    late_alice = graded_submission(assignment, alice, when=after_deadline)
    late_bob = graded_submission(assignment, bob, when=after_deadline)
    assert (late_alice.late, late_bob.late) == (False, True)
    assert AuditEntry.objects.get(action="accommodation.granted").after["coordinator_reference"] == "Funka 2026/117"

    # Refuse-late rounds refuse after the student's own deadline.
    assert refusal_reason(assignment, bob, after_deadline) is None  # the default: accept and flag
    RoundSettings.objects.create(round=assignment.round, late_policy=RoundSettings.LatePolicy.REFUSE)
    assert "does not accept late work" in refusal_reason(assignment, bob, after_deadline)
    assert refusal_reason(assignment, alice, after_deadline) is None
    assert "does not accept late work" in refusal_reason(assignment, alice, extension.extended_deadline + dt.timedelta(minutes=1))

    # Revoked, not deleted: the deadline is the round's again, and the record stays.
    assert client.post(reverse("exam:accommodation_revoke", args=[assignment.round.pk, extension.pk])).status_code == 302
    assert "does not accept late work" in refusal_reason(assignment, alice, after_deadline)
    assert Accommodation.objects.get().revoked_at is not None
    assert AuditEntry.objects.filter(action="accommodation.revoked").exists()


def test_adapted_examination_needs_what_and_a_recommendation(people, course_round):
    with pytest.raises(ValidationError):
        Accommodation.grant(by=people["erik"], round=course_round, student=people["alice"], kind="adapted",
                            description="", coordinator_reference="Funka 1")
    adapted = Accommodation.grant(by=people["erik"], round=course_round, student=people["alice"], kind="adapted",
                                  description="Oral exam in writing, 50% more time", coordinator_reference="Funka 1")
    assert adapted.decided_by == people["erik"]


def test_a_refuse_late_round_refuses_the_upload(client, people, assignment, settings, tmp_path,
                                                django_capture_on_commit_callbacks):
    settings.ARCHIVE_ROOT = tmp_path
    RoundSettings.objects.create(round=assignment.round, late_policy=RoundSettings.LatePolicy.REFUSE)
    Assignment.objects.filter(pk=assignment.pk).update(deadline=timezone.now() - dt.timedelta(hours=1))
    client.force_login(people["alice"])
    upload = io.BytesIO(zip_folder(MDN / "solution"))
    upload.name = "solution.zip"
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("submit", args=[assignment.pk]),
                               {"files": [upload], "declaration": "none", "client_token": "late-1"})
    assert response.status_code == 400 and "does not accept late work" in response.content.decode()
    assert not Submission.objects.exists()


def test_work_is_refused_after_the_two_year_examinable_until(people, assignment):
    course_round = assignment.round
    CourseRound.objects.filter(pk=course_round.pk).update(examinable_until=timezone.localdate() + dt.timedelta(days=1))
    assignment.refresh_from_db()
    last_day = timezone.make_aware(dt.datetime.combine(assignment.round.examinable_until, dt.time(23, 0)))
    assert refusal_reason(assignment, people["alice"], last_day) is None
    refusal = refusal_reason(assignment, people["alice"], last_day + dt.timedelta(hours=2))
    assert refusal and "no longer accepts work" in refusal
    # No extension reaches past it: the syllabus rule comes first.
    Accommodation.grant(by=people["erik"], round=assignment.round, student=people["alice"], kind="extension",
                        extended_deadline=last_day + dt.timedelta(days=30), coordinator_reference="R")
    assert "no longer accepts work" in refusal_reason(assignment, people["alice"], last_day + dt.timedelta(days=3))


# ---- groups: shared submissions, individual orals and grades -----------------------------------------------

def test_groups_share_submissions_but_each_member_has_their_own_oral_and_grade(
        client, people, assignment, banks, django_user_model):
    alice, bob = people["alice"], people["bob"]
    course_round = assignment.round
    client.force_login(alice)
    assert client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Team Bishop"}).status_code == 302
    group = Group.objects.get()
    assert group.members == [alice]
    client.force_login(bob)
    assert client.post(reverse("exam:group_join", args=[course_round.pk]), {"join_code": group.join_code}).status_code == 302
    assert group.members == [alice, bob]
    carol = django_user_model.objects.create_user("carol", password="carol-pw-2601")
    Enrollment.objects.create(user=carol, round=course_round, role=Role.STUDENT)
    client.force_login(carol)
    client.post(reverse("exam:group_join", args=[course_round.pk]), {"join_code": group.join_code})
    assert group.members == [alice, bob]  # the round's limit is 2
    with pytest.raises(ValidationError, match="full"):
        group.add_member(carol, by=people["tina"])

    submission = graded_submission(assignment, alice)
    assert submission.group == group
    assert submission.visible_to(bob) and not submission.visible_to(carol)
    client.force_login(bob)
    assert client.get(reverse("submission", args=[submission.pk])).status_code == 200
    client.force_login(carol)
    assert client.get(reverse("submission", args=[submission.pk])).status_code == 404

    # Each member is examined on their own; Bob cannot explain the solution, Alice can.
    for student, outcome in [(alice, "passed"), (bob, "failed")]:
        session = open_oral(course_round, student, people["tina"])
        session.part_outcomes.get().edit(base_version=0, by=people["tina"], outcome=outcome)
        ComponentRecord.objects.create(round=course_round, student=student, component="ethics", status="passed")
    results = RoundResults(course_round, load_policy())
    assert results.row(bob).cells[0].submission == submission  # the group's submission is Bob's too
    assert (results.row(alice).proposal.grade, results.row(bob).proposal.grade) == ("E", "F")
    assert OralSession.objects.filter(student__in=[alice, bob]).count() == 2

    # Leaving: Bob no longer sees the group's work; staff see the membership history in the log.
    client.force_login(bob)
    client.post(reverse("exam:group_remove_member", args=[course_round.pk, group.pk, bob.pk]))
    assert not Submission.objects.get(pk=submission.pk).visible_to(bob)
    assert list(AuditEntry.objects.filter(action__startswith="group.").values_list("action", flat=True).order_by("pk")) == [
        "group.created", "group.member_added", "group.member_added", "group.member_removed"]


def test_staff_form_groups_where_students_may_not(client, people, course_round):
    RoundSettings.objects.create(round=course_round, students_form_groups=False, max_group_size=3)
    client.force_login(people["alice"])
    assert client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Mine"}).status_code == 403
    client.force_login(people["tina"])
    client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "G1"})
    group = Group.objects.get()
    for name in ("alice", "bob"):
        client.post(reverse("exam:group_add_member", args=[course_round.pk, group.pk]), {"username": name})
    client.post(reverse("exam:group_add_member", args=[course_round.pk, group.pk]), {"username": "tina"})
    assert group.members == [people["alice"], people["bob"]]  # staff are not group members


# ---- re-examination -----------------------------------------------------------------------------------------

def test_a_reexamined_student_keeps_earlier_results_the_examiner_allows(client, people, assignment, banks):
    alice = people["alice"]
    now_round = assignment.round
    earlier = CourseRound.objects.create(course=now_round.course, code="HT25", starts_on=now_round.starts_on - dt.timedelta(days=365),
                                         ends_on=now_round.ends_on - dt.timedelta(days=365),
                                         examinable_until=now_round.examinable_until)
    old_assignment = Assignment.objects.create(round=earlier, part=assignment.part, deadline=timezone.now() - dt.timedelta(days=300))
    Enrollment.objects.create(user=alice, round=earlier, role=Role.STUDENT)
    Enrollment.objects.create(user=people["erik"], round=earlier, role=Role.EXAMINER)
    graded_submission(old_assignment, alice)
    old_session = open_oral(earlier, alice, people["erik"])
    old_session.part_outcomes.get().edit(base_version=0, by=people["erik"], outcome="passed")
    ComponentRecord.objects.create(round=earlier, student=alice, component="ethics", status="passed")

    policy = load_policy()
    assert RoundResults(now_round, policy, students=[alice]).row(alice).proposal.grade == "F"
    with pytest.raises(PermissionDenied):
        ReExamination.decide(by=people["tina"], student=alice, course_round=now_round, earlier_round=earlier)
    client.force_login(people["erik"])
    response = client.post(reverse("exam:reexamination", args=[now_round.pk]), {
        "student": alice.pk, "earlier_round": earlier.pk, "kept_parts": [assignment.part.pk],
        "kept_components": ["ethics"], "other_form": "", "rationale": "Passed MDN in HT25"})
    assert response.status_code == 302
    row = RoundResults(now_round, policy, students=[alice]).row(alice)
    assert row.cells[0].kept_from == earlier and row.cells[0].tier == "E" and row.cells[0].oral == "passed"
    assert row.proposal.grade == "E"
    assert AuditEntry.objects.get(action="reexamination.decided").after["kept_parts"] == ["mdn"]
    # Submitting the part anew replaces the kept result.
    graded_submission(assignment, alice, failing=["nll"])
    row = RoundResults(now_round, policy, students=[alice]).row(alice)
    assert row.cells[0].kept_from is None and row.cells[0].tier is None


# ---- dashboard, regrading, exports --------------------------------------------------------------------------

def test_dashboard_lists_students_by_part_and_status_with_plots(client, tina, people, assignment, banks):
    graded_submission(assignment, people["alice"])
    url = reverse("exam:dashboard", args=[assignment.round.pk])
    page = client.get(url).content.decode()
    assert "alice" in page and "bob" in page and "<svg" in page and "Proposed grades" in page
    assert "passed E" in page and "not submitted" in page
    only = client.get(url, {"part": "mdn", "status": "not_submitted"}).content.decode()
    assert "bob" in only and ">alice<" not in only and "1 of 2 students" in only
    grading = graded_submission(assignment, people["bob"], status=GradingRun.Status.QUEUED)
    assert "1 of 2 students" in client.get(url, {"status": "grading"}).content.decode()
    assert grading.latest_run.status == "queued"
    group_filter = client.get(url, {"group": "none"}).content.decode()
    assert "2 of 2 students" in group_filter


def test_bulk_regrade_makes_new_runs_for_every_latest_submission(client, tina, people, assignment,
                                                                  django_capture_on_commit_callbacks):
    old = graded_submission(assignment, people["alice"], when=timezone.now() - dt.timedelta(hours=2))
    latest = graded_submission(assignment, people["alice"])
    bobs = graded_submission(assignment, people["bob"], failing=["nll"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("exam:regrade", args=[assignment.round.pk]), {"part": "mdn"})
    assert response.status_code == 302
    assert len(callbacks) == 2
    assert old.runs.count() == 1 and latest.runs.count() == 2 and bobs.runs.count() == 2  # old runs kept
    assert latest.latest_run.status == GradingRun.Status.QUEUED
    assert AuditEntry.objects.get(action="part.regraded").actor == tina


def test_ladok_export_uses_kth_ids_never_emails(client, people, assignment, banks):
    alice, bob = people["alice"], people["bob"]
    alice.first_name, alice.last_name, alice.email = "Alice", "Andersson", "alice@kth.se"
    alice.save()
    bob.email = "bob@kth.se"
    bob.save()
    StudentProfile.objects.create(user=alice, kth_id="u1alice0")
    client.force_login(people["erik"])
    _decide(client, assignment.round, alice, "F")
    _decide(client, assignment.round, bob, "F")
    response = client.get(reverse("exam:export_ladok", args=[assignment.round.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_name = {r["name"]: r for r in rows}
    assert by_name["bob"]["kth_id"] == ""
    assert by_name["Alice Andersson"] == {"kth_id": "u1alice0", "course_code": "DD2601", "module_code": "LAB1",
                                          "grade": "F", "examination_date": "", "examiner": "erik",
                                          "name": "Alice Andersson"}  # nothing graded: no examination date
    assert "@" not in text
    client.force_login(people["tina"])
    assert client.get(reverse("exam:export_ladok", args=[assignment.round.pk])).status_code == 403
    full = client.get(reverse("exam:export_results", args=[assignment.round.pk]))
    assert full.status_code == 200
    rows = list(csv.DictReader(io.StringIO(full.content.decode())))
    assert set(rows[0]) >= {"mdn_points", "mdn_tier", "mdn_oral", "component_video", "proposed_grade", "decided_grade"}


def test_csv_cells_cannot_inject_formulas(client, people, assignment, django_user_model):
    alice = people["alice"]
    alice.first_name = "=HYPERLINK(\"http://evil\")"
    alice.save()
    client.force_login(people["erik"])
    _decide(client, assignment.round, alice, "F")
    text = client.get(reverse("exam:export_ladok", args=[assignment.round.pk])).content.decode()
    assert "'=HYPERLINK" in text


def test_staff_pages_render(client, erik, people, assignment, banks):
    graded_submission(assignment, people["alice"])
    course_round = assignment.round
    for url in (reverse("exam:student", args=[course_round.pk, people["alice"].pk]),
                reverse("exam:accommodations", args=[course_round.pk]), reverse("exam:groups", args=[course_round.pk]),
                reverse("exam:audit", args=[course_round.pk])):
        assert client.get(url).status_code == 200, url
    response = client.post(reverse("exam:round_settings", args=[course_round.pk]),
                           {"late_policy": "refuse", "max_group_size": 3, "students_form_groups": "on"})
    assert response.status_code == 302 and RoundSettings.of(course_round).late_policy == "refuse"
    assert AuditEntry.objects.get(action="round.settings").before["late_policy"] == "accept"
