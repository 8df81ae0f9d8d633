"""Examination: oral sessions, components recorded by staff, groups, accommodations, re-examination,
grade decisions and the audit log.

Each model carries its own rules (who may decide, what may change, how a save conflicts), so views stay
thin. Decisions and the audit log are append-only: their rows are never updated or deleted, through any
view, the admin or a queryset; a changed grade is a new decision pointing at the one it replaces.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MinValueValidator, URLValidator
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from courseware.models import CourseRound, Enrollment, Part, Role, Submission
from examination.policy import GRADES, Policy, Proposal

User = settings.AUTH_USER_MODEL

# Video links are shown to staff as links: only the web's own schemes, never javascript: or file:.
http_url = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// link.")


class Outcome(models.TextChoices):
    PASSED = "passed", "Passed"
    PARTLY = "partly", "Partly"
    FAILED = "failed", "Failed"


def is_student(course_round: CourseRound, user) -> bool:
    return course_round.enrollments.filter(user=user, role=Role.STUDENT).exists()


def is_examiner(course_round: CourseRound, user) -> bool:
    """Only the round's examiner decides grades and accommodations: not a TA, not a superuser."""
    return user.is_authenticated and course_round.role_of(user) == Role.EXAMINER


# ---- append-only ----------------------------------------------------------------------------------

class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionDenied(f"{self.model.__name__} rows are append-only")

    def delete(self):
        raise PermissionDenied(f"{self.model.__name__} rows are append-only")


