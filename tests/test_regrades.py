"""Regrade requests (issue 17, item 5): a student asks for a review of one run with a reason; staff answer
from a queue and may grade the submission again (a new run; the old one stays); the question, the
answer and the regrade are in the audit log. New runs go to a real (filesystem) broker after the commit."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from courseware.models import GradingRun
from examination.models import AuditEntry, Group
from review.models import RegradeRequest

from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

REASON = "The nll check says my mixture misses a branch, but my own plot shows both branches."


@pytest.fixture
def run(people, assignment) -> GradingRun:
    return graded_submission(assignment, people["alice"], failing=("nll",)).runs.get()


def audit(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("pk"))


# ---- asking -------------------------------------------------------------------------------------------------

def test_a_student_asks_about_a_run_and_the_question_is_audited(client, people, run):
    client.force_login(people["alice"])
    response = client.post(reverse("review:regrade_ask", args=[run.pk]), {"reason": f"  {REASON}  "})
    assert response.status_code == 302 and response["Location"].endswith(f"/submissions/{run.submission_id}/#review")
    request = RegradeRequest.objects.get()
    assert (request.run, request.student, request.reason, request.status) == (run, people["alice"], REASON, "open")
    [entry] = audit("regrade.requested")
    assert entry.actor == people["alice"] and entry.student == people["alice"] and entry.round == run.submission.assignment.round
    assert entry.after == {"run": run.pk, "submission": run.submission_id, "part": "mdn", "reason": REASON}
    page = client.get(reverse("submission", args=[run.submission_id])).content.decode()
    assert REASON in page and "Waiting for staff" in page and "Ask for a review" not in page  # one open request


@pytest.mark.parametrize("reason, expected", [("   ", "Say what you want reviewed"), ("x" * 4001, "4000")])
def test_a_request_without_a_usable_reason_is_refused_in_words(client, people, run, reason, expected):
    client.force_login(people["alice"])
    response = client.post(reverse("review:regrade_ask", args=[run.pk]), {"reason": reason}, follow=True)
    assert expected in response.content.decode() and not RegradeRequest.objects.exists()
    with pytest.raises(ValidationError, match=expected):
        RegradeRequest.ask(run, by=people["alice"], reason=reason)


def test_a_second_open_request_about_the_same_run_is_refused(people, run):
    RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    with pytest.raises(ValidationError, match="already asked"):
        RegradeRequest.ask(run, by=people["alice"], reason="again")
    assert RegradeRequest.objects.count() == 1 and len(audit("regrade.requested")) == 1


def test_an_unfinished_run_cannot_be_reviewed_yet(people, assignment):
    queued = graded_submission(assignment, people["alice"], status=GradingRun.Status.QUEUED).runs.get()
    with pytest.raises(ValidationError, match="not finished"):
        RegradeRequest.ask(queued, by=people["alice"], reason=REASON)


def test_only_a_student_who_may_read_the_submission_asks(client, people, run):
    client.force_login(people["bob"])  # another student: the run does not exist for him
    assert client.post(reverse("review:regrade_ask", args=[run.pk]), {"reason": REASON}).status_code == 404
    client.force_login(people["tina"])  # staff answer requests; they do not make them
    assert client.post(reverse("review:regrade_ask", args=[run.pk]), {"reason": REASON}).status_code == 403
    with pytest.raises(PermissionDenied):
        RegradeRequest.ask(run, by=people["erik"], reason=REASON)
    assert not RegradeRequest.objects.exists()


def test_a_group_member_asks_about_the_groups_run(people, assignment):
    group = Group.start(assignment.round, "pair", by=people["erik"])
    group.add_member(people["alice"], by=people["erik"])
    group.add_member(people["bob"], by=people["erik"])
    submission = graded_submission(assignment, people["alice"])
    submission.group = group
    submission.save()
    request = RegradeRequest.ask(submission.runs.get(), by=people["bob"], reason=REASON)
    assert request.student == people["bob"]


# ---- answering ----------------------------------------------------------------------------------------------

def test_staff_answer_from_the_queue_and_the_student_reads_the_answer(client, people, run):
    request = RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    client.force_login(people["tina"])
    queue = client.get(reverse("review:regrades", args=[run.submission.assignment.round_id])).content.decode()
    assert REASON in queue and f'id="request-{request.pk}"' in queue
    response = client.post(reverse("review:regrade_answer", args=[request.round_id, request.pk]),
                           {f"r{request.pk}-answer": "The hidden check uses 2000 points; your plot uses 200."})
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.answered_by, request.new_run) == ("answered", people["tina"], None)
    assert run.submission.runs.count() == 1
    [entry] = audit("regrade.answered")
    assert entry.actor == people["tina"] and entry.student == people["alice"]
    assert entry.before == {"status": "open"} and entry.after["answer"].startswith("The hidden check")
    client.force_login(people["alice"])
    page = client.get(reverse("submission", args=[run.submission_id])).content.decode()
    assert "The hidden check uses 2000 points" in page and "Ask for a review" in page  # she may ask again


def test_a_regrade_is_a_new_run_of_the_same_submission_queued_after_the_commit(client, people, run, request,
                                                                             django_capture_on_commit_callbacks):
    broker_folder = request.getfixturevalue("quiet_broker")
    asked = RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    client.force_login(people["erik"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("review:regrade_answer", args=[asked.round_id, asked.pk]),
                    {f"r{asked.pk}-answer": "Graded again with the fixed check.", f"r{asked.pk}-regrade": "on"})
    asked.refresh_from_db()
    new_run = asked.new_run
    assert asked.status == "regraded" and new_run.submission_id == run.submission_id and new_run.pk != run.pk
    assert new_run.status == GradingRun.Status.QUEUED and new_run.enqueued_at is not None  # sent to the broker
    assert GradingRun.objects.filter(pk=run.pk, status=GradingRun.Status.DONE).exists()  # the old run stays
    assert any(broker_folder.rglob("*.msg")), "no message reached the broker"
    [regraded] = audit("submission.regraded")
    assert regraded.after == {"submission": run.submission_id, "previous_run": run.pk, "new_run": new_run.pk,
                              "regrade_request": asked.pk}
    assert audit("regrade.answered")[0].after["new_run"] == new_run.pk


def test_of_two_answers_at_once_the_first_counts(people, run):
    request = RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    stale = RegradeRequest.objects.get(pk=request.pk)  # a second staff member's page, loaded before the answer
    request.answer_by(people["tina"], answer="No error: the check is right.", regrade=False)
    with pytest.raises(ValidationError, match="tina answered this request first"):
        stale.answer_by(people["erik"], answer="Graded again.", regrade=True)
    assert run.submission.runs.count() == 1 and len(audit("regrade.answered")) == 1


def test_an_empty_answer_is_refused_and_the_request_stays_open(client, people, run):
    request = RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    client.force_login(people["tina"])
    response = client.post(reverse("review:regrade_answer", args=[request.round_id, request.pk]),
                           {f"r{request.pk}-answer": "   ", f"r{request.pk}-regrade": "on"}, follow=True)
    assert "Write an answer to the student" in response.content.decode()
    request.refresh_from_db()
    assert request.is_open and run.submission.runs.count() == 1


def test_only_the_rounds_staff_see_the_queue_and_answer(client, people, run):
    request = RegradeRequest.ask(run, by=people["alice"], reason=REASON)
    queue = reverse("review:regrades", args=[request.round_id])
    answer = reverse("review:regrade_answer", args=[request.round_id, request.pk])
    client.force_login(people["alice"])
    assert client.get(queue).status_code == 403
    assert client.post(answer, {f"r{request.pk}-answer": "I say yes"}).status_code == 403
    client.force_login(people["olle"])
    assert client.get(queue).status_code == 404
    with pytest.raises(PermissionDenied):
        request.answer_by(people["alice"], answer="yes", regrade=True)
    request.refresh_from_db()
    assert request.is_open
