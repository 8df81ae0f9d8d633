"""Names and Roles (NRPS): the Canvas course's members become the round's people. pylti1p3 fetches the
membership list (the service token, paging); django-lti records the platform users and memberships; we
map roles, match people (`lti.people`), enrol them (`identity.people.enroll`, audited) and say who left.
Someone who left is taken out of the round unless they have work in it (`identity.people.unenroll`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.utils import timezone
from lti_tool.models import LtiUser
from lti_tool.services.nrps import fetch_member_data

from courseware.models import Enrollment
from identity import people as identity
from lti.models import RoundLink
from lti.people import user_for
from lti.roles import our_role


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # left Canvas but have work here: staff decide
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return f"Roster sync failed: {self.error}"
        return (f"{len(self.added)} added, {len(self.changed)} changed role, {len(self.left)} left"
                + (f", {len(self.kept)} left Canvas but keep their work here" if self.kept else ""))


def _label(user) -> str:
    profile = getattr(user, "student_profile", None)
    name = user.get_full_name() or user.username
    return f"{name} ({profile.kth_id})" if profile else name


def sync_roster(link: RoundLink, *, by=None) -> SyncReport:
    """Fetch the Canvas course's members and bring the round in line; records the report on the link."""
    report = SyncReport()
    try:
        members = fetch_member_data(link.context)
    except Exception as exc:  # noqa: BLE001 - any failure talking to Canvas is reported to staff, not raised
        report.error = f"{type(exc).__name__}: {exc}"[:500]
        RoundLink.objects.filter(pk=link.pk).update(synced_at=timezone.now(), sync_report=asdict(report))
        return report
    with transaction.atomic():
        link.context.update_memberships(members)
        present = _enrol_members(link, members, report, by)
        _remove_leavers(link, present, report, by)
        RoundLink.objects.filter(pk=link.pk).update(synced_at=timezone.now(), sync_report=asdict(report))
    return report


def _enrol_members(link: RoundLink, members: list[dict], report: SyncReport, by) -> set[int]:
    registration = link.context.deployment.registration
    present: set[int] = set()
    for member in members:
        role = our_role(member.get("roles", []))
        if role is None or member.get("status", "Active") != "Active":
            continue
        lti_user = LtiUser.objects.get(registration=registration, sub=member["user_id"])
        user = user_for(lti_user, member)
        present.add(user.pk)
        outcome = identity.enroll(user, link.round, role, by=by, source="nrps sync")
        if outcome == "added":
            report.added.append(_label(user))
        elif outcome == "changed":
            report.changed.append(_label(user))
    return present


def _remove_leavers(link: RoundLink, present: set[int], report: SyncReport, by) -> None:
    """Everyone enrolled in the round whom this Canvas course knows (a platform user of this registration)
    and who is no longer an active member."""
    known = LtiUser.objects.filter(registration=link.context.deployment.registration, auth_user__isnull=False,
                                   memberships__context=link.context).values_list("auth_user_id", flat=True)
    gone = Enrollment.objects.filter(round=link.round, user_id__in=set(known) - present).select_related("user")
    for enrollment in gone:
        if identity.unenroll(enrollment.user, link.round, by=by, source="nrps sync"):
            report.left.append(_label(enrollment.user))
        else:
            report.kept.append(_label(enrollment.user))
