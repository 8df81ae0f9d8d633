"""Who a person is, whichever way they arrive: KTH single sign-on, a Canvas (LTI) launch or roster sync,
or a roster file. The one rule: a person is matched on their KTH id (`StudentProfile.kth_id`, what Ladok
knows them by), never on an e-mail address or a name; the first time an id is seen a user is made for it.
Enrolments made by any of these paths go through `enroll`, which audits them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from courseware.models import STAFF_ROLES, CourseRound, Enrollment, Role
from examination.models import AuditEntry, StudentProfile

KTH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
USERNAME = re.compile(r"^[\w.+-]{1,150}$")


@dataclass(frozen=True)
class Person:
    """What an identity source says about someone; only `kth_id` identifies them."""

    kth_id: str
    username: str = ""
    email: str = ""
    given_name: str = ""
    family_name: str = ""

    def validated(self) -> Person:
        """The same person with trimmed fields, or a ValidationError in the words of whoever sent it."""
        kth_id = self.kth_id.strip()
        if not kth_id:
            raise ValidationError("The KTH id is missing.")
        if "@" in kth_id or not KTH_ID.match(kth_id):
            raise ValidationError(f"{kth_id!r} is not a KTH id (letters and digits, e.g. u1abcdef; not an e-mail address).")
        email = self.email.strip()
        if email and ("@" not in email or " " in email):
            raise ValidationError(f"{email!r} is not an e-mail address.")
        return Person(kth_id=kth_id, username=self.username.strip(), email=email,
                      given_name=self.given_name.strip()[:150], family_name=self.family_name.strip()[:150])


def find_user(pk: int):
    return get_user_model().objects.get(pk=pk)


def find(kth_id: str):
    """The user with this KTH id, or None."""
    profile = StudentProfile.objects.select_related("user").filter(kth_id=kth_id.strip()).first()
    return profile.user if profile else None


def _free_username(person: Person) -> str:
    """The person's own username where it is free and valid, else their KTH id (unique by construction),
    with a suffix only if a local account already took that name."""
    User = get_user_model()
    for candidate in (person.username, person.kth_id):
        if candidate and USERNAME.match(candidate) and not User.objects.filter(username=candidate).exists():
            return candidate
    n = 2
    while User.objects.filter(username=f"{person.kth_id}-{n}").exists():
        n += 1
    return f"{person.kth_id}-{n}"


def find_or_create(person: Person) -> tuple[object, bool]:
    """The user with this person's KTH id, made (with a profile and no usable password) if none; returns
    (user, created). Details of an existing user are refreshed by `update_details`, not here."""
    person = person.validated()
    if (user := find(person.kth_id)) is not None:
        return user, False
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User(username=_free_username(person), email=person.email, first_name=person.given_name,
                        last_name=person.family_name)
            user.set_unusable_password()
            user.save()
            StudentProfile.objects.create(user=user, kth_id=person.kth_id)
    except IntegrityError:  # the same person arriving twice at the same moment (two tabs, sync + launch)
        if (user := find(person.kth_id)) is None:
            raise
        return user, False
    return user, True


def create_unidentified(username: str, details: Person):
    """A user for someone whose KTH id we were not told (a platform that keeps it back): no profile, so the
    Ladok file and the dashboard show the id as missing until staff add it."""
    User = get_user_model()
    user = User(username=_free_username(Person(kth_id=username, username=username)), email=details.email,
                first_name=details.given_name, last_name=details.family_name)
    user.set_unusable_password()
    user.save()
    return user


def update_details(user, person: Person) -> bool:
    """Names and e-mail from the identity source, where it gives them; returns whether anything changed.
    The username and the KTH id never change here."""
    email = person.email.strip() if "@" in person.email else ""
    changes = {field: value for field, value in (("email", email), ("first_name", person.given_name.strip()[:150]),
                                                 ("last_name", person.family_name.strip()[:150]))
               if value and getattr(user, field) != value}
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
    return bool(changes)


def enroll(user, course_round: CourseRound, role: str, *, by=None, source: str) -> str:
    """Put a user in a round with a role, audited; returns "added", "changed" or "unchanged".
    `source` says which path did it (roster file, lti launch, nrps sync) for the audit log."""
    with transaction.atomic():
        enrollment, created = Enrollment.objects.get_or_create(user=user, round=course_round,
                                                               defaults={"role": role})
        if not created and enrollment.role == role:
            return "unchanged"
        before = None if created else {"role": enrollment.role}
        if not created:
            enrollment.role = role
            enrollment.save(update_fields=["role"])
        AuditEntry.record(actor=by, action="enrollment.added" if created else "enrollment.role_changed",
                          obj=enrollment, course_round=course_round, student=user, before=before,
                          after={"role": role, "source": source})
    return "added" if created else "changed"


def unenroll(user, course_round: CourseRound, *, by=None, source: str) -> bool:
    """Take a student who left the course out of the round, audited; returns whether they were taken out.
    A student with work in the round (a submission or a grade decision) stays: their record must remain
    examinable, so staff decide about them."""
    enrollment = Enrollment.objects.filter(user=user, round=course_round).first()
    if enrollment is None or has_work(user, course_round):
        return False
    with transaction.atomic():
        AuditEntry.record(actor=by, action="enrollment.removed", obj=enrollment, course_round=course_round,
                          student=user, before={"role": enrollment.role}, after={"source": source})
        enrollment.delete()
    return True


def has_work(user, course_round: CourseRound) -> bool:
    return (user.submissions.filter(assignment__round=course_round).exists()
            or user.grade_decisions.filter(round=course_round).exists())


def is_staff_person(user) -> bool:
    """Staff of any round, or a Django staff account: who may still use a local password when local
    login is switched off for students."""
    return bool(user.is_staff or user.is_superuser
                or Enrollment.objects.filter(user=user, role__in=STAFF_ROLES).exists())


__all__ = ["Person", "Role", "enroll", "find", "find_or_create", "has_work", "is_staff_person", "unenroll",
           "update_details"]