class AppendOnly(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionDenied(f"{type(self).__name__} rows are append-only: record a new one instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied(f"{type(self).__name__} rows are append-only")


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """Field values as JSON-safe data for the audit log."""
    out = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, models.Model):
            value = value.pk
        elif isinstance(value, (dt.datetime, dt.date)):
            value = value.isoformat()
        out[name] = value
    return out


class AuditEntry(AppendOnly):
    """Who changed what, when, with the values before and after: grades, oral outcomes, components,
    accommodations, re-examinations, groups (created, members, deleted), round settings, and what staff
    change in the admin (assignments, rounds). Results are not edited by anyone: the admin shows them
    read-only, and only the grader writes them."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    round = models.ForeignKey(CourseRound, null=True, on_delete=models.PROTECT, related_name="audit_entries")
    student = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=100, help_text="Model and id, e.g. GradeDecision#7")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"

    @classmethod
    def record(cls, *, actor, action: str, obj: models.Model, course_round: CourseRound | None,
               student=None, before: dict | None = None, after: dict | None = None) -> AuditEntry:
        return cls.objects.create(actor=actor if actor and actor.is_authenticated else None, round=course_round,
                                  student=student, action=action, target=f"{type(obj).__name__}#{obj.pk}",
                                  before=before, after=after)


# ---- people ---------------------------------------------------------------------------------------

class StudentProfile(models.Model):
    """The identifier the student register (Ladok) knows a student by. Never an e-mail address, and no
    personnummer: KTH's own user id is enough to match a row in Ladok."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="student_profile")
    kth_id = models.CharField("KTH id", max_length=32, unique=True, help_text="e.g. u1abcdef")

    def __str__(self) -> str:
        return f"{self.user} ({self.kth_id})"

    def clean(self) -> None:
        if "@" in self.kth_id:
            raise ValidationError({"kth_id": "An identifier, not an e-mail address."})


class RoundSettings(models.Model):
    """Examination rules that vary per round. They change only through `save_by`, which audits the change.
    How the late policy applies to a student is decided in `examination.deadlines`."""

    class LatePolicy(models.TextChoices):
        ACCEPT = "accept", "Accept late work and flag it for the examiner"
        REFUSE = "refuse", "Refuse work after the (possibly extended) deadline"

    round = models.OneToOneField(CourseRound, on_delete=models.CASCADE, related_name="exam_settings")
    late_policy = models.CharField(max_length=8, choices=LatePolicy.choices, default=LatePolicy.ACCEPT)
    max_group_size = models.PositiveIntegerField(default=2, validators=[MinValueValidator(1)],
                                                 help_text="At least 1: a group has its creator in it.")
    students_form_groups = models.BooleanField(default=True, help_text="Students may create and join groups.")

    class HiddenFeedback(models.TextChoices):
        """When students see the results of hidden checks (issue 17); who sees what is `review.feedback`."""

        AT_ONCE = "at_once", gettext_lazy("As soon as a run is graded")
        AFTER_DEADLINE = "after_deadline", gettext_lazy("Only after the student's own deadline")

    hidden_feedback = models.CharField(
        gettext_lazy("hidden checks' results"), max_length=16, choices=HiddenFeedback.choices,
        default=HiddenFeedback.AT_ONCE,
        help_text=gettext_lazy("Public checks are always shown at once. After the deadline: until a student's own "
                               "deadline (with extensions) has passed they see public checks only, not the total "
                               "or the tier reached."))

    AUDITED = ["late_policy", "max_group_size", "students_form_groups", "hidden_feedback"]

    class Meta:
        verbose_name_plural = "round settings"

    def __str__(self) -> str:
        return f"settings of {self.round}"

    @classmethod
    def of(cls, course_round: CourseRound) -> RoundSettings:
        """The round's settings, or the defaults (unsaved) when nobody set any."""
        return cls.objects.filter(round=course_round).first() or cls(round=course_round)

    def save_by(self, by) -> bool:
        """Validate, save and audit (values before and after); the examiner's page and the admin both
        save through here. Returns whether anything changed (an unchanged save records nothing)."""
        self.full_clean()
        stored = RoundSettings.objects.filter(pk=self.pk).first() if self.pk else None
        before = snapshot(stored or RoundSettings(round=self.round), self.AUDITED)  # the defaults, when none saved
        after = snapshot(self, self.AUDITED)
        if stored is not None and before == after:
            return False
        with transaction.atomic():
            self.save()
            AuditEntry.record(actor=by, action="round.settings", obj=self, course_round=self.round,
                              before=before, after=after)
        return True


# ---- groups ---------------------------------------------------------------------------------------

def _join_code() -> str:
    return secrets.token_hex(4)


class Group(models.Model):
    """Students who submit together. Each member still has an individual oral on the whole solution and
    an individual grade.

    Who a group submission belongs to (who sees it, its archive and results, and whose grade it counts
    for) is one rule, `GroupMembership.shares`, used by the pages and by the results alike:
    - its submitter, always, also after leaving the group;
    - every member who was in the group when it was made, for as long as they stay in it. A student who
      joins later does not see the work from before they joined (it was not theirs), and one who leaves
      no longer sees the group's work, except their own.
    When a member leaves (or is removed), the join code changes: a code given out earlier no longer lets
    anyone in. A group left empty is deleted, unless submissions were made as that group: they keep it,
    empty, as the record of who submitted together. Creation, members and deletion are audited.
    """

    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="groups")
    name = models.CharField(max_length=80)
    join_code = models.CharField(max_length=16, unique=True, default=_join_code,
                                 help_text="Members give it to the classmates they invite.")
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("round", "name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.round})"

    @property
    def members(self) -> list:
        return [m.user for m in self.memberships.select_related("user").order_by("user__username")]

    @classmethod
    def start(cls, course_round: CourseRound, name: str, *, by) -> Group:
        """A new group, all or nothing: staff create it empty; a student (where the round lets students
        form groups) creates it with themselves as its first member, or nothing is created."""
        staff = course_round.is_staff(by)
        if not staff and not (is_student(course_round, by) and RoundSettings.of(course_round).students_form_groups):
            raise PermissionDenied("Groups in this round are formed by staff.")
        name = name.strip()
        taken = ValidationError("Give the group a name no other group in the round has.")
        if not name or course_round.groups.filter(name=name).exists():
            raise taken
        if not staff and cls.of(course_round, by):
            raise ValidationError("You are already in a group; leave it first.")
        try:
            with transaction.atomic():
                group = cls.objects.create(round=course_round, name=name, created_by=by)
                AuditEntry.record(actor=by, action="group.created", obj=group, course_round=course_round,
                                  after={"group": name})
                if not staff:
                    group.add_member(by, by=by)
        except IntegrityError:  # the same name, or the same student, at the same moment from another request
            if course_round.groups.filter(name=name).exists():
                raise taken from None
            raise ValidationError("You are already in a group; leave it first.") from None
        return group

    def add_member(self, user, *, by) -> GroupMembership:
        """Staff add anyone; a student only themselves (by join code), and only where the round lets
        students form groups. The size limit holds for everyone."""
        staff = self.round.is_staff(by)
        settings_ = RoundSettings.of(self.round)
        if not staff and (by != user or not settings_.students_form_groups):
            raise PermissionDenied("Students may only join a group themselves, where the round allows it.")
        if not is_student(self.round, user):
            raise ValidationError(f"{user} is not a student in {self.round}.")
        with transaction.atomic():
            if GroupMembership.objects.filter(round=self.round, user=user).exists():
                raise ValidationError(f"{user} is already in a group in {self.round}; leave it first.")
            if self.memberships.count() >= settings_.max_group_size:
                raise ValidationError(f"The group is full: groups in this round have at most "
                                      f"{settings_.max_group_size} members.")
            membership = GroupMembership.objects.create(group=self, user=user, round=self.round)
            AuditEntry.record(actor=by, action="group.member_added", obj=self, course_round=self.round,
                              student=user, after={"group": self.name, "member": user.username})
        return membership

    def remove_member(self, user, *, by) -> None:
        """The member leaves (or staff remove them); the join code changes, and an empty group goes."""
        if not (self.round.is_staff(by) or by == user):
            raise PermissionDenied("Only staff, or the member themselves, may remove a member.")
        with transaction.atomic():
            deleted, _ = self.memberships.filter(user=user).delete()
            if not deleted:
                return
            AuditEntry.record(actor=by, action="group.member_removed", obj=self, course_round=self.round,
                              student=user, before={"group": self.name, "member": user.username})
            if self.memberships.exists() or self.submissions.exists():
                self.join_code = _join_code()
                self.save(update_fields=["join_code"])
            else:
                AuditEntry.record(actor=by, action="group.deleted", obj=self, course_round=self.round,
                                  before={"group": self.name})
                self.delete()

    @classmethod
    def of(cls, course_round: CourseRound, user) -> Group | None:
        membership = GroupMembership.objects.filter(round=course_round, user=user).select_related("group").first()
        return membership.group if membership else None


class GroupMembership(models.Model):
    """A student's place in a group; `joined_at` decides which of the group's submissions they share."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="group_memberships")
    round = models.ForeignKey(CourseRound, on_delete=models.CASCADE, related_name="+",
                              help_text="Copied from the group: a student is in at most one group per round.")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("round", "user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"

    def shares(self, submission: Submission) -> bool:
        """Whether this member shares a group submission: it was made as their group while they were in it
        (see `Group`); the submitter's own submissions are theirs whatever their group."""
        return submission.group_id == self.group_id and submission.created_at >= self.joined_at


# ---- accommodations and re-examination --------------------------------------------------------------

class Accommodation(models.Model):
    """An examiner's decision for one student: an extended deadline, or adapted examination, based on
    a recommendation from KTH's coordinator for students with disabilities. Revoked, never deleted."""

    class Kind(models.TextChoices):
        EXTENSION = "extension", "Extended deadline"
        ADAPTED = "adapted", "Adapted examination"

    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="accommodations")
    student = models.ForeignKey(User, on_delete=models.PROTECT, related_name="accommodations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    part = models.ForeignKey(Part, null=True, blank=True, on_delete=models.PROTECT,
                             help_text="Empty: every part of the round.")
    extended_deadline = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True, help_text="What is adapted, or why the deadline moves.")
    coordinator_reference = models.CharField(
        max_length=200, help_text="Reference to the disability coordinator's recommendation (or other basis).")
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    AUDITED = ["kind", "part", "extended_deadline", "description", "coordinator_reference", "revoked_at"]

    class Meta:
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.student} in {self.round}"

    def clean(self) -> None:
        if self.kind == self.Kind.EXTENSION and not self.extended_deadline:
            raise ValidationError({"extended_deadline": "An extension needs the new deadline."})
        if self.kind == self.Kind.ADAPTED and not self.description.strip():
            raise ValidationError({"description": "Say what is adapted."})
        if not self.coordinator_reference.strip():
            raise ValidationError({"coordinator_reference": "Refer to the recommendation this is based on."})

    @classmethod
    def grant(cls, *, by, **fields) -> Accommodation:
        accommodation = cls(decided_by=by, **fields)
        if not is_examiner(accommodation.round, by):
            raise PermissionDenied("Only the round's examiner decides accommodations.")
        if not is_student(accommodation.round, accommodation.student):
            raise ValidationError("Accommodations are for students of the round.")
        accommodation.full_clean()
        with transaction.atomic():
            accommodation.save()
            AuditEntry.record(actor=by, action="accommodation.granted", obj=accommodation,
                              course_round=accommodation.round, student=accommodation.student,
                              after=snapshot(accommodation, cls.AUDITED))
        return accommodation

    def revoke(self, *, by) -> None:
        if not is_examiner(self.round, by):
            raise PermissionDenied("Only the round's examiner decides accommodations.")
        if self.revoked_at:
            return
        before = snapshot(self, self.AUDITED)
        with transaction.atomic():
            self.revoked_at, self.revoked_by = timezone.now(), by
            self.save(update_fields=["revoked_at", "revoked_by"])
            AuditEntry.record(actor=by, action="accommodation.revoked", obj=self, course_round=self.round,
                              student=self.student, before=before, after=snapshot(self, self.AUDITED))


