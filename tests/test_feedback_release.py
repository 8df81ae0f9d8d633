"""Feedback release (issue 17, item 5): per round, staff choose whether hidden checks' results are shown at
once or only after the student's own deadline; the one rule (`review.feedback`) is what the submission
page, its badges, the round and results pages, the REST API, the pictures and the e-mail all show."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from api.models import AccessToken
from courseware.models import CheckResult, GradingRun, RunArtifact, Submission
from examination.models import Accommodation, AuditEntry, Group, RoundSettings
from notifications.messages import compose
from notifications.models import Kind, Notification
from review.feedback import FeedbackRules, run_feedback

from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)

HIDDEN_FEEDBACK = "Your mixture puts no weight near the second branch"
STAFF_NOTE = "staff only: the hidden sample had 3 modes"


def graded(assignment, student, *, group=None) -> GradingRun:
    """A submission with a finished run: one public, one hidden and one staff-only check, a picture for
    students and one for staff. Written directly, as the grader writes them (no sandbox)."""
    submission = Submission.objects.create(assignment=assignment, submitter=student, sha256="0" * 64, size=10,
                                           files=["mdn.py"], declaration="none", group=group)
    run = GradingRun.objects.create(submission=submission, status=GradingRun.Status.DONE, points=3, max_points=6,
                                    all_passed=False, finished_at=timezone.now())
    for order, (name, visibility, passed) in enumerate([("shapes", "public", True), ("nll", "hidden", False),
                                                        ("modes", "staff", True)]):
        CheckResult.objects.create(run=run, order=order, name=name, title=f"check {name}", tier="E",
                                   visibility=visibility, passed=passed, status="passed" if passed else "failed",
                                   points=2 if passed else 0, max_points=2,
                                   feedback=HIDDEN_FEEDBACK if name == "nll" else f"{name} feedback",
                                   staff_note=STAFF_NOTE if name == "modes" else "")
    RunArtifact.objects.create(run=run, name="samples", audience="student", data=b"\x89PNG student")
    RunArtifact.objects.create(run=run, name="hidden-samples", audience="staff", data=b"\x89PNG staff")
    return run


def after_deadline(course_round, by) -> None:
    settings_ = RoundSettings.of(course_round)
    settings_.hidden_feedback = RoundSettings.HiddenFeedback.AFTER_DEADLINE
    settings_.save_by(by)


def names(feedback) -> list[str]:
    return [c.name for c in feedback.checks]


# ---- the rule ----------------------------------------------------------------------------------------------

def test_by_default_a_student_sees_public_and_hidden_checks_at_once_and_never_staff_only_ones(people, assignment):
    run = graded(assignment, people["alice"])
    seen = run_feedback(run, people["alice"])
    assert names(seen) == ["shapes", "nll"] and seen.withheld == 0 and seen.points_shown
    assert [a.name for a in seen.artifacts] == ["samples"]
    for staff in ("tina", "erik"):
        everything = run_feedback(run, people[staff])
        assert names(everything) == ["shapes", "nll", "modes"] and everything.points_shown
        assert {a.name for a in everything.artifacts} == {"samples", "hidden-samples"}


def test_after_the_deadline_a_student_sees_public_checks_only_until_their_own_deadline(people, assignment):
    after_deadline(assignment.round, people["erik"])
    run = graded(assignment, people["alice"])
    before = run_feedback(run, people["alice"])
    assert names(before) == ["shapes"] and before.withheld == 1 and before.withheld_until == assignment.deadline
    assert not before.points_shown and not before.summary_shown and list(before.artifacts) == []
    assert FeedbackRules(assignment.round, people["alice"]).tier(run, "E") is None
    later = run_feedback(run, people["alice"], now=assignment.deadline + dt.timedelta(seconds=1))
    assert names(later) == ["shapes", "nll"] and later.withheld == 0 and later.points_shown
    assert [a.name for a in later.artifacts] == ["samples"]
    assert names(run_feedback(run, people["tina"])) == ["shapes", "nll", "modes"]  # staff: everything, always


def test_the_release_waits_for_the_students_extended_deadline(people, assignment):
    after_deadline(assignment.round, people["erik"])
    extended = assignment.deadline + dt.timedelta(days=3)
    Accommodation.grant(by=people["erik"], round=assignment.round, student=people["alice"],
                        kind=Accommodation.Kind.EXTENSION, extended_deadline=extended, coordinator_reference="F-1")
    run = graded(assignment, people["alice"])
    between = assignment.deadline + dt.timedelta(days=1)
    assert run_feedback(run, people["alice"], now=between).withheld_until == extended
    assert run_feedback(run, people["alice"], now=extended + dt.timedelta(seconds=1)).withheld == 0


def test_a_group_member_waits_for_their_own_deadline(people, assignment):
    erik = people["erik"]
    after_deadline(assignment.round, erik)
    group = Group.start(assignment.round, "pair", by=erik)
    for name in ("alice", "bob"):
        group.add_member(people[name], by=erik)
    extended = assignment.deadline + dt.timedelta(days=2)
    Accommodation.grant(by=erik, round=assignment.round, student=people["bob"], kind=Accommodation.Kind.EXTENSION,
                        extended_deadline=extended, coordinator_reference="F-2")
    run = graded(assignment, people["alice"], group=group)
    between = assignment.deadline + dt.timedelta(hours=1)
    assert run_feedback(run, people["alice"], now=between).withheld == 0
    assert run_feedback(run, people["bob"], now=between).withheld_until == extended


def test_a_run_without_hidden_checks_shows_its_total_before_the_deadline(people, assignment):
    after_deadline(assignment.round, people["erik"])
    run = graded(assignment, people["alice"])
    run.checks.filter(visibility="hidden").delete()
    seen = run_feedback(run, people["alice"])
    assert seen.withheld == 0 and seen.points_shown and names(seen) == ["shapes"]


# ---- the staff's choice --------------------------------------------------------------------------------------

def test_the_examiner_chooses_the_release_on_the_round_rules_form_and_it_is_audited(client, people, assignment):
    course_round = assignment.round
    client.force_login(people["erik"])
    page = client.get(reverse("exam:accommodations", args=[course_round.pk])).content.decode()
    assert 'name="hidden_feedback"' in page
    response = client.post(reverse("exam:round_settings", args=[course_round.pk]), {
        "late_policy": "accept", "max_group_size": 2, "students_form_groups": "on",
        "hidden_feedback": "after_deadline"})
    assert response.status_code == 302
    assert RoundSettings.of(course_round).hidden_feedback == "after_deadline"
    entry = AuditEntry.objects.get(action="round.settings")
    assert entry.before["hidden_feedback"] == "at_once" and entry.after["hidden_feedback"] == "after_deadline"
    client.force_login(people["tina"])  # a TA does not change the round's rules
    assert client.post(reverse("exam:round_settings", args=[course_round.pk]),
                       {"hidden_feedback": "at_once"}).status_code == 403


# ---- every place a student sees a run ------------------------------------------------------------------------

def test_the_pages_hold_back_hidden_results_and_the_total_until_the_deadline(client, people, assignment):
    after_deadline(assignment.round, people["erik"])
    run = graded(assignment, people["alice"])
    client.force_login(people["alice"])
    page = client.get(reverse("submission", args=[run.submission_id])).content.decode()
    assert "check shapes" in page and "check nll" not in page and HIDDEN_FEEDBACK not in page
    assert 'id="withheld"' in page and "Points:" not in page and "3 / 6" not in page
    assert "full result from" in page  # the badge
    assert "check modes" not in page and STAFF_NOTE not in page
    assert client.get(reverse("run_artifact", args=[run.pk, "samples"])).status_code == 404
    run.checks.filter(name="nll").update(passed=True, status="passed")  # now every E check passed: tier E
    for url, tier_cell in tier_cells(assignment):
        page = client.get(url).content.decode()
        assert tier_cell.format("after the deadline") in page and "3 / 6" not in page, url

    client.force_login(people["tina"])
    staff_page = client.get(reverse("submission", args=[run.submission_id])).content.decode()
    assert HIDDEN_FEEDBACK in staff_page and STAFF_NOTE in staff_page and "Points:" in staff_page


def tier_cells(assignment) -> list[tuple[str, str]]:
    """The round page and the results page, each with its tier cell's markup."""
    return [(reverse("round", args=[assignment.round_id]), '<td class="tier">{}</td>'),
            (reverse("exam:my_results", args=[assignment.round_id]), "<td>{}</td>")]


