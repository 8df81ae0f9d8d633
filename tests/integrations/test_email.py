"""E-mail to a real SMTP server (aiosmtpd on loopback) through Django's SMTP backend and the Celery task:
a result-ready message (from the grader's run_finished signal; the real worker's path is tests/test_student_path.py) and a grade-decided message (a new
decision, after commit), each once, with a link and nothing of the hidden checks; opt-out; retries."""

from __future__ import annotations

import pytest

from courseware.celery import app
from courseware.models import CheckResult, GradingRun, Submission
from examination.models import GradeDecision
from examination.policy import Proposal
from grader.tasks import run_finished
from notifications.models import EmailPreference, Notification

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _graded_run(assignment, student) -> GradingRun:
    submission = Submission.objects.create(assignment=assignment, submitter=student, sha256="0" * 64, size=10,
                                           declaration="none")
    run = GradingRun.objects.create(submission=submission, status=GradingRun.Status.DONE, points=7.5, max_points=10,
                                    staff_log="STAFF-ONLY-TRACE")
    for order, (name, visibility) in enumerate([("public_shape", "public"), ("secret_nll_split", "hidden"),
                                                ("staff_probe", "staff")]):
        CheckResult.objects.create(run=run, order=order, name=name, title=name.upper(), visibility=visibility,
                                   passed=False, status="failed", feedback=f"FEEDBACK-OF-{name}")
    return run


def _finish_grading(run: GradingRun) -> None:
    """What the grader sends after the commit that finished a run (grader.tasks._finish)."""
    run_finished.send(sender=GradingRun, run_id=run.pk)


def test_result_ready_mail_has_a_link_and_no_hidden_check_details(people, assignment, smtp_server, eager, settings):
    settings.SITE_URL = "https://lab.example.kth.se"
    alice = people["alice"]
    alice.email = "alice@kth.se"
    alice.save()
    run = _graded_run(assignment, alice)
    _finish_grading(run)
    _finish_grading(run)  # a redelivered task: still one message
    [message] = smtp_server.wait_for(1)
    body = message.get_payload(decode=True).decode()
    assert message["To"] == "alice@kth.se" and "Result ready" in message["Subject"]
    assert f"https://lab.example.kth.se/submissions/{run.submission_id}/" in body
    assert "7.5 of 10 points" in body
    for secret in ("secret_nll_split", "SECRET_NLL_SPLIT", "FEEDBACK-OF", "STAFF-ONLY", "staff_probe", "public_shape"):
        assert secret not in body
    assert Notification.objects.get().status == Notification.Status.SENT
    assert len(smtp_server.messages) == 1


def test_grade_decided_mail_and_the_opt_out(people, assignment, smtp_server, eager, client):
    alice, bob, erik = people["alice"], people["bob"], people["erik"]
    for user in (alice, bob):
        user.email = f"{user.username}@kth.se"
        user.save()
    client.force_login(bob)
    client.post("/notifications/", {"result_ready": "on"})  # bob keeps results, drops grade mails
    assert EmailPreference.of(bob).grade_decided is False
    for student in (alice, bob):
        GradeDecision.decide(course_round=assignment.round, student=student, grade="E", rationale="", by=erik,
                             proposal=Proposal(grade="E", explanation=("x",)))
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "alice@kth.se"
    assert f"/exam/rounds/{assignment.round.pk}/me/" in message.get_payload(decode=True).decode()
    assert Notification.objects.get(user=bob).status == Notification.Status.SKIPPED


def test_a_refusing_mail_server_is_retried_then_given_up_on(people, assignment, smtp_server, eager, settings):
    alice = people["alice"]
    alice.email = "alice@kth.se"
    alice.save()
    smtp_server.fail_next = 2  # 451 twice, then accepted
    _finish_grading(_graded_run(assignment, alice))
    assert len(smtp_server.wait_for(1)) == 1
    sent = Notification.objects.get()
    assert (sent.status, sent.attempts) == (Notification.Status.SENT, 3)

    settings.NOTIFY_MAX_RETRIES = 2
    smtp_server.fail_next = 100
    _finish_grading(_graded_run(assignment, alice))
    failed = Notification.objects.exclude(pk=sent.pk).get()
    assert failed.status == Notification.Status.FAILED and failed.attempts == 3 and "451" in failed.last_error


def test_a_finished_run_is_announced_once_after_the_commit(people, assignment):
    """Whichever delivery finishes a run, the announcement comes once, and only with the commit."""
    from django.db import transaction

    from grader.tasks import _finish

    submission = Submission.objects.create(assignment=assignment, submitter=people["alice"], sha256="0" * 64,
                                           size=10, declaration="none")
    run = GradingRun.objects.create(submission=submission)
    attempt = GradingRun.claim(run.pk, worker_host="w", lease_seconds=60)
    heard: list[int] = []

    def receiver(sender, run_id, **_kwargs):
        heard.append(run_id)

    run_finished.connect(receiver)
    try:
        with transaction.atomic():
            assert _finish(run, attempt, status=GradingRun.Status.DONE)
            assert not _finish(run, attempt, status=GradingRun.Status.DONE)  # fenced: not the owner any more
            assert heard == []  # nothing before the commit
    finally:
        run_finished.disconnect(receiver)
    assert heard == [run.pk]
