"""Everything staff change is audited, and what only the platform writes cannot be changed by hand: groups
(created, members, deleted), round settings (on the page and in the admin), assignments, rounds and roles in
the admin; submissions, runs and check results are read-only in the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from courseware.models import CheckResult, Enrollment, GradingRun, Submission
from examination.models import AuditEntry, Group, RoundSettings

from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)


@pytest.fixture
def admin_user(django_user_model, people, course_round):
    """The course admin: a Django superuser."""
    user = django_user_model.objects.create_superuser("root", password="root-pw-2601")
    return user


def actions(**filters) -> list[str]:
    return list(AuditEntry.objects.filter(**filters).order_by("pk").values_list("action", flat=True))


def test_groups_are_audited_from_creation_to_deletion(client, people, course_round):
    client.force_login(people["tina"])
    client.post(reverse("exam:group_create", args=[course_round.pk]), {"name": "Staff-made"})
    group = Group.objects.get()
    for name in ("alice", "bob"):
        client.post(reverse("exam:group_add_member", args=[course_round.pk, group.pk]), {"username": name})
    for member in (people["alice"], people["bob"]):
        client.post(reverse("exam:group_remove_member", args=[course_round.pk, group.pk, member.pk]))
    assert not Group.objects.exists()
    assert actions(target=f"Group#{group.pk}") == [
        "group.created", "group.member_added", "group.member_added", "group.member_removed",
        "group.member_removed", "group.deleted"]
    created = AuditEntry.objects.get(action="group.created")
    assert created.actor == people["tina"] and created.round == course_round and created.after == {"group": "Staff-made"}


def test_an_empty_group_with_submissions_is_kept_as_their_record(people, assignment):
    group = Group.start(assignment.round, "Kept", by=people["alice"])
    submission = graded_submission(assignment, people["alice"])
    group.remove_member(people["alice"], by=people["alice"])
    assert Group.objects.get(pk=group.pk).members == [] and Submission.objects.get(pk=submission.pk).group == group
    assert "group.deleted" not in actions()


def test_round_settings_changes_are_audited_on_the_page_and_in_the_admin(client, people, course_round, admin_user):
    client.force_login(people["erik"])
    client.post(reverse("exam:round_settings", args=[course_round.pk]),
                {"late_policy": "refuse", "max_group_size": 3, "students_form_groups": "on"})
    client.post(reverse("exam:round_settings", args=[course_round.pk]),  # the same again: nothing to record
                {"late_policy": "refuse", "max_group_size": 3, "students_form_groups": "on"})
    settings_ = RoundSettings.of(course_round)
    client.force_login(admin_user)
    response = client.post(reverse("admin:examination_roundsettings_change", args=[settings_.pk]),
                           {"round": course_round.pk, "late_policy": "accept", "max_group_size": 4,
                            "hidden_feedback": "after_deadline"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    entries = list(AuditEntry.objects.filter(action="round.settings").order_by("pk"))
    assert [(e.actor, e.before["late_policy"], e.after["late_policy"]) for e in entries] == [
        (people["erik"], "accept", "refuse"), (admin_user, "refuse", "accept")]
    assert entries[1].after == {"late_policy": "accept", "max_group_size": 4, "students_form_groups": False,
                                "hidden_feedback": "after_deadline"}
    response = client.post(reverse("admin:examination_roundsettings_change", args=[settings_.pk]),
                           {"round": course_round.pk, "late_policy": "accept", "max_group_size": 0})
    assert response.status_code == 200 and RoundSettings.of(course_round).max_group_size == 4  # refused


def test_assignment_round_and_role_changes_in_the_admin_are_audited(client, people, assignment, admin_user):
    client.force_login(admin_user)
    new_deadline = timezone.localtime(assignment.deadline + dt.timedelta(days=2))
    response = client.post(reverse("admin:courseware_assignment_change", args=[assignment.pk]), {
        "round": assignment.round.pk, "part": assignment.part.pk,
        "opens_at_0": f"{timezone.localtime(assignment.opens_at):%Y-%m-%d}",
        "opens_at_1": f"{timezone.localtime(assignment.opens_at):%H:%M:%S}",
        "deadline_0": f"{new_deadline:%Y-%m-%d}", "deadline_1": f"{new_deadline:%H:%M:%S}",
        "max_submissions_per_day": 3, "order": 0})
    assert response.status_code == 302, response.content.decode()[-3000:]
    entry = AuditEntry.objects.get(action="admin.assignment.changed")
    assert entry.before["max_submissions_per_day"] == 5 and entry.after["max_submissions_per_day"] == 3
    assert entry.round == assignment.round and entry.actor == admin_user

    enrollment = Enrollment.objects.get(user=people["bob"], round=assignment.round)
    response = client.post(reverse("admin:courseware_enrollment_change", args=[enrollment.pk]),
                           {"user": people["bob"].pk, "round": assignment.round.pk, "role": "ta"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    entry = AuditEntry.objects.get(action="admin.enrollment.changed")
    assert (entry.before["role"], entry.after["role"]) == ("student", "ta")


def test_results_submissions_and_groups_are_read_only_in_the_admin(client, people, assignment, admin_user):
    submission = graded_submission(assignment, people["alice"], failing=("nll",))
    run = submission.latest_run
    check = run.checks.get(name="nll")
    group = Group.start(assignment.round, "G", by=people["bob"])
    client.force_login(admin_user)
    for model, obj in [("courseware_checkresult", check), ("courseware_gradingrun", run),
                       ("courseware_submission", submission), ("examination_group", group)]:
        assert client.get(reverse(f"admin:{model}_change", args=[obj.pk])).status_code == 200, model  # viewable
        changed = client.post(reverse(f"admin:{model}_change", args=[obj.pk]), {"passed": "on", "points": 4})
        assert changed.status_code == 403, model
        assert client.post(reverse(f"admin:{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403, model
        assert client.get(reverse(f"admin:{model}_add")).status_code == 403, model
    check.refresh_from_db()
    assert not check.passed and check.points == 0
    assert GradingRun.objects.filter(pk=run.pk).exists() and CheckResult.objects.filter(pk=check.pk).exists()
