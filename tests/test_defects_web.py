"""The web defects of issue 12, each with a test that failed before its fix: parts in course order, the tier a
student reached, a run's points total, every part in an oral block, groups (atomic, never of size 0, gone when
empty, who sees what) and form tokens (scoped to their assignment, a clear message when missing)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from courseware.models import Assignment, CheckResult, Enrollment, Part, PartVersion, Role, Submission
from examination.models import AuditEntry, Group, RoundSettings
from examination.policy import load_policy
from examination.results import RoundResults
from grader.parts import all_parts, load_part

from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)

COURSE_ORDER = ["mdn", "autoregressive", "flows", "vae", "diffusion", "gan", "evaluation", "hybrid"]


def offer(course_round, slug: str, **fields) -> Assignment:
    """Offer another real part in the round (its current version imported from disk)."""
    spec = load_part(slug)
    part = Part.objects.create(slug=slug, title=spec.title)
    part.current_version = PartVersion.objects.create(part=part, content_hash=spec.content_hash, manifest=spec.manifest)
    part.save()
    fields.setdefault("deadline", course_round.assignments.get(part__slug="mdn").deadline)
    return Assignment.objects.create(round=course_round, part=part, **fields)


def as_file(name: str, data: bytes):
    f = io.BytesIO(data)
    f.name = name
    return f


def post_upload(client, assignment, name: str, token: str | None):
    data = {"files": [as_file(name, b"x = 1\n")], "declaration": "none"}
    if token is not None:
        data["client_token"] = token
    return client.post(reverse("submit", args=[assignment.pk]), data)


@pytest.fixture
def archive_root(settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return settings.ARCHIVE_ROOT


# ---- course order --------------------------------------------------------------------------------------------

def test_parts_follow_the_course_order_on_the_round_page_the_dashboard_and_the_export(client, people, assignment):
    """Made in alphabetical order with the same deadline, as an admin would: listed as the course gives them."""
    for slug in ("flows", "hybrid", "vae"):
        offer(assignment.round, slug)
    expected = ["mdn", "flows", "vae", "hybrid"]
    titles = {a.part.slug: a.part.title for a in assignment.round.assignments.select_related("part")}

    client.force_login(people["alice"])
    page = client.get(reverse("round", args=[assignment.round.pk])).content.decode()
    assert sorted(expected, key=lambda slug: page.index(titles[slug])) == expected

    client.force_login(people["tina"])
    dashboard = client.get(reverse("exam:dashboard", args=[assignment.round.pk])).content.decode()
    header = re.search(r'<table class="grid" id="students">\s*<thead>(.*?)</thead>', dashboard, re.S).group(1)
    assert re.findall(r"<th>([a-z]+)</th>", header) == expected
    export = client.get(reverse("exam:export_results", args=[assignment.round.pk]))
    columns = next(csv.reader(io.StringIO(b"".join(export).decode() if export.streaming else export.content.decode())))
    assert [c.removesuffix("_points") for c in columns if c.endswith("_points")] == expected


def test_the_demo_rounds_deadlines_follow_the_course_order(db):
    call_command("import_assignments", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    by_deadline = Assignment.objects.filter(round__code="DEMO").order_by("deadline").values_list("part__slug", flat=True)
    assert list(by_deadline) == COURSE_ORDER


def test_every_part_of_the_set_is_in_an_oral_block():
    """The hybrid part had none ("oral none" in every proposal): a part without a block is never examined orally."""
    policy = load_policy()
    assert [p.slug for p in all_parts() if policy.block_of(p.slug) is None] == []


# ---- the tier a student reached, the points of a run -------------------------------------------------------------

def tier_cell(page: str, title: str) -> str:
    return re.search(re.escape(title) + r"</a></td>\s*<td[^>]*>([^<]*)</td>", page).group(1).strip()


def test_the_round_pages_tier_column_shows_the_tier_the_student_reached(client, people, assignment):
    title = assignment.part.title
    graded_submission(assignment, people["alice"], failing=("nll",))
    client.force_login(people["alice"])
    assert tier_cell(client.get(reverse("round", args=[assignment.round.pk])).content.decode(), title) == "—"

    passed = graded_submission(assignment, people["bob"])
    CheckResult.objects.create(run=passed.latest_run, order=99, name="arm_kl", title="arm", tier="C", passed=True,
                               points=1, max_points=1)
    client.force_login(people["bob"])
    assert tier_cell(client.get(reverse("round", args=[assignment.round.pk])).content.decode(), title) == "C"


def test_the_result_page_shows_the_runs_points_total(client, people, assignment):
    submission = graded_submission(assignment, people["alice"])  # all passed: 10 of 10 points
    client.force_login(people["alice"])
    page = client.get(reverse("submission", args=[submission.pk])).content.decode()
    assert "all checks passed" in page and "10 / 10" in page


# ---- groups ----------------------------------------------------------------------------------------------------------

def test_a_round_cannot_have_groups_of_zero(client, people, course_round):
    client.force_login(people["erik"])
    client.post(reverse("exam:round_settings", args=[course_round.pk]),
                {"late_policy": "accept", "max_group_size": 0, "students_form_groups": "on"})
    assert RoundSettings.of(course_round).max_group_size == 2


def test_creating_a_group_is_all_or_nothing(client, people, course_round):
    """Settings saved before sizes were checked may say 0: the creator cannot join, so no group is made."""
    RoundSettings.objects.create(round=course_round, max_group_size=0)
    client.force_login(people["alice"])
    response = client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Solo"}, follow=True)
    assert "full" in response.content.decode()
    assert not Group.objects.exists()


def test_a_group_left_empty_is_deleted(client, people, course_round):
    client.force_login(people["alice"])
    client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Short-lived"})
    group = Group.objects.get()
    client.post(reverse("exam:group_remove_member", args=[course_round.pk, group.pk, people["alice"].pk]))
    assert not Group.objects.exists()
    actions = list(AuditEntry.objects.filter(target=f"Group#{group.pk}").order_by("pk").values_list("action", flat=True))
    assert actions[-1] == "group.deleted"


def test_members_share_the_work_made_while_they_were_members_and_the_join_code_changes_when_one_leaves(
        client, people, assignment, archive_root, django_user_model):
    alice, bob = people["alice"], people["bob"]
    course_round = assignment.round
    RoundSettings.objects.create(round=course_round, max_group_size=3)
    carol = django_user_model.objects.create_user("carol", password="carol-pw-2601")
    Enrollment.objects.create(user=carol, round=course_round, role=Role.STUDENT)
    client.force_login(alice)
    client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Team"})
    group = Group.objects.get()
    client.force_login(bob)
    client.post(reverse("exam:group_join", args=[course_round.pk]), {"join_code": group.join_code})
    alices = graded_submission(assignment, alice)
    assert alices.group == group

    client.force_login(alice)
    client.post(reverse("exam:group_remove_member", args=[course_round.pk, group.pk, alice.pk]))
    old_code, group = group.join_code, Group.objects.get()
    assert group.join_code != old_code  # Alice cannot hand the old code to anyone
    client.force_login(carol)
    client.post(reverse("exam:group_join", args=[course_round.pk]), {"join_code": old_code})
    assert group.members == [bob]
    client.post(reverse("exam:group_join", args=[course_round.pk]), {"join_code": group.join_code})
    assert group.members == [bob, carol]

    # Carol joined after Alice submitted and Alice has left: not Carol's work, not Carol's to read.
    for name in ("submission", "archive"):
        assert client.get(reverse(name, args=[alices.pk])).status_code == 404, name
    assert alices.visible_to(bob) and alices.visible_to(alice)  # Bob was in the group then; Alice made it
    bobs = graded_submission(assignment, bob, when=timezone.now() + dt.timedelta(seconds=1))
    assert bobs.visible_to(carol) and not bobs.visible_to(alice)
    results = RoundResults(course_round, load_policy())
    assert results.row(carol).cells[0].submission == bobs
    assert results.row(alice).cells[0].submission == alices


# ---- form tokens -------------------------------------------------------------------------------------------------------

def test_a_token_from_another_assignments_form_submits_to_this_assignment(
        client, people, assignment, archive_root, django_capture_on_commit_callbacks):
    flows = offer(assignment.round, "flows")
    client.force_login(people["alice"])
    with django_capture_on_commit_callbacks(execute=False):
        assert post_upload(client, assignment, "mdn.py", "same-token").status_code == 302
        response = post_upload(client, flows, "flows.py", "same-token")
    submission = Submission.objects.filter(assignment=flows).first()
    assert submission is not None, "the flows upload was taken for the mdn submission"
    assert response["Location"] == reverse("submission", args=[submission.pk])


def test_a_form_without_its_token_gets_a_clear_message_and_can_be_sent_again(
        client, people, assignment, archive_root, django_capture_on_commit_callbacks):
    client.force_login(people["alice"])
    response = post_upload(client, assignment, "mdn.py", None)
    page = response.content.decode()
    assert response.status_code == 400 and "without its submission token" in page
    assert not Submission.objects.exists()
    fresh = re.search(r'name="client_token" value="([^"]+)"', page).group(1)
    with django_capture_on_commit_callbacks(execute=False):
        assert post_upload(client, assignment, "mdn.py", fresh).status_code == 302
    assert Submission.objects.count() == 1
