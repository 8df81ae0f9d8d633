"""Web security: login throttling, submission limits that platform failures never consume, a double
submit that cannot make two runs, CSRF and cookie settings, the content security policy, and no way to
reach another student's archive, logs, pictures or results by guessing ids."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from courseware.models import CheckResult, GradingRun, RunArtifact, Submission
from examination import deadlines

from .conftest import MDN, REPO, point_producer_at, zip_folder

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def as_file(name: str, data: bytes):
    f = io.BytesIO(data)
    f.name = name
    return f


def upload(client, assignment, token: str, folder: Path = MDN / "handout"):
    return client.post(reverse("submit", args=[assignment.pk]),
                       {"files": [as_file("submission.zip", zip_folder(folder))], "declaration": "none",
                        "client_token": token})


@pytest.fixture
def quiet_broker(tmp_path):
    """Enqueued runs go to a private filesystem broker that nobody consumes."""
    from courseware.celery import app

    saved = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    folder = tmp_path / "broker"
    (folder / "control").mkdir(parents=True)
    point_producer_at("filesystem://", {"data_folder_in": str(folder), "data_folder_out": str(folder),
                                        "control_folder": str(folder / "control"), "store_processed": False})
    yield folder
    point_producer_at(*saved)


# ---- login throttling (django-axes) -----------------------------------------------------------------------

def test_login_is_locked_after_n_failures_for_that_username_and_address(client, people, settings):
    limit = settings.AXES_FAILURE_LIMIT
    login = reverse("login")
    ip = {"REMOTE_ADDR": "203.0.113.7"}
    for attempt in range(1, limit):
        response = client.post(login, {"username": "alice", "password": f"wrong-{attempt}"}, **ip)
        assert response.status_code == 200, (attempt, response.status_code)  # the form again, with an error
    response = client.post(login, {"username": "alice", "password": "wrong-last"}, **ip)  # the N-th failure
    assert response.status_code == 429
    # The N+1-th attempt is refused even with the right password, with a page that says why.
    response = client.post(login, {"username": "alice", "password": "alice-pw-2601"}, **ip)
    assert response.status_code == 429
    text = response.content.decode()
    assert "locked" in text.lower() and "too many" in text.lower() and "try again" in text.lower()
    assert "_auth_user_id" not in client.session
    # Only that username from that address: the same person elsewhere, and others here, still log in.
    other = Client()
    assert other.post(login, {"username": "bob", "password": "bob-pw-2601"}, **ip).status_code == 302
    elsewhere = Client()
    assert elsewhere.post(login, {"username": "alice", "password": "alice-pw-2601"},
                          REMOTE_ADDR="198.51.100.20").status_code == 302


# ---- submission limits and infrastructure failures ---------------------------------------------------------------

@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_run_that_failed_because_of_the_platform_does_not_use_up_the_limit(
        client, people, assignment, settings, quiet_broker, tmp_path):
    from grader.tasks import grade_run

    assignment.max_submissions_per_day = 1
    assignment.save()
    alice = people["alice"]
    client.force_login(alice)
    assert upload(client, assignment, "first").status_code == 302
    run = Submission.objects.get(client_token="first").runs.get()

    # A real infrastructure failure: the worker's Docker engine has no such sandbox image. The task asks
    # Celery to retry; under apply() the retry runs at once, and with one attempt allowed the second
    # attempt gives up: the run ends as the platform's error.
    settings.GRADER_BACKEND = "docker"
    settings.GRADER_IMAGE = "dd2601-sandbox-missing:none"
    settings.GRADER_MAX_ATTEMPTS = 1
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="dd2601-websec-"))
    settings.GRADER_WORK_DIR = work
    try:
        assert grade_run.apply(args=[run.pk]).get() == "gave-up"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.refresh_from_db()
    assert run.status == GradingRun.Status.ERROR and run.infrastructure_error, (run.status, run.staff_log)
    assert "does not count against your limit" in run.error_reason
    assert run.attempt == 2 and "sandbox image dd2601-sandbox-missing:none is missing" in run.staff_log
    assert assignment.submissions_counted_today(alice) == 0
    assert deadlines.refusal(assignment, alice) is None

    assert upload(client, assignment, "second").status_code == 302  # the student may submit again
    assert assignment.submissions_counted_today(alice) == 1
    refused = upload(client, assignment, "third")
    assert refused.status_code == 400 and "You have used all 1 submissions" in refused.content.decode()
    assert Submission.objects.filter(submitter=alice).count() == 2


# ---- a double submit --------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_concurrent_double_submit_creates_one_submission_and_one_run(live_server, people, assignment, quiet_broker):
    import requests

    django_client = Client()
    django_client.force_login(people["alice"])
    cookies = {"sessionid": django_client.cookies["sessionid"].value}
    page_url = f"{live_server.url}{reverse('assignment', args=[assignment.pk])}"
    browser = requests.Session()
    browser.cookies.update(cookies)
    page = browser.get(page_url, timeout=30)
    assert page.status_code == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    token = re.search(r'name="client_token" value="([^"]+)"', page.text).group(1)
    archive = zip_folder(MDN / "handout")
    submit_url = f"{live_server.url}{reverse('submit', args=[assignment.pk])}"
    barrier = threading.Barrier(2)
    responses: list[requests.Response] = []

    def post():
        session = requests.Session()
        session.cookies.update({**cookies, "csrftoken": browser.cookies["csrftoken"]})
        barrier.wait(10)
        responses.append(session.post(submit_url, data={"csrfmiddlewaretoken": csrf, "declaration": "none",
                                                        "client_token": token},
                                      files={"files": ("submission.zip", archive, "application/zip")},
                                      headers={"Referer": page_url}, allow_redirects=False, timeout=60))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert [r.status_code for r in responses] == [302, 302], [r.text[-500:] for r in responses]
    assert Submission.objects.filter(submitter=people["alice"]).count() == 1
    submission = Submission.objects.get(submitter=people["alice"])
    assert GradingRun.objects.filter(submission__submitter=people["alice"]).count() == 1
    assert {r.headers["Location"] for r in responses} == {reverse("submission", args=[submission.pk])}


# ---- CSRF, cookies, deployment checks ------------------------------------------------------------------------------

def production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)[:50],
                "DJANGO_ALLOWED_HOSTS": "lab.example", "DD2601_VAR_DIR": tempfile.mkdtemp(prefix="dd2601-deploy-")})
    env.update(extra)
    return env


def test_check_deploy_reports_no_issues():
    env = production_env()
    try:
        result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(env["DD2601_VAR_DIR"], ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_cookies_are_secure_and_http_only():
    env = production_env()
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: getattr(s, k) "
            "for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', "
            "'CSRF_COOKIE_SAMESITE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'DEBUG', 'X_FRAME_OPTIONS', "
            "'SECURE_CONTENT_TYPE_NOSNIFF']}))")
    try:
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                                env={**env, "DJANGO_SETTINGS_MODULE": "courseware.settings"})
    finally:
        shutil.rmtree(env["DD2601_VAR_DIR"], ignore_errors=True)
    import json

    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_SSL_REDIRECT"] and not values["DEBUG"]
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["SECURE_CONTENT_TYPE_NOSNIFF"]


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    env.pop("DJANGO_SECRET_KEY")
    try:
        result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=60)
    finally:
        shutil.rmtree(env["DD2601_VAR_DIR"], ignore_errors=True)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr


def test_posts_without_a_csrf_token_are_refused(people, assignment):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(reverse("login"), {"username": "alice", "password": "alice-pw-2601"}).status_code == 403
    browser.force_login(people["alice"])
    response = browser.post(reverse("submit", args=[assignment.pk]),
                            {"files": [as_file("mdn.py", b"x = 1\n")], "declaration": "none", "client_token": "t"})
    assert response.status_code == 403
    assert not Submission.objects.exists()


# ---- content security policy --------------------------------------------------------------------------------------

def test_every_page_carries_the_content_security_policy(client, people, assignment):
    pages = [reverse("login")]
    client.force_login(people["alice"])
    pages += [reverse("round", args=[assignment.round.pk]), reverse("assignment", args=[assignment.pk]),
              "/no-such-page/", reverse("submission", args=[999999])]
    for url in pages:
        response = client.get(url)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, (url, policy)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy and "base-uri 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
        assert response.headers.get("X-Frame-Options") == "DENY"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


# ---- no guessing other people's things ------------------------------------------------------------------------------

@pytest.fixture
def bobs_run(people, assignment, settings, tmp_path):
    from grader import archives

    settings.ARCHIVE_ROOT = tmp_path / "archives"
    checked = archives.check_upload([("mdn.py", b"# bob's secret solution\n")])
    archives.store(checked, settings.ARCHIVE_ROOT)
    submission = Submission.objects.create(assignment=assignment, submitter=people["bob"], sha256=checked.sha256,
                                           size=len(checked.canonical_zip), files=["mdn.py"], declaration="none")
    run = GradingRun.objects.create(submission=submission, status=GradingRun.Status.DONE, points=3, max_points=10,
                                    student_log="BOB-STUDENT-LOG", staff_log="BOB-STAFF-LOG", error_reason="")
    CheckResult.objects.create(run=run, name="nll", title="Test NLL", passed=True, points=3, max_points=4,
                               feedback="BOB-FEEDBACK", staff_note="BOB-STAFF-NOTE", visibility="hidden")
    RunArtifact.objects.create(run=run, name="samples", audience="student", data=PNG)
    RunArtifact.objects.create(run=run, name="staff-plot", audience="staff", data=PNG)
    return submission, run


def test_another_students_submission_logs_archive_and_pictures_are_404(client, people, bobs_run):
    submission, run = bobs_run
    urls = [reverse("submission", args=[submission.pk]), reverse("submission_status", args=[submission.pk]),
            reverse("archive", args=[submission.pk]), reverse("run_artifact", args=[run.pk, "samples"]),
            reverse("run_artifact", args=[run.pk, "staff-plot"]), reverse("staff_run", args=[run.pk])]
    missing = [reverse("submission", args=[submission.pk + 1000]), reverse("archive", args=[submission.pk + 1000]),
               reverse("run_artifact", args=[run.pk + 1000, "samples"]), reverse("staff_run", args=[run.pk + 1000])]
    for user in ("alice", "olle"):
        client.force_login(people[user])
        for url in urls + missing:
            response = client.get(url)
            assert response.status_code == 404, (user, url, response.status_code)  # exists or not: the same answer
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"BOB-" not in body and b"bob's secret" not in body
        staff_list = client.get(reverse("staff_runs", args=[submission.assignment.round.pk]))
        assert staff_list.status_code in (403, 404) and b"BOB-" not in staff_list.content


def test_the_owner_sees_results_but_not_staff_notes(client, people, bobs_run):
    submission, run = bobs_run
    client.force_login(people["bob"])
    page = client.get(reverse("submission", args=[submission.pk])).content.decode()
    assert "BOB-FEEDBACK" in page and "BOB-STUDENT-LOG" in page
    assert "BOB-STAFF-LOG" not in page and "BOB-STAFF-NOTE" not in page
    assert client.get(reverse("run_artifact", args=[run.pk, "samples"])).status_code == 200
    assert client.get(reverse("run_artifact", args=[run.pk, "staff-plot"])).status_code == 404
    assert client.get(reverse("staff_run", args=[run.pk])).status_code == 404
    archive = client.get(reverse("archive", args=[submission.pk]))
    assert archive.status_code == 200 and b"".join(archive.streaming_content).startswith(b"PK")


def test_staff_see_everything(client, people, bobs_run):
    submission, run = bobs_run
    client.force_login(people["tina"])
    page = client.get(reverse("staff_run", args=[run.pk])).content.decode()
    assert "BOB-STAFF-LOG" in page and "BOB-STUDENT-LOG" in page
    assert client.get(reverse("run_artifact", args=[run.pk, "staff-plot"])).status_code == 200