class ReExamination(models.Model):
    """A student examined again in a later round. The examiner says which earlier results stand: for a
    kept part the earlier automated result and oral count until the student submits that part anew;
    kept components (e.g. the seminar) count as recorded in the earlier round. The syllabus lets the
    examiner allow another form of examination for a re-examined student: `other_form` says which."""

    student = models.ForeignKey(User, on_delete=models.PROTECT, related_name="reexaminations")
    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="reexaminations",
                              help_text="The round the student is examined in now.")
    earlier_round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="+")
    kept_parts = models.ManyToManyField(Part, blank=True, related_name="+")
    kept_components = models.JSONField(default=list, blank=True)
    other_form = models.TextField(blank=True, help_text="Another form of examination the examiner allows.")
    rationale = models.TextField(blank=True)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("student", "round")]

    def __str__(self) -> str:
        return f"re-examination of {self.student} in {self.round} (from {self.earlier_round})"

    def clean(self) -> None:
        if self.earlier_round_id == self.round_id:
            raise ValidationError("The earlier round must be another round.")
        if self.earlier_round.course_id != self.round.course_id or self.earlier_round.starts_on >= self.round.starts_on:
            raise ValidationError("The earlier round must be an earlier round of the same course.")

    @classmethod
    def decide(cls, *, by, student, course_round: CourseRound, earlier_round: CourseRound, kept_parts=(),
               kept_components=(), other_form: str = "", rationale: str = "") -> ReExamination:
        if not is_examiner(course_round, by):
            raise PermissionDenied("Only the round's examiner decides re-examinations.")
        if not (is_student(course_round, student) and is_student(earlier_round, student)):
            raise ValidationError("The student must be a student of both rounds.")
        reexam = cls(student=student, round=course_round, earlier_round=earlier_round,
                     kept_components=list(kept_components), other_form=other_form, rationale=rationale,
                     decided_by=by)
        reexam.full_clean(exclude=["kept_parts"])
        with transaction.atomic():
            reexam.save()
            reexam.kept_parts.set(kept_parts)
            AuditEntry.record(actor=by, action="reexamination.decided", obj=reexam, course_round=course_round,
                              student=student, after={
                                  "earlier_round": earlier_round.pk, "kept_parts": sorted(p.slug for p in kept_parts),
                                  "kept_components": list(kept_components), "other_form": other_form})
        return reexam


