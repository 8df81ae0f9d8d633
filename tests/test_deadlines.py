"""The one deadline and lateness service (examination.deadlines): a student's own deadline, lateness, and
whether and why they may submit; the pages show what it decides; no import cycle between the apps' models."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from courseware.models import Assignment, CourseRound, Submission
from examination.deadlines import RefusalKind, RoundDeadlines, deadline_for, is_late, refusal, standing
from examination.models import Accommodation, RoundSettings
from examination.results import RoundResults

from .conftest import REPO
from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)


def extend(people, assignment, student, until, *, part=True) -> Accommodation:
    return Accommodation.grant(by=people["erik"], round=assignment.round, student=people[student], kind="extension",
                               part=assignment.part if part else None, extended_deadline=until,
                               coordinator_reference="Funka 2026/1")


def test_the_students_deadline_is_the_latest_extension_that_applies(people, assignment):
    base = assignment.deadline
    assert deadline_for(assignment, people["alice"]).at == base and not deadline_for(assignment, people["alice"]).extended
    extend(people, assignment, "alice", base + dt.timedelta(days=1), part=False)  # every part of the round
    later = extend(people, assignment, "alice", base + dt.timedelta(days=3))  # this part
    extend(people, assignment, "alice", base - dt.timedelta(days=3))  # never earlier than the part's deadline
    mine = deadline_for(assignment, people["alice"])
    assert mine.at == base + dt.timedelta(days=3) and mine.extended and mine.assignment_deadline == base
    assert deadline_for(assignment, people["bob"]).at == base
    later.revoke(by=people["erik"])
    assert deadline_for(assignment, people["alice"]).at == base + dt.timedelta(days=1)


def test_late_is_after_the_students_own_deadline(people, assignment):
    extend(people, assignment, "alice", assignment.deadline + dt.timedelta(hours=5))
    at = assignment.deadline + dt.timedelta(hours=1)
    assert not is_late(assignment, people["alice"], at) and is_late(assignment, people["bob"], at)
    assert not is_late(assignment, people["bob"], assignment.deadline)  # at the deadline is on time


def test_refusals_are_typed_and_in_the_syllabus_order(people, assignment):
    alice = people["alice"]
    now = timezone.now()
    assert refusal(assignment, alice, now) is None
    Assignment.objects.filter(pk=assignment.pk).update(opens_at=now + dt.timedelta(hours=1))
    assignment.refresh_from_db()
    assert refusal(assignment, alice, now).kind == RefusalKind.NOT_OPEN
    CourseRound.objects.filter(pk=assignment.round_id).update(examinable_until=timezone.localdate(now) - dt.timedelta(days=1))
    assignment.refresh_from_db()
    closed = refusal(assignment, alice, now)
    assert closed.kind == RefusalKind.ROUND_CLOSED and "no longer accepts work" in closed.message


def test_a_refuse_late_round_refuses_after_the_students_own_deadline(people, assignment):
    after = assignment.deadline + dt.timedelta(hours=2)
    assert refusal(assignment, people["bob"], after) is None  # the default policy accepts late work
    RoundSettings.objects.create(round=assignment.round, late_policy=RoundSettings.LatePolicy.REFUSE)
    late = refusal(assignment, people["bob"], after)
    assert late.kind == RefusalKind.DEADLINE_PASSED and "does not accept late work" in late.message
    extend(people, assignment, "alice", after + dt.timedelta(hours=1))
    assert refusal(assignment, people["alice"], after) is None
    words = refusal(assignment, people["alice"], after + dt.timedelta(hours=2)).message
    assert words.startswith("Your extended deadline")


def test_the_daily_limit_is_part_of_the_standing(people, assignment):
    for _ in range(assignment.max_submissions_per_day):
        graded_submission(assignment, people["alice"])
    mine = standing(assignment, people["alice"])
    assert mine.used_today == assignment.max_submissions_per_day and not mine.may_submit
    assert mine.refusal.kind == RefusalKind.DAILY_LIMIT


def test_a_round_loads_its_extensions_once(people, assignment, django_assert_max_num_queries):
    extend(people, assignment, "alice", assignment.deadline + dt.timedelta(days=2))
    rules = RoundDeadlines(assignment.round)
    with django_assert_max_num_queries(0):
        assert rules.deadline(assignment, people["alice"]).extended
        assert not rules.deadline(assignment, people["bob"]).extended


def test_the_late_flag_is_decided_at_upload_and_never_rewritten_by_a_save(people, assignment):
    """A pre_save signal used to recompute `late` on every new row, overwriting what the upload decided."""
    submission = Submission.objects.create(
        assignment=assignment, submitter=people["alice"], sha256="0" * 64, size=1, files=["mdn.py"],
        declaration="none", late=True, created_at=assignment.deadline - dt.timedelta(hours=1))
    submission.refresh_from_db()
    assert submission.late


def test_the_assignment_and_round_pages_show_the_students_own_deadline(client, people, assignment):
    extended = assignment.deadline + dt.timedelta(days=4)
    extend(people, assignment, "alice", extended)
    shown = f"{timezone.localtime(extended):%Y-%m-%d %H:%M}"
    client.force_login(people["alice"])
    page = client.get(reverse("assignment", args=[assignment.pk])).content.decode()
    assert shown in page and "Your extended deadline" in page
    assert shown in client.get(reverse("round", args=[assignment.round.pk])).content.decode()
    assert shown in client.get(reverse("exam:my_results", args=[assignment.round.pk])).content.decode()
    client.force_login(people["bob"])
    assert shown not in client.get(reverse("assignment", args=[assignment.pk])).content.decode()


def test_results_judge_lateness_against_each_members_own_deadline(people, assignment):
    """A group submission after the deadline is late for a member without an extension, on time for one with."""
    alice, bob = people["alice"], people["bob"]
    from examination.models import Group

    group = Group.start(assignment.round, "Pair", by=alice)
    group.add_member(bob, by=bob)
    extend(people, assignment, "bob", assignment.deadline + dt.timedelta(days=1))
    graded_submission(assignment, alice, when=assignment.deadline + dt.timedelta(hours=1))
    results = RoundResults(assignment.round)
    assert results.row(alice).cells[0].late and not results.row(bob).cells[0].late


@pytest.mark.parametrize("module", ["courseware/models.py"])
def test_courseware_models_never_import_examination(module):
    tree = ast.parse(Path(REPO, module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.startswith("examination")]


def test_an_extension_granted_after_a_late_submission_shows_on_every_page(client, people, assignment):
    """The stored flag records what the upload decided; the pages ask the service, so they follow the
    examiner's later decision."""
    submission = graded_submission(assignment, people["alice"], when=assignment.deadline + dt.timedelta(hours=1))
    assert submission.late
    client.force_login(people["alice"])
    urls = [reverse("submission", args=[submission.pk]), reverse("assignment", args=[assignment.pk]),
            reverse("round", args=[assignment.round.pk]), reverse("exam:my_results", args=[assignment.round.pk])]
    assert all('class="badge late">late<' in client.get(url).content.decode() for url in urls)
    extend(people, assignment, "alice", assignment.deadline + dt.timedelta(days=1))
    for url in urls:
        assert 'class="badge late">late<' not in client.get(url).content.decode(), url
