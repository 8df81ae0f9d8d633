"""The REST API (django-ninja) and personal access tokens: made on the profile page and shown once,
stored as a digest, revocable, expiring, acting only for their user; the same upload service and the same
refusals as the web form; the same visibility as the web pages; staff endpoints only with staff tokens.

These run the real application in-process (Django's test client: URL routing, middleware, ninja's
parsing and auth, the database); tests/test_cli.py drives the same API over HTTP from a real server."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import zipfile

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from api.models import AccessToken, digest_of
from courseware.models import Assignment, CheckResult, GradingRun, RunArtifact, Submission
from examination.models import Accommodation, RoundSettings

from .conftest import MDN, zip_folder
from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)


@pytest.fixture(autouse=True)
def no_broker(django_capture_on_commit_callbacks):
    """Accepted uploads enqueue their run after the commit: not here, no worker listens."""
    with django_capture_on_commit_callbacks(execute=False):
        yield


@pytest.fixture(autouse=True)
def archive_root(settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return settings.ARCHIVE_ROOT


def token_for(user, scope=AccessToken.Scope.STUDENT, days=30) -> str:
    return AccessToken.issue(user, name="test", days=days, scope=scope)[1]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def api(client, method: str, path: str, token: str, **kwargs):
    return getattr(client, method)(f"/api/v1{path}", **bearer(token), **kwargs)


def same_moment(iso: str, moment: dt.datetime) -> bool:
    """The API writes times in UTC to the millisecond (ISO 8601)."""
    return abs(dt.datetime.fromisoformat(iso) - moment) < dt.timedelta(milliseconds=1)


def upload(name: str, content: bytes) -> io.BytesIO:
    f = io.BytesIO(content)
    f.name = name
    return f


# ---- tokens: the profile page ------------------------------------------------------------------------------

def test_a_token_is_shown_once_stored_as_a_digest_and_works_until_revoked(client, people):
    alice = people["alice"]
    client.force_login(alice)
    made = client.post(reverse("token_create"), {"name": "laptop", "days": 30, "scope": "student"})
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    token = re.search(r"dd2601_[A-Za-z0-9_-]{40,}", made.content.decode()).group(0)
    row = AccessToken.objects.get(user=alice)
    assert row.digest == digest_of(token) and row.prefix == token[:len(row.prefix)]
    # Nowhere in the database: look through every text column of the token table.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_accesstoken")
        assert not any(token in str(value) for value in cursor.fetchone())
    # The profile page never shows it again, only its prefix.
    page = client.get(reverse("profile")).content.decode()
    assert token not in page and row.prefix in page and "laptop" in page

    assert api(client.__class__(), "get", "/me", token).json()["username"] == "alice"
    assert client.post(reverse("token_revoke", args=[row.pk])).status_code == 302
    response = api(client.__class__(), "get", "/me", token)
    assert response.status_code == 401


def test_an_expired_token_a_wrong_token_and_a_disabled_user_are_refused(client, people):
    token = token_for(people["alice"])
    assert api(client, "get", "/me", token).status_code == 200
    AccessToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api(client, "get", "/me", token).status_code == 401
    assert api(client, "get", "/me", token[:-2] + "xx").status_code == 401
    assert client.get("/api/v1/me").status_code == 401  # no token at all
    fresh = token_for(people["bob"])
    people["bob"].is_active = False
    people["bob"].save()
    assert api(client, "get", "/me", fresh).status_code == 401


def test_nobody_revokes_another_users_token_and_students_get_no_staff_token(client, people):
    row, _token = AccessToken.issue(people["alice"], name="a", days=30)
    client.force_login(people["bob"])
    assert client.post(reverse("token_revoke", args=[row.pk])).status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    refused = client.post(reverse("token_create"), {"name": "x", "days": 30, "scope": "staff"})
    assert refused.status_code == 400 and not AccessToken.objects.filter(user=people["bob"]).exists()
    assert 'value="staff"' not in client.get(reverse("profile")).content.decode()  # not even offered
    client.force_login(people["tina"])
    assert client.post(reverse("token_create"), {"name": "x", "days": 30, "scope": "staff"}).status_code == 200
    assert AccessToken.objects.get(user=people["tina"]).scope == "staff"
    assert client.post(reverse("token_create"), {"name": "x", "days": 365, "scope": "staff"}).status_code == 400


# ---- parts and deadlines ----------------------------------------------------------------------------------------

def test_parts_show_the_students_own_deadline_and_standing(client, people, assignment):
    alice = people["alice"]
    until = assignment.deadline + dt.timedelta(days=3)
    Accommodation.grant(by=people["erik"], round=assignment.round, student=alice, part=assignment.part,
                        kind=Accommodation.Kind.EXTENSION, extended_deadline=until, coordinator_reference="Funka 1")
    rows = api(client, "get", "/parts", token_for(alice)).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["slug"] == "mdn" and row["module"] == "mdn.py" and "*.py" in row["allowed_files"]
    assert same_moment(row["deadline"], until) and row["deadline_extended"] is True
    assert row["may_submit"] is True and row["refusal"] is None and row["used_today"] == 0
    assert row["max_per_day"] == 5 and row["status"] == "not_submitted"
    bob_row = api(client, "get", "/parts", token_for(people["bob"])).json()[0]
    assert same_moment(bob_row["deadline"], assignment.deadline) and not bob_row["deadline_extended"]


def test_an_outsider_sees_no_parts_and_no_assignment(client, people, assignment):
    token = token_for(people["olle"])
    assert api(client, "get", "/parts", token).json() == []
    assert api(client, "get", f"/assignments/{assignment.pk}", token).status_code == 404
    assert api(client, "get", f"/assignments/{assignment.pk}/handout.zip", token).status_code == 404


def test_the_handout_and_the_sandbox_of_a_part(client, people, assignment, settings):
    token = token_for(people["alice"])
    response = api(client, "get", f"/assignments/{assignment.pk}/handout.zip", token)
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert "mdn/test_public.py" in names and "mdn/mdn.py" in names and not any("checks" in n for n in names)
    sandbox = api(client, "get", f"/assignments/{assignment.pk}/sandbox", token).json()
    assert sandbox["image"] == settings.GRADER_IMAGE and sandbox["memory_mb"] == 2048 and sandbox["pids"] == 64
    assert json.loads(sandbox["seccomp_profile"])["defaultAction"]


# ---- submitting: the one upload service --------------------------------------------------------------------------

def test_a_submission_through_the_api_and_a_retry_with_the_same_token(client, people, assignment):
    token = token_for(people["alice"])
    data = {"files": [upload("solution.zip", zip_folder(MDN / "solution"))], "declaration": "none",
            "client_token": "cli-1"}
    first = api(client, "post", f"/assignments/{assignment.pk}/submissions", token, data=data)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["duplicate"] is False and body["late"] is False
    assert body["submission"]["run"]["status"] == "queued" and body["submission"]["run"]["queue_place"] == 1
    assert "mdn.py" in body["submission"]["files"]
    data["files"] = [upload("solution.zip", zip_folder(MDN / "solution"))]
    again = api(client, "post", f"/assignments/{assignment.pk}/submissions", token, data=data)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["submission"]["id"] == body["submission"]["id"]
    assert Submission.objects.count() == 1 and GradingRun.objects.count() == 1


def _round_closed(assignment):
    type(assignment.round).objects.filter(pk=assignment.round_id).update(
        examinable_until=timezone.localdate() - dt.timedelta(days=1))


def _not_open(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(opens_at=timezone.now() + dt.timedelta(days=1))


def _deadline_passed_in_a_refusing_round(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(deadline=timezone.now() - dt.timedelta(hours=1))
    RoundSettings.objects.create(round=assignment.round, late_policy=RoundSettings.LatePolicy.REFUSE)


def _daily_limit_used(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=0)


def _nothing(assignment):
    pass


def _zip_slip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mdn.py", "x = 1\n")
        zf.writestr("../escape.py", "x = 2\n")
    return buffer.getvalue()


BAD_INPUTS = {
    # name: (change to the round, files, declaration, client token, the kind the API answers)
    "no declaration": (_nothing, [("mdn.py", b"x = 1\n")], "  ", "t", "invalid_input"),
    "no form token": (_nothing, [("mdn.py", b"x = 1\n")], "none", "", "no_token"),
    "no module": (_nothing, [("notes.py", b"x = 1\n")], "none", "t", "no_module"),
    "a disallowed file": (_nothing, [("mdn.py", b"x = 1\n"), ("model.pt", b"\0" * 10)], "none", "t", "bad_archive"),
    "zip slip": (_nothing, [("evil.zip", _zip_slip())], "none", "t", "bad_archive"),
    "too large": (_nothing, [("mdn.py", b"#" * (5 * 2**20 + 1))], "none", "t", "too_large"),
    "too many files": (_nothing, [(f"f{i}.py", b"x = 1\n") for i in range(31)], "none", "t", "invalid_input"),
    "the two-year rule": (_round_closed, [("mdn.py", b"x = 1\n")], "none", "t", "round_closed"),
    "not open yet": (_not_open, [("mdn.py", b"x = 1\n")], "none", "t", "not_open"),
    "deadline passed": (_deadline_passed_in_a_refusing_round, [("mdn.py", b"x = 1\n")], "none", "t",
                        "deadline_passed"),
    "daily limit": (_daily_limit_used, [("mdn.py", b"x = 1\n")], "none", "t", "daily_limit"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_the_web_form_and_the_api_refuse_the_same_bad_input_in_the_same_words(client, people, assignment, case,
                                                                              archive_root):
    change, files, declaration, form_token, kind = BAD_INPUTS[case]
    change(assignment)
    alice = people["alice"]

    def inputs() -> dict:
        return {"files": [upload(n, c) for n, c in files], "declaration": declaration, "client_token": form_token}

    via_api = api(client, "post", f"/assignments/{assignment.pk}/submissions", token_for(alice), data=inputs())
    client.force_login(alice)
    via_web = client.post(reverse("submit", args=[assignment.pk]), inputs())

    assert via_api.status_code == via_web.status_code == 400
    problem = via_api.json()
    assert problem["kind"] == kind and problem["detail"]
    # The words the web form shows (beside the field, or above the form) are the API's.
    words = problem["errors"][problem["field"]] if kind == "invalid_input" else [problem["detail"]]
    assert all(html.escape(w) in via_web.content.decode() for w in words), (problem, case)
    assert not Submission.objects.exists() and not (archive_root.exists() and any(archive_root.rglob("*.zip")))


def test_an_accommodation_lets_the_api_submit_after_the_common_deadline(client, people, assignment):
    _deadline_passed_in_a_refusing_round(assignment)
    alice = people["alice"]
    Accommodation.grant(by=people["erik"], round=assignment.round, student=alice, part=assignment.part,
                        kind=Accommodation.Kind.EXTENSION, extended_deadline=timezone.now() + dt.timedelta(days=1),
                        coordinator_reference="Funka 1")
    response = api(client, "post", f"/assignments/{assignment.pk}/submissions", token_for(alice),
                   data={"files": [upload("mdn.py", b"x = 1\n")], "declaration": "none", "client_token": "x"})
    assert response.status_code == 201 and response.json()["late"] is False
    bob = api(client, "post", f"/assignments/{assignment.pk}/submissions", token_for(people["bob"]),
              data={"files": [upload("mdn.py", b"x = 1\n")], "declaration": "none", "client_token": "x"})
    assert bob.status_code == 400 and bob.json()["kind"] == "deadline_passed"


# ---- results: the web page's visibility --------------------------------------------------------------------------

def _with_staff_extras(submission: Submission) -> GradingRun:
    run = submission.latest_run
    CheckResult.objects.create(run=run, order=99, name="secret_probe", title="secret probe", tier="E",
                               visibility=CheckResult.Visibility.STAFF, passed=True, points=0, max_points=0,
                               staff_note="memorised the queries")
    RunArtifact.objects.create(run=run, name="samples", caption="your samples", audience="student", data=b"png1")
    RunArtifact.objects.create(run=run, name="hidden-view", caption="staff", audience="staff", data=b"png2")
    run.examiner_flags = ["fit() returned after 0.01 s of its 20 s budget"]
    run.save(update_fields=["examiner_flags"])
    return run


def test_results_follow_the_web_pages_visibility(client, people, assignment):
    alice, bob, tina = people["alice"], people["bob"], people["tina"]
    submission = graded_submission(assignment, alice, failing=("nll",))
    run = _with_staff_extras(submission)

    mine = api(client, "get", f"/submissions/{submission.pk}", token_for(alice)).json()["run"]
    names = [c["name"] for c in mine["checks"]]
    assert "secret_probe" not in names and "nll" in names
    assert all(c["staff_note"] is None for c in mine["checks"])
    assert [a["name"] for a in mine["artifacts"]] == ["samples"]
    assert mine["points"] == run.points and mine["finished"] is True
    assert "returned after" not in str(mine)  # the examiner's flags are staff-only
    client.force_login(alice)
    assert "secret probe" not in client.get(reverse("submission", args=[submission.pk])).content.decode()

    assert api(client, "get", f"/submissions/{submission.pk}", token_for(bob)).status_code == 404
    assert api(client, "get", f"/runs/{run.pk}", token_for(bob)).status_code == 404
    assert api(client, "get", f"/runs/{run.pk}/artifacts/samples.png", token_for(bob)).status_code == 404
    assert api(client, "get", f"/runs/{run.pk}/artifacts/hidden-view.png", token_for(alice)).status_code == 404
    assert api(client, "get", f"/runs/{run.pk}/artifacts/samples.png", token_for(alice)).content == b"png1"

    as_student_token = api(client, "get", f"/submissions/{submission.pk}", token_for(tina))
    assert as_student_token.status_code == 403 and "staff token" in as_student_token.json()["detail"]
    staff = api(client, "get", f"/runs/{run.pk}", token_for(tina, AccessToken.Scope.STAFF)).json()
    assert "secret_probe" in [c["name"] for c in staff["checks"]]
    assert {a["name"] for a in staff["artifacts"]} == {"samples", "hidden-view"}


def test_a_running_run_shows_its_phase_and_no_results_yet(client, people, assignment):
    submission = graded_submission(assignment, people["alice"])
    run = submission.latest_run
    GradingRun.objects.filter(pk=run.pk).update(status=GradingRun.Status.RUNNING, phase="training your model",
                                                points=None, max_points=None)
    body = api(client, "get", f"/runs/{run.pk}", token_for(people["alice"])).json()
    assert body["status"] == "running" and body["phase"] == "training your model"
    assert body["checks"] == [] and body["points"] is None and body["queue_place"] is None


def test_queue_places_count_the_runs_ahead_on_the_same_queue(client, people, assignment):
    made = []
    for i, student in enumerate((people["alice"], people["bob"])):
        submission = graded_submission(assignment, student, status=GradingRun.Status.QUEUED)
        GradingRun.objects.filter(submission=submission).update(created_at=timezone.now() + dt.timedelta(seconds=i))
        made.append(submission)
    places = [api(client, "get", f"/submissions/{s.pk}", token_for(s.submitter)).json()["run"]["queue_place"]
              for s in made]
    assert places == [1, 2]


# ---- staff endpoints ----------------------------------------------------------------------------------------------

def test_staff_endpoints_need_a_staff_token_of_the_rounds_staff(client, people, assignment, django_user_model):
    submission = graded_submission(assignment, people["alice"])
    _with_staff_extras(submission)
    round_id = assignment.round_id
    student_token = token_for(people["tina"])
    refused = api(client, "get", f"/staff/rounds/{round_id}/runs", student_token)
    assert refused.status_code == 403 and "staff token" in refused.json()["detail"]
    assert api(client, "get", f"/staff/rounds/{round_id}/runs", token_for(people["alice"])).status_code == 403

    staff_token = token_for(people["tina"], AccessToken.Scope.STAFF)
    runs = api(client, "get", f"/staff/rounds/{round_id}/runs", staff_token).json()
    assert [(r["student"], r["part"], r["status"]) for r in runs] == [("alice", "mdn", "done")]
    detail = api(client, "get", f"/staff/runs/{runs[0]['id']}", staff_token).json()
    assert detail["student"] == "alice" and "memorised" in [c for c in detail["checks"]
                                                              if c["name"] == "secret_probe"][0]["staff_note"]
    assert detail["examiner_flags"] == ["fit() returned after 0.01 s of its 20 s budget"]
    results = api(client, "get", f"/staff/rounds/{round_id}/results", staff_token).json()
    assert {r["username"] for r in results} == {"alice", "bob"}
    alice_row = next(r for r in results if r["username"] == "alice")
    assert alice_row["parts"][0]["part"] == "mdn" and alice_row["parts"][0]["submission_id"] == submission.pk

    # Staff of another round: their staff token reaches nothing here.
    other = django_user_model.objects.create_user("otto", password="x")
    other.is_superuser = False
    other.save()
    from courseware.models import CourseRound, Enrollment, Role
    elsewhere = CourseRound.objects.create(course=assignment.round.course, code="VT27", starts_on=timezone.localdate(),
                                           ends_on=timezone.localdate(), examinable_until=timezone.localdate())
    Enrollment.objects.create(user=other, round=elsewhere, role=Role.EXAMINER)
    otto = token_for(other, AccessToken.Scope.STAFF)
    assert api(client, "get", f"/staff/rounds/{round_id}/runs", otto).status_code == 404
    assert api(client, "get", f"/staff/runs/{runs[0]['id']}", otto).status_code == 404


# ---- the OpenAPI page ---------------------------------------------------------------------------------------------

def test_the_openapi_document_and_its_page(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "DD2601 LAB1 API"
    for path in ("/api/v1/parts", "/api/v1/assignments/{assignment_id}/submissions", "/api/v1/runs/{run_id}",
                 "/api/v1/staff/rounds/{round_id}/runs"):
        assert path in spec["paths"], path
    assert "BearerAuth" in json.dumps(spec["components"]["securitySchemes"]) or spec["components"]["securitySchemes"]
    page = client.get("/api/v1/docs")
    text = page.content.decode()
    assert page.status_code == 200 and "swagger-ui-bundle.js" in text and "cdn." not in text
    assert "script-src 'self'" in page["Content-Security-Policy"]