# ---- oral examination -------------------------------------------------------------------------------

class OralQuestion(models.Model):
    """A question from a part's bank (`assignments/lab1/<part>/oral.toml`, imported), or one a
    staff member added during a session (ad hoc: it belongs to that session only). Bank questions
    that disappear from the file are retired, not deleted: recorded answers keep their question."""

    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="oral_questions")
    key = models.CharField(max_length=100, help_text="The bank's id; ad-hoc questions get one made up.")
    outcome = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Syllabus learning outcome.")
    text = models.TextField()
    good_answer = models.TextField(blank=True)
    session = models.ForeignKey("OralSession", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="adhoc_questions")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    retired_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        unique_together = [("part", "key")]
        ordering = ["part", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.part.slug}/{self.key}"

    @property
    def is_adhoc(self) -> bool:
        return self.session_id is not None


class OralSession(models.Model):
    """One oral exam of one student on one block of parts (the policy's blocks). Group members each
    get their own session: every student accounts for the whole solution."""

    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="oral_sessions")
    student = models.ForeignKey(User, on_delete=models.PROTECT, related_name="oral_sessions")
    block = models.CharField(max_length=32)
    opened_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self) -> str:
        return f"oral {self.block} of {self.student} ({self.round})"

    def parts(self, policy: Policy) -> list[Part]:
        """The block's parts offered in this round, in the block's order."""
        block = policy.block(self.block)
        slugs = list(block.parts) if block else []
        offered = {a.part.slug: a.part for a in self.round.assignments.select_related("part")}
        return [offered[s] for s in slugs if s in offered]

    @classmethod
    def open(cls, *, course_round: CourseRound, student, block: str, by, policy: Policy) -> OralSession:
        if not course_round.is_staff(by):
            raise PermissionDenied("Only staff hold oral exams.")
        if not is_student(course_round, student):
            raise ValidationError(f"{student} is not a student in {course_round}.")
        if policy.block(block) is None:
            raise ValidationError(f"No oral block {block!r} in the grade policy.")
        with transaction.atomic():
            session = cls.objects.create(round=course_round, student=student, block=block, opened_by=by)
            for part in session.parts(policy):
                PartOral.objects.create(session=session, part=part)
                for question in part.oral_questions.filter(session__isnull=True, retired_at__isnull=True):
                    OralAnswer.objects.create(session=session, question=question)
        return session

    def add_question(self, *, part: Part, text: str, good_answer: str, by) -> OralAnswer:
        if not self.round.is_staff(by):
            raise PermissionDenied("Only staff hold oral exams.")
        with transaction.atomic():
            question = OralQuestion.objects.create(
                part=part, key=f"adhoc-{secrets.token_hex(6)}", text=text, good_answer=good_answer, session=self,
                created_by=by, order=10_000)
            return OralAnswer.objects.create(session=self, question=question)


