"""The web side without a worker: pages, handout, upload validation, limits and permissions."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from courseware.models import CheckResult, GradingRun, Submission

from .conftest import MDN, zip_folder


def upload(client, assignment, files, declaration="none", token="tok-1"):
    return client.post(reverse("submit", args=[assignment.pk]),
                       {"files": files, "declaration": declaration, "client_token": token})


def as_file(name: str, data: bytes):
    f = io.BytesIO(data)
    f.name = name
    return f


@pytest.fixture
def alice(client, people):
    client.force_login(people["alice"])
    return people["alice"]


def test_pages_need_login(client, course_round):
    response = client.get(reverse("round", args=[course_round.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_round_page_lists_parts_and_deadlines(client, alice, assignment):
    page = client.get(reverse("round", args=[assignment.round.pk])).content.decode()
    assert assignment.part.title in page
    assert f"{assignment.deadline.astimezone():%Y-%m-%d}" in page


def test_outsiders_do_not_see_the_round(client, people, course_round):
    client.force_login(people["olle"])
    assert client.get(reverse("round", args=[course_round.pk])).status_code == 404


def test_handout_zip_holds_the_handout_and_nothing_hidden(client, alice, assignment):
    response = client.get(reverse("handout", args=[assignment.pk]))
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    expected = {f"mdn/{p.relative_to(MDN / 'handout').as_posix()}"
                for p in (MDN / "handout").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert set(names) == expected
    assert "mdn/README.md" in names and "mdn/mdn.py" in names and "mdn/test_public.py" in names
    for forbidden in ("checks.py", "part.toml", "oral.toml", "solution", "wrong", "hidden"):
        assert not any(forbidden in n.split("/") for n in names), forbidden


def test_upload_of_a_valid_zip_creates_a_queued_run(client, alice, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client, assignment, [as_file("solution.zip", zip_folder(MDN / "solution"))])
    assert response.status_code == 302
    submission = Submission.objects.get()
    assert submission.files == ["mdn.py"] and submission.archive_path.exists()
    assert submission.runs.get().status == GradingRun.Status.QUEUED
    assert len(callbacks) == 1  # enqueued only after the transaction commits


def test_plain_files_can_be_uploaded_too(client, alice, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = upload(client, assignment, [as_file("mdn.py", (MDN / "solution" / "mdn.py").read_bytes())])
    assert response.status_code == 302
    assert Submission.objects.get().files == ["mdn.py"]


def zip_with(name: str, data: bytes = b"x = 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mdn.py", b"x = 1\n")
        zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("files, message", [
    ([as_file("solution.zip", b"\x89PNG\r\n\x1a\n not a zip at all")], "not a zip"),
    ([as_file("evil.zip", zip_with("../../etc/cron.d/x.py"))], ".."),
    ([as_file("weights.zip", zip_with("model.pt", b"\x80\x04pickle"))], "model.pt"),
    ([as_file("notes.py", b"x = 1\n")], "has no mdn.py"),
])
def test_bad_uploads_are_rejected_with_a_clear_message_and_nothing_stored(client, alice, assignment, files, message):
    response = upload(client, assignment, files)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Submission.objects.exists() and not GradingRun.objects.exists()


def test_declaration_is_required(client, alice, assignment):
    response = upload(client, assignment, [as_file("mdn.py", b"x = 1\n")], declaration="")
    assert response.status_code == 400
    assert not Submission.objects.exists()


def test_a_double_submit_creates_one_submission(client, alice, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(2):
            upload(client, assignment, [as_file("mdn.py", b"x = 1\n")], token="same-form")
    assert Submission.objects.count() == 1 and GradingRun.objects.count() == 1


def test_daily_limit_is_enforced_and_platform_errors_do_not_count(client, alice, assignment,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for i in range(assignment.max_submissions_per_day):
            assert upload(client, assignment, [as_file("mdn.py", b"x = 1\n")], token=f"t{i}").status_code == 302
        refused = upload(client, assignment, [as_file("mdn.py", b"x = 1\n")], token="over")
        assert refused.status_code == 400 and "used all 5 submissions" in refused.content.decode()
        GradingRun.objects.filter(pk=GradingRun.objects.first().pk).update(
            status=GradingRun.Status.ERROR, infrastructure_error=True)
        assert upload(client, assignment, [as_file("mdn.py", b"x = 1\n")], token="again").status_code == 302


def finished_run(submission) -> GradingRun:
    run = submission.runs.get()
    run.status = GradingRun.Status.DONE
    run.points, run.max_points, run.all_passed = 4, 10, False
    run.student_log = "epoch 1 loss 0.3"
    run.staff_log = "SECRET-HIDDEN-OUTPUT"
    run.examiner_flags = ["EXAMINER-FLAG: fit() returned after 0.01 s"]
    run.save()
    CheckResult.objects.create(run=run, name="nll", title="Test negative log-likelihood", passed=False, points=0,
                               max_points=4, value=-0.5, threshold=-0.9, direction="max",
                               feedback="Test NLL: -0.5; needs to be at most -0.9.", staff_note="STAFF-NOTE")
    CheckResult.objects.create(run=run, name="copy", title="Copy detector", visibility="staff", passed=True,
                               points=0, max_points=0, feedback="STAFF-ONLY-CHECK")
    return run


def test_result_page_shows_checks_but_not_staff_material(client, alice, assignment, people,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        upload(client, assignment, [as_file("mdn.py", b"x = 1\n")])
    submission = Submission.objects.get()
    run = finished_run(submission)
    page = client.get(reverse("submission", args=[submission.pk])).content.decode()
    assert "Test negative log-likelihood" in page and "needs to be at most -0.9" in page
    assert "epoch 1 loss 0.3" in page
    for secret in ("SECRET-HIDDEN-OUTPUT", "STAFF-NOTE", "STAFF-ONLY-CHECK", "EXAMINER-FLAG"):
        assert secret not in page
    assert client.get(reverse("staff_run", args=[run.pk])).status_code == 404
    client.force_login(people["tina"])
    staff_page = client.get(reverse("staff_run", args=[run.pk])).content.decode()
    assert "EXAMINER-FLAG: fit() returned after 0.01 s" in staff_page and "never changes a grade" in staff_page

    client.force_login(people["tina"])
    staff_page = client.get(reverse("staff_run", args=[run.pk])).content.decode()
    assert "SECRET-HIDDEN-OUTPUT" in staff_page and "STAFF-NOTE" in staff_page


def test_live_status_fragment_polls_until_finished(client, alice, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        upload(client, assignment, [as_file("mdn.py", b"x = 1\n")])
    submission = Submission.objects.get()
    url = reverse("submission_status", args=[submission.pk])
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "Queued" in fragment
    finished_run(submission)
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in fragment.content.decode()
    assert fragment["HX-Trigger"] == "run-finished"


def test_other_students_cannot_reach_a_submission_by_guessing_its_id(client, alice, people, assignment,
                                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        upload(client, assignment, [as_file("mdn.py", b"x = 1\n")])
    submission = Submission.objects.get()
    client.force_login(people["bob"])
    for name in ("submission", "submission_status", "archive"):
        assert client.get(reverse(name, args=[submission.pk])).status_code == 404, name
    client.force_login(people["erik"])
    assert client.get(reverse("archive", args=[submission.pk])).status_code == 200


def test_security_headers(client, alice, course_round):
    response = client.get(reverse("round", args=[course_round.pk]))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
