"""Canvas through LTI 1.3 against the test platform (tests/integrations/lti_platform.py) over HTTP: real
RS256 id_tokens checked against the platform's JWKS, state and nonce, roles, the context linked to a
round, Names and Roles, and grades sent with Assignment and Grade Services."""

from __future__ import annotations

import re

import pytest
import requests

from courseware.models import Enrollment, Role
from examination.models import AuditEntry, GradeDecision, StudentProfile
from examination.policy import Proposal
from lti.models import RoundLink, ScorePost
from tests.integrations.lti_platform import INSTRUCTOR, LEARNER, TEACHING_ASSISTANT, follow_form

pytestmark = pytest.mark.django_db(transaction=True)


def _people(platform):
    platform.add_user("canvas-1", name="Nils Nyberg", email="nils@kth.se", roles=[LEARNER], kth_id="u1nils00")
    platform.add_user("canvas-2", name="Tove Tran", email="tove@kth.se", roles=[INSTRUCTOR, TEACHING_ASSISTANT],
                      kth_id="u1tove00")
    platform.add_user("canvas-3", name="Eva Ek", email="eva@kth.se", roles=[INSTRUCTOR], kth_id="u1eva000")


def test_a_new_student_launches_from_canvas_and_is_in_the_round(canvas, course_round):
    _people(canvas.platform)
    session = requests.Session()
    page = canvas.launch(session, "canvas-1", target="window")
    assert page.status_code == 200 and page.url.endswith(f"/rounds/{course_round.pk}/"), page.text[:500]
    profile = StudentProfile.objects.get(kth_id="u1nils00")
    assert (profile.user.first_name, profile.user.email) == ("Nils", "nils@kth.se")
    assert course_round.role_of(profile.user) == Role.STUDENT
    assert RoundLink.objects.get().round == course_round  # the custom parameter linked the Canvas course
    assert AuditEntry.objects.filter(action="enrollment.added", student=profile.user).exists()
    auth = next(r for r in canvas.platform.received if r["path"] == "/auth")
    assert "nonce=" in auth["query"] and "state=" in auth["query"]

    # A second launch is the same person, not a new one.
    canvas.launch(requests.Session(), "canvas-1", target="window")
    assert StudentProfile.objects.filter(kth_id="u1nils00").count() == 1


def test_roles_map_to_ours(canvas, course_round):
    _people(canvas.platform)
    for sub in ("canvas-2", "canvas-3"):
        canvas.launch(requests.Session(), sub, target="window")
    assert course_round.role_of(StudentProfile.objects.get(kth_id="u1tove00").user) == Role.TA
    assert course_round.role_of(StudentProfile.objects.get(kth_id="u1eva000").user) == Role.EXAMINER


def test_a_framed_launch_offers_a_new_tab_with_a_single_use_ticket(canvas, course_round):
    _people(canvas.platform)
    session = requests.Session()
    page = canvas.launch(session, "canvas-1", target="iframe")
    assert page.status_code == 200 and "Open DD2601 in a new tab" in page.text
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in page.headers
    enter = re.search(r'id="open" href="([^"]+)"', page.text).group(1)
    assert 'target="_blank"' in page.text
    fresh = requests.Session()  # the new tab: the frame's cookies are not there
    first = fresh.get(canvas.site_url + enter, timeout=30)
    assert first.url.endswith(f"/rounds/{course_round.pk}/")
    assert requests.Session().get(canvas.site_url + enter, timeout=30).status_code == 404  # used once


@pytest.mark.parametrize("tamper", ["other_key", "expired", "wrong_audience", "wrong_nonce", "wrong_state"])
def test_a_launch_that_does_not_verify_is_refused(canvas, course_round, tamper):
    import time

    _people(canvas.platform)
    platform = canvas.platform
    if tamper == "other_key":
        platform.sign_with_other_key = True
    elif tamper == "expired":
        platform.id_token_override = {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}
    elif tamper == "wrong_audience":
        platform.id_token_override = {"aud": "someone-else"}
    elif tamper == "wrong_nonce":
        platform.id_token_override = {"nonce": "a-nonce-we-never-issued"}
    session = requests.Session()
    params = {**platform.login_initiation("canvas-1"), "lti1p3_new_window": "1"}
    action, fields = follow_form(session.post(platform.tool_init_url, data=params, timeout=30))
    if tamper == "wrong_state":
        fields["state"] = "state-from-another-browser"
    page = session.post(action, data=fields, timeout=30)
    assert page.status_code == 400 and "This launch from Canvas was refused" in page.text, page.text[:300]
    assert not StudentProfile.objects.filter(kth_id="u1nils00").exists()
    assert not Enrollment.objects.filter(round=course_round).exists()


