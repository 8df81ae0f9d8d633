"""The permission matrix: every URL of the site (the examination app's and the existing ones) with every
role, and the status code each gets. Each request runs inside a savepoint that is rolled back, so every
cell of the table starts from the same state and the order of the walk does not matter.

Codes: 302 from a page means "log in first" for the anonymous and "done, go back" after an allowed POST;
404 is for someone outside the round (ids reveal nothing); 403 for someone in the round without the role.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from courseware.models import CourseRound, Enrollment, Role, RunArtifact
from examination.models import Accommodation, ComponentRecord, Group, OralSession
from examination.policy import load_policy

from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)

ROLES = ("anonymous", "student", "other_student", "ta", "examiner", "other_examiner", "outsider")
USERS = {"student": "alice", "other_student": "bob", "ta": "tina", "examiner": "erik", "other_examiner": "eva",
         "outsider": "olle"}

#            anon stud other  ta  exam  eva  olle
PAGE_ALL = (302, 200, 200, 200, 200, 404, 404)  # anyone in the round
STAFF_PAGE = (302, 403, 403, 200, 200, 404, 404)
STAFF_ACTION = (302, 403, 403, 302, 302, 404, 404)
EXAMINER_ACTION = (302, 403, 403, 403, 302, 404, 404)
OWN_WORK = (302, 200, 404, 200, 200, 404, 404)  # alice's submission: hers, and staff's

# name, method, args (from the objects), POST data, expected codes per role
MATRIX = [
    ("home", "get", (), {}, (302, 302, 302, 302, 302, 302, 200)),
    ("login", "get", (), {}, (200,) * 7),
    ("logout", "post", (), {}, (302,) * 7),
    ("round", "get", ("round",), {}, PAGE_ALL),
    ("staff_runs", "get", ("round",), {}, STAFF_PAGE),
    ("assignment", "get", ("assignment",), {}, PAGE_ALL),
    ("handout", "get", ("assignment",), {}, PAGE_ALL),
    ("submit", "post", ("assignment",), {}, (302, 400, 400, 400, 400, 404, 404)),
    ("submission", "get", ("submission",), {}, OWN_WORK),
    ("submission_status", "get", ("submission",), {}, OWN_WORK),
    ("archive", "get", ("submission",), {}, OWN_WORK),
    ("run_artifact", "get", ("run", "artifact"), {}, OWN_WORK),
    ("staff_run", "get", ("run",), {}, (302, 404, 404, 200, 200, 404, 404)),
    ("admin:index", "get", (), {}, (302,) * 7),
    ("exam:dashboard", "get", ("round",), {}, STAFF_PAGE),
    ("exam:my_results", "get", ("round",), {}, (302, 200, 200, 403, 403, 404, 404)),
    ("exam:regrade", "post", ("round",), {"part": "mdn"}, STAFF_ACTION),
    ("exam:student", "get", ("round", "alice"), {}, STAFF_PAGE),
    ("exam:decide", "post", ("round", "alice"), {"grade": "F", "rationale": "matrix"}, EXAMINER_ACTION),
    ("exam:save_component", "post", ("round", "alice", "video"),
     {"status": "passed", "link": "https://play.kth.se/v/1", "version": 0}, STAFF_ACTION),
    ("exam:open_session", "post", ("round", "alice"), {"block": "oral-1"}, STAFF_ACTION),
    ("exam:groups", "get", ("round",), {}, PAGE_ALL),
    ("exam:group_create", "post", ("round",), {"name": "New group"}, (302, 302, 302, 302, 302, 404, 404)),
    ("exam:group_join", "post", ("round",), {"join_code": "JOINCODE"}, (302, 302, 302, 403, 403, 404, 404)),
    ("exam:group_add_member", "post", ("round", "group"), {"username": "bob"}, STAFF_ACTION),
    ("exam:group_remove_member", "post", ("round", "group", "alice"), {}, (302, 302, 404, 302, 302, 404, 404)),
    ("exam:accommodations", "get", ("round",), {}, STAFF_PAGE),
    ("exam:accommodations", "post", ("round",), {
        "student": "ALICE", "kind": "adapted", "description": "written oral", "coordinator_reference": "Funka 7"},
     EXAMINER_ACTION),
    ("exam:accommodation_revoke", "post", ("round", "accommodation"), {}, EXAMINER_ACTION),
    ("exam:reexamination", "post", ("round",), {}, EXAMINER_ACTION),
    ("exam:round_settings", "post", ("round",), {"late_policy": "refuse", "max_group_size": 2}, EXAMINER_ACTION),
    ("exam:export_ladok", "get", ("round",), {}, (302, 403, 403, 403, 200, 404, 404)),
    ("exam:export_results", "get", ("round",), {}, STAFF_PAGE),
    # issue 14, the university's systems: SSO, Canvas (LTI), roster import, e-mail settings
    ("oidc_authentication_init", "get", (), {}, (302,) * 7),
    ("oidc_authentication_callback", "get", (), {}, (400,) * 7),
    ("oidc_logout", "post", (), {}, (302,) * 7),
    ("roster_import", "get", ("round",), {}, STAFF_PAGE),
    ("notification_settings", "get", (), {}, (302, 200, 200, 200, 200, 200, 200)),
    ("lti:jwks", "get", (), {}, (200,) * 7),
    ("lti:init", "get", ("00000000-0000-4000-8000-000000000000",), {}, (400,) * 7),
    ("lti:launch", "post", (), {}, (400,) * 7),
    ("lti:enter", "get", ("no-such-ticket",), {}, (404,) * 7),
    ("lti:canvas", "get", ("round",), {}, STAFF_PAGE),
    ("lti:sync", "post", ("round", 999999), {}, (302, 403, 403, 404, 404, 404, 404)),
    ("lti:retry", "post", ("round",), {}, STAFF_ACTION),
    # issue 17: similarity across the cohort (staff); regrade requests (a student asks about a run they may
    # read, staff answer; ids that do not exist show that access is decided first)
    ("review:similarity", "get", ("round",), {}, STAFF_PAGE),
    ("review:similarity_pair", "get", ("round", "mdn", "submission", 999999), {},
     (302, 403, 403, 404, 404, 404, 404)),
    ("review:regrades", "get", ("round",), {}, STAFF_PAGE),
    ("review:regrade_ask", "post", ("run",), {"reason": "matrix"}, (302, 302, 404, 403, 403, 404, 404)),
    ("review:regrade_answer", "post", ("round", 999999), {"r999999-answer": "matrix"},
     (302, 403, 403, 404, 404, 404, 404)),
    ("exam:audit", "get", ("round",), {}, STAFF_PAGE),
    ("exam:session", "get", ("session",), {}, STAFF_PAGE),
    ("exam:save_answer", "post", ("session", "answer"), {"version": 0, "outcome": "passed", "note": "n"},
     (401, 403, 403, 200, 200, 404, 404)),
    ("exam:save_answer", "get", ("session", "answer"), {}, (401, 403, 403, 200, 200, 404, 404)),
    ("exam:save_part_oral", "post", ("session", "part_oral"), {"version": 0, "outcome": "passed", "note": ""},
     (401, 403, 403, 200, 200, 404, 404)),
    ("exam:save_part_oral", "get", ("session", "part_oral"), {}, (401, 403, 403, 200, 200, 404, 404)),
    ("exam:add_question", "post", ("session",), {"part": "PART", "text": "Why?"}, STAFF_ACTION),
    ("exam:csrf_token", "get", (), {}, (200,) * 7),
    # issue 14: the profile page and its access tokens, the language switch (anyone, signed in or not)
    ("profile", "get", (), {}, (302, 200, 200, 200, 200, 200, 200)),
    ("token_create", "post", (), {"name": "matrix", "days": 30, "scope": "student"},
     (302, 200, 200, 200, 200, 200, 200)),  # 200: the new token is shown once, on the page itself
    ("token_revoke", "post", (999999,), {}, (302, 404, 404, 404, 404, 404, 404)),
    ("set_language", "post", (), {"language": "sv"}, (302,) * 7),
    # issue 14: the REST API answers tokens only: a browser's session cookie never authenticates it (so a page
    # elsewhere cannot drive it with the user's cookies); its own tests (test_api.py) cover the roles by token
    ("api-v1:api-root", "get", (), {}, (404,) * 7),
    ("api-v1:openapi-json", "get", (), {}, (200,) * 7),  # the API's description is public
    ("api-v1:openapi-view", "get", (), {}, (200,) * 7),
    ("api-v1:me", "get", (), {}, (401,) * 7),
    ("api-v1:parts", "get", (), {}, (401,) * 7),
    ("api-v1:assignment", "get", ("assignment",), {}, (401,) * 7),
    ("api-v1:handout", "get", ("assignment",), {}, (401,) * 7),
    ("api-v1:sandbox", "get", ("assignment",), {}, (401,) * 7),
    ("api-v1:submit", "post", ("assignment",), {}, (401,) * 7),
    ("api-v1:submissions", "get", (), {}, (401,) * 7),
    ("api-v1:submission", "get", ("submission",), {}, (401,) * 7),
    ("api-v1:run", "get", ("run",), {}, (401,) * 7),
    ("api-v1:run_artifact", "get", ("run", "artifact"), {}, (401,) * 7),
    ("api-v1:round_runs", "get", ("round",), {}, (401,) * 7),
    ("api-v1:run_detail", "get", ("run",), {}, (401,) * 7),
    ("api-v1:round_results", "get", ("round",), {}, (401,) * 7),
    # issue 13: metrics for staff or the configured scraper's address; a run's archive for worker hosts, by a
    # signed URL only (no signature: refused whoever asks)
    ("metrics", "get", (), {}, (404, 404, 404, 200, 200, 200, 404)),  # no scraper address here: see world
    ("run_archive", "get", ("run",), {}, (404,) * 7),
]


@pytest.fixture
def world(people, assignment, settings, tmp_path, django_user_model):
    """One of everything, owned by alice where it belongs to a student."""
    settings.ARCHIVE_ROOT = tmp_path
    settings.METRICS_ALLOWED_ADDRESSES = []  # the test client comes from 127.0.0.1, the default scraper address
    course_round = assignment.round
    submission = graded_submission(assignment, people["alice"])
    submission.archive_path.parent.mkdir(parents=True, exist_ok=True)
    submission.archive_path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    run = submission.latest_run
    RunArtifact.objects.create(run=run, name="samples", data=b"\x89PNG", audience="student")
    other_round = CourseRound.objects.create(
        course=course_round.course, code="HT27", starts_on=course_round.starts_on + dt.timedelta(days=365),
        ends_on=course_round.ends_on + dt.timedelta(days=365), examinable_until=course_round.examinable_until)
    eva = django_user_model.objects.create_user("eva", password="eva-pw-2601")
    Enrollment.objects.create(user=eva, round=other_round, role=Role.EXAMINER)
    call_command("import_oral_questions", stdout=io.StringIO())
    session = OralSession.open(course_round=course_round, student=people["alice"], block="oral-1",
                               by=people["tina"], policy=load_policy())
    group = Group.objects.create(round=course_round, name="G", join_code="JOINCODE")
    group.add_member(people["alice"], by=people["alice"])
    accommodation = Accommodation.grant(by=people["erik"], round=course_round, student=people["alice"],
                                        kind="extension", extended_deadline=timezone.now() + dt.timedelta(days=9),
                                        coordinator_reference="Funka 1")
    ComponentRecord.objects.create(round=course_round, student=people["alice"], component="ethics", status="passed")
    return {"round": course_round.pk, "assignment": assignment.pk, "submission": submission.pk, "run": run.pk,
            "artifact": "samples", "alice": people["alice"].pk, "video": "video", "group": group.pk,
            "accommodation": accommodation.pk, "session": session.pk, "answer": session.answers.first().pk,
            "part_oral": session.part_outcomes.get().pk, "PART": assignment.part.pk,
            "users": {**people, "eva": eva}}


def _names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                names.add("admin:index")  # Django's own admin: its login guards every page
            else:
                names |= _names(p.url_patterns, f"{p.namespace}:" if p.namespace else namespace)
        elif isinstance(p, URLPattern) and p.name:
            names.add(namespace + p.name)
    return names


def test_the_matrix_covers_every_url():
    assert _names(get_resolver().url_patterns) == {row[0] for row in MATRIX}


def test_permission_matrix(world):
    failures = []
    for name, method, arg_names, data, codes in MATRIX:
        url = reverse(name, args=[world[a] if a in world else a for a in arg_names])
        payload = {k: world["alice"] if v == "ALICE" else world.get(v, v) if isinstance(v, str) else v
                   for k, v in data.items()}
        for role, expected in zip(ROLES, codes, strict=True):
            client = Client()
            if role != "anonymous":
                client.force_login(world["users"][USERS[role]])
            sid = transaction.savepoint()
            try:
                response = getattr(client, method)(url, payload)
            finally:
                transaction.savepoint_rollback(sid)
            if response.status_code != expected:
                failures.append(f"{method.upper()} {url} as {role}: {response.status_code}, expected {expected}")
            elif role == "anonymous" and expected == 302 and name not in ("logout", "admin:index", "set_language"):
                assert "/login/" in response["Location"], url
    assert not failures, "\n".join(failures)