def test_after_the_deadline_the_pages_show_everything_a_student_may_see(client, people, assignment):
    after_deadline(assignment.round, people["erik"])
    run = graded(assignment, people["alice"])
    run.checks.filter(name="nll").update(passed=True, status="passed")
    assignment.deadline = timezone.now() - dt.timedelta(minutes=1)
    assignment.save()
    client.force_login(people["alice"])
    page = client.get(reverse("submission", args=[run.submission_id])).content.decode()
    assert HIDDEN_FEEDBACK in page and "Points:" in page and 'id="withheld"' not in page and STAFF_NOTE not in page
    assert client.get(reverse("run_artifact", args=[run.pk, "samples"])).status_code == 200
    assert client.get(reverse("run_artifact", args=[run.pk, "hidden-samples"])).status_code == 404
    for url, tier_cell in tier_cells(assignment):
        assert tier_cell.format("E") in client.get(url).content.decode(), url


def _bearer(user, scope: str) -> dict:
    _token, secret = AccessToken.issue(user, name="test", days=30, scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_api_follows_the_same_rule(client, people, assignment):
    after_deadline(assignment.round, people["erik"])
    run = graded(assignment, people["alice"])
    body = client.get(f"/api/v1/runs/{run.pk}", **_bearer(people["alice"], "student")).json()
    assert [c["name"] for c in body["checks"]] == ["shapes"] and body["hidden_withheld"] == 1
    assert body["points"] is None and body["all_passed"] is None and body["artifacts"] == []
    assert body["hidden_shown_from"] is not None
    picture = client.get(f"/api/v1/runs/{run.pk}/artifacts/samples.png", **_bearer(people["alice"], "student"))
    assert picture.status_code == 404
    parts = client.get(f"/api/v1/parts?round_id={assignment.round_id}", **_bearer(people["alice"], "student")).json()
    assert parts[0]["tier_reached"] is None
    staff = client.get(f"/api/v1/runs/{run.pk}", **_bearer(people["tina"], "staff")).json()
    assert [c["name"] for c in staff["checks"]] == ["shapes", "nll", "modes"] and staff["points"] == 3


@pytest.mark.parametrize("released", [False, True])
def test_the_result_e_mail_states_the_total_only_when_the_page_does(people, assignment, released):
    after_deadline(assignment.round, people["erik"])
    if released:
        assignment.deadline = timezone.now() - dt.timedelta(minutes=1)
        assignment.save()
    run = graded(assignment, people["alice"])
    notification = Notification.objects.create(user=people["alice"], kind=Kind.RESULT_READY, key=f"run:{run.pk}")
    assert ("It scored 3 of 6 points" in compose(notification).body) is released