def test_roster_sync_adds_and_reports_who_left(canvas, course_round, client, django_user_model):
    _people(canvas.platform)
    canvas.launch(requests.Session(), "canvas-3", target="window")  # the examiner launches: the course is linked
    link = RoundLink.objects.get()
    examiner = StudentProfile.objects.get(kth_id="u1eva000").user
    client.force_login(examiner)
    response = client.post(f"/lti/rounds/{course_round.pk}/links/{link.pk}/sync/", follow=True)
    text = response.content.decode()
    assert "added: Nils Nyberg (u1nils00)" in text and "added: Tove Tran (u1tove00)" in text
    assert course_round.role_of(StudentProfile.objects.get(kth_id="u1nils00").user) == Role.STUDENT
    assert any(r["path"] == "/token" for r in canvas.platform.received)  # a service token, then NRPS
    assert any(r["path"].startswith("/nrps/") and r["authorization"].startswith("Bearer ")
               for r in canvas.platform.received)

    # Nils leaves Canvas; a new student arrives. The command says so, and does it again idempotently.
    canvas.platform.users["canvas-1"]["status"] = "Deleted"
    canvas.platform.add_user("canvas-4", name="Sara Sund", email="sara@kth.se", roles=[LEARNER], kth_id="u1sara00")
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("lti_sync_roster", "--round", str(course_round.pk), stdout=out)
    assert "added: Sara Sund (u1sara00)" in out.getvalue() and "left: Nils Nyberg (u1nils00)" in out.getvalue()
    assert course_round.role_of(StudentProfile.objects.get(kth_id="u1nils00").user) is None
    out = StringIO()
    call_command("lti_sync_roster", "--round", str(course_round.pk), stdout=out)
    assert "0 added, 0 changed role, 0 left" in out.getvalue()


def _decide(course_round, student, examiner, grade: str) -> GradeDecision:
    proposal = Proposal(grade=grade, explanation=("test",))
    return GradeDecision.decide(course_round=course_round, student=student, grade=grade, rationale="", by=examiner,
                                proposal=proposal)


def test_a_decided_grade_reaches_canvas_once_and_failures_are_retried_and_shown(canvas, course_round, client):
    _people(canvas.platform)
    for sub in ("canvas-1", "canvas-3"):
        canvas.launch(requests.Session(), sub, target="window")
    student = StudentProfile.objects.get(kth_id="u1nils00").user
    examiner = StudentProfile.objects.get(kth_id="u1eva000").user

    canvas.platform.fail_scores = 2  # Canvas answers 503 twice; the Celery task retries (eager here)
    from django.test.utils import override_settings

    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        from courseware.celery import app

        app.conf.task_always_eager = True
        try:
            _decide(course_round, student, examiner, "C")
            assert [(s["scoreGiven"], s["userId"]) for s in canvas.platform.scores] == [(80.0, "canvas-1")]
            post = ScorePost.objects.get()
            assert post.status == ScorePost.Status.SENT and post.attempts == 3
            token = next(r for r in canvas.platform.received if r["path"] == "/token")
            assert "client_assertion=" in token["body"]  # signed by our key, verified against our JWKS

            # The same grade again (a new decision with the same grade) sends nothing; a changed one does.
            _decide(course_round, student, examiner, "C")
            assert len(canvas.platform.scores) == 1
            canvas.platform.fail_scores = 100  # Canvas is down for good: staff see it
            _decide(course_round, student, examiner, "B")
        finally:
            app.conf.task_always_eager = False
    post.refresh_from_db()
    assert post.status == ScorePost.Status.GAVE_UP and "503" in post.last_error
    client.force_login(examiner)
    page = client.get(f"/lti/rounds/{course_round.pk}/").content.decode()
    assert "1 not in Canvas yet" in page and "503" in page
    assert len(canvas.platform.line_items) == 1 and canvas.platform.line_items[0]["tag"] == "grade"
