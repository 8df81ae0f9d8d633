"""The Ladok file: per student the KTH id, course code, LAB1's module code (per round), grade, the
examination date (the day the last required part was completed, not the day of the decision) and the
examiner."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.utils import timezone

from courseware.models import CheckResult, GradingRun, Submission
from examination.models import GradeDecision, StudentProfile
from examination.policy import Proposal
from examination.results import RoundResults, examination_date, ladok_csv
from ladok.models import LadokModule


def _submitted(assignment, student, days_ago: int, passed: bool) -> Submission:
    submission = Submission.objects.create(assignment=assignment, submitter=student, sha256=f"{days_ago:064d}",
                                           size=1, declaration="none",
                                           created_at=timezone.now() - dt.timedelta(days=days_ago))
    run = GradingRun.objects.create(submission=submission, status=GradingRun.Status.DONE, points=5, max_points=10)
    CheckResult.objects.create(run=run, name="core", title="core", tier="E", passed=passed,
                               status="passed" if passed else "failed")
    return submission


def test_the_ladok_file(course_round, people, assignment):
    alice, bob, erik = people["alice"], people["bob"], people["erik"]
    erik.first_name, erik.last_name = "Erik", "Examiner"
    erik.save()
    StudentProfile.objects.create(user=alice, kth_id="u1alice0")
    StudentProfile.objects.create(user=bob, kth_id="u1bob000")
    _submitted(assignment, alice, days_ago=9, passed=False)
    _submitted(assignment, alice, days_ago=6, passed=True)  # completed the only required part six days ago
    _submitted(assignment, bob, days_ago=3, passed=False)  # never completed: his last attempt's day
    LadokModule.objects.create(round=course_round, module_code="LAB2")  # the module code is per round
    for student, grade in ((alice, "C"), (bob, "F")):
        GradeDecision.decide(course_round=course_round, student=student, grade=grade, rationale="", by=erik,
                             proposal=Proposal(grade=grade, explanation=("x",)))
    results = RoundResults(course_round)
    today = timezone.localdate()
    assert examination_date(results.row(alice)) == today - dt.timedelta(days=6)
    text = ladok_csv(results)
    assert text.splitlines()[0] == "kth_id,course_code,module_code,grade,examination_date,examiner,name"
    rows = {r["kth_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["u1alice0"] == {"kth_id": "u1alice0", "course_code": "DD2601", "module_code": "LAB2", "grade": "C",
                                "examination_date": (today - dt.timedelta(days=6)).isoformat(),
                                "examiner": "Erik Examiner", "name": "alice"}
    assert rows["u1bob000"]["examination_date"] == (today - dt.timedelta(days=3)).isoformat()
    assert "@" not in text
