"""The rules that two requests at the same moment could break, on real concurrent connections.

SQLite takes the database's write lock at BEGIN (settings), so on SQLite these hold by serialisation;
PostgreSQL runs the transactions at once, and only row locks and conditional updates keep them. `bin/test`
runs this file a second time on a real PostgreSQL server (`DATABASE_URL` from `ensure_test_postgres`), and
`test_the_postgres_pass_really_is_on_postgres` fails that pass if it silently ran on SQLite.

Each test starts its requests on threads (one database connection each) behind a barrier, so they reach
the database together: a double submit, the last submission of the day, claiming a run, a stale attempt's
write, and two examiners deciding the same student's grade.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from courseware import uploads
from courseware.models import Assignment, GradingRun, Submission
from examination.deadlines import RefusalKind
from examination.models import GradeDecision
from examination.policy import Proposal

from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_broker")]

THREADS = 8


def at_once(work: Callable[[int], object], n: int = THREADS) -> list:
    """Run work(0..n-1) on n threads released together; the results (or exceptions) in thread order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def one(i: int) -> None:
        try:
            barrier.wait(20)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test asserts on what each request got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


@pytest.fixture
def archive_root(settings, tmp_path) -> Path:
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return settings.ARCHIVE_ROOT


def upload(assignment, student, token: str, text: str):
    files = [SimpleUploadedFile("mdn.py", text.encode())]
    return uploads.submit(assignment, student, files, declaration="none", client_token=token)


def test_the_postgres_pass_really_is_on_postgres():
    """bin/test sets DD2601_EXPECT_POSTGRES=1 for its PostgreSQL pass: a misconfiguration fails, not passes."""
    if os.environ.get("DD2601_EXPECT_POSTGRES") == "1":
        assert connection.vendor == "postgresql", f"this pass should run on PostgreSQL, not {connection.vendor}"


def test_a_double_submit_at_the_same_moment_is_one_submission(people, assignment, archive_root):
    results = at_once(lambda i: upload(assignment, people["alice"], "the-same-form", "x = 1\n"))
    assert all(isinstance(r, uploads.Accepted) for r in results), results
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.submission.pk for r in results}) == 1
    assert Submission.objects.count() == 1 and GradingRun.objects.count() == 1


def test_the_daily_limit_holds_when_every_upload_arrives_at_once(people, assignment, archive_root):
    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=3)
    assignment.refresh_from_db()
    results = at_once(lambda i: upload(assignment, people["bob"], f"form-{i}", f"x = {i}\n"))
    accepted = [r for r in results if isinstance(r, uploads.Accepted)]
    refused = [r for r in results if isinstance(r, uploads.Refused)]
    assert len(accepted) == 3, results
    assert len(refused) == THREADS - 3 and {r.kind for r in refused} == {RefusalKind.DAILY_LIMIT}, results
    assert Submission.objects.filter(submitter=people["bob"]).count() == 3


def make_run(people, assignment, token: str = "run") -> GradingRun:
    submission = Submission.objects.create(assignment=assignment, submitter=people["alice"], sha256="0" * 64, size=1,
                                           declaration="none", client_token=token)
    return GradingRun.objects.create(submission=submission)


def test_one_claim_wins_and_a_stale_attempt_cannot_write(people, assignment):
    run = make_run(people, assignment)
    attempts = at_once(lambda i: GradingRun.claim(run.pk, worker_host=f"w{i}", lease_seconds=600))
    assert sorted(attempts, key=lambda a: a or 0) == [None] * (THREADS - 1) + [1], attempts
    # The lease runs out (its worker died): every redelivery races for it again, one wins attempt 2.
    GradingRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    attempts = at_once(lambda i: GradingRun.claim(run.pk, worker_host=f"w{i}", lease_seconds=600))
    assert sorted(attempts, key=lambda a: a or 0) == [None] * (THREADS - 1) + [2], attempts
    # Both attempts try to store their result at once: only the owner's write lands.
    written = at_once(lambda i: run.fenced(1 + i % 2).update(status=GradingRun.Status.DONE, points=float(i)), n=2)
    assert written == [0, 1], written
    run.refresh_from_db()
    assert run.status == GradingRun.Status.DONE and run.points == 1.0 and run.attempt == 2


def test_two_examiners_deciding_at_once_make_one_chain_not_an_error(people, course_round):
    """Both decisions are kept, one superseding the other: the chain never forks and nobody gets an error."""
    from courseware.models import Enrollment, Role

    erik, second = people["erik"], people["tina"]
    Enrollment.objects.filter(user=second, round=course_round).update(role=Role.EXAMINER)
    examiners = [erik, second] * (THREADS // 2)

    def decide(i: int) -> GradeDecision:
        return GradeDecision.decide(course_round=course_round, student=people["alice"], grade="E", rationale="",
                                    by=examiners[i], proposal=Proposal("E", ("E: ...",)))

    results = at_once(decide)
    assert all(isinstance(r, GradeDecision) for r in results), results
    decisions = list(GradeDecision.objects.filter(student=people["alice"]))
    assert len(decisions) == THREADS
    current = GradeDecision.current(course_round, people["alice"])
    assert len(current.history()) == THREADS  # one chain through all of them