@dataclass
class Edit:
    """The result of an optimistic save: saved, or refused because someone else saved first."""

    obj: Any
    conflict: bool = False
    changed: bool = False


class Versioned(models.Model):
    """Optimistic concurrency for work two staff members may edit at once. Each save names the version
    it started from; a save from a stale version is refused and shows the other person's text instead
    of silently overwriting it. The guard is the conditional UPDATE, so it holds on any database."""

    version = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(null=True, blank=True)

    AUDITED: list[str] = []
    AUDIT_ACTION = ""

    class Meta:
        abstract = True

    def audit_context(self) -> tuple[CourseRound, Any]:
        raise NotImplementedError

    def edit(self, *, base_version: int, by, **changes) -> Edit:
        model = type(self)
        with transaction.atomic():
            current = model.objects.get(pk=self.pk)
            if all(getattr(current, k) == v for k, v in changes.items()):
                return Edit(current)  # nothing to save (a repeated or duplicate save)
            if current.version != base_version:
                return Edit(current, conflict=True)
            updated = model.objects.filter(pk=self.pk, version=base_version).update(
                version=F("version") + 1, updated_by=by, updated_at=timezone.now(), **changes)
            if not updated:
                return Edit(model.objects.get(pk=self.pk), conflict=True)
            saved = model.objects.get(pk=self.pk)
            before, after = snapshot(current, self.AUDITED), snapshot(saved, self.AUDITED)
            if before != after:
                course_round, student = saved.audit_context()
                AuditEntry.record(actor=by, action=self.AUDIT_ACTION, obj=saved, course_round=course_round,
                                  student=student, before=before, after=after)
            return Edit(saved, changed=True)


class OralAnswer(Versioned):
    session = models.ForeignKey(OralSession, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(OralQuestion, on_delete=models.PROTECT, related_name="answers")
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    note = models.TextField(blank=True, help_text="Staff only.")

    AUDITED = ["outcome"]
    AUDIT_ACTION = "oral.question_outcome"

    class Meta:
        unique_together = [("session", "question")]
        ordering = ["question__part", "question__order", "question__pk"]

    def __str__(self) -> str:
        return f"{self.question} in {self.session}: {self.outcome or '—'}"

    def audit_context(self):
        return self.session.round, self.session.student

    @property
    def dom_id(self) -> str:
        return f"answer-{self.pk}"

    @property
    def autosave_url(self) -> str:
        return reverse("exam:save_answer", args=[self.session_id, self.pk])


class PartOral(Versioned):
    """The oral's outcome for one part: what the grade policy reads."""

    session = models.ForeignKey(OralSession, on_delete=models.CASCADE, related_name="part_outcomes")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    note = models.TextField(blank=True, help_text="Staff only.")

    AUDITED = ["outcome"]
    AUDIT_ACTION = "oral.part_outcome"

    class Meta:
        unique_together = [("session", "part")]

    def __str__(self) -> str:
        return f"{self.part.slug} in {self.session}: {self.outcome or '—'}"

    def audit_context(self):
        return self.session.round, self.session.student

    @property
    def dom_id(self) -> str:
        return f"part-{self.pk}"

    @property
    def autosave_url(self) -> str:
        return reverse("exam:save_part_oral", args=[self.session_id, self.pk])


class ComponentRecord(Versioned):
    """Staff's record of a component that is not automated (the policy lists them): status, a note, and
    for the presentation a link to the video."""

    class Status(models.TextChoices):
        NOT_DONE = "not_done", "Not done"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="component_records")
    student = models.ForeignKey(User, on_delete=models.PROTECT, related_name="component_records")
    component = models.CharField(max_length=32)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NOT_DONE)
    note = models.TextField(blank=True, help_text="Staff only.")
    link = models.URLField(blank=True, max_length=500, validators=[http_url])

    AUDITED = ["status", "link"]
    AUDIT_ACTION = "component.changed"

    class Meta:
        unique_together = [("round", "student", "component")]

    def __str__(self) -> str:
        return f"{self.component} of {self.student}: {self.status}"

    def audit_context(self):
        return self.round, self.student


# ---- decisions ----------------------------------------------------------------------------------------

class GradeDecision(AppendOnly):
    """The examiner's decision on a student's LAB1 grade, which is the course grade. Append-only: a
    change is a new decision that supersedes the previous one, so the history is the chain."""

    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="grade_decisions")
    student = models.ForeignKey(User, on_delete=models.PROTECT, related_name="grade_decisions")
    grade = models.CharField(max_length=2, choices=[(g, g) for g in GRADES])
    proposed_grade = models.CharField(max_length=2, choices=[(g, g) for g in GRADES])
    proposal = models.JSONField(default=list, help_text="The proposal's explanation when the decision was made.")
    policy_digest = models.CharField(max_length=64, blank=True)
    rationale = models.TextField(blank=True)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="superseded_by")

    class Meta:
        ordering = ["-decided_at", "-pk"]
        constraints = [
            # With the one-to-one above, the decisions for a student form a single chain, never a fork.
            models.UniqueConstraint(fields=["round", "student"], condition=Q(supersedes__isnull=True),
                                    name="one_first_decision_per_student_and_round"),
        ]

    def __str__(self) -> str:
        return f"{self.grade} for {self.student} in {self.round}"

    @classmethod
    def current(cls, course_round: CourseRound, student) -> GradeDecision | None:
        return cls.objects.filter(round=course_round, student=student, superseded_by__isnull=True).first()

    @classmethod
    def decide(cls, *, course_round: CourseRound, student, grade: str, rationale: str, by,
               proposal: Proposal, policy_digest: str = "") -> GradeDecision:
        if not is_examiner(course_round, by):
            raise PermissionDenied("Only the round's examiner decides grades.")
        if not is_student(course_round, student):
            raise ValidationError(f"{student} is not a student in {course_round}.")
        if grade not in GRADES:
            raise ValidationError(f"{grade!r} is not a grade.")
        rationale = rationale.strip()
        if grade != proposal.grade and not rationale:
            raise ValidationError(f"The decision ({grade}) differs from the proposal ({proposal.grade}): "
                                  "give a rationale.")
        with transaction.atomic():
            # Reading the current decision and writing its successor must be one step: the student's
            # enrollment row is locked until the commit, so a second examiner (or a double click) waits
            # and then supersedes this decision instead of forking the chain (PostgreSQL runs both at once).
            Enrollment.objects.select_for_update().filter(round=course_round, user=student).first()
            previous = cls.current(course_round, student)
            decision = cls.objects.create(
                round=course_round, student=student, grade=grade, proposed_grade=proposal.grade,
                proposal=list(proposal.explanation), policy_digest=policy_digest, rationale=rationale,
                decided_by=by, supersedes=previous)
            AuditEntry.record(
                actor=by, action="grade.decided", obj=decision, course_round=course_round, student=student,
                before={"grade": previous.grade, "decision": previous.pk} if previous else None,
                after={"grade": grade, "proposed": proposal.grade, "rationale": rationale})
        return decision

    def history(self) -> list[GradeDecision]:
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.supersedes
        return chain
