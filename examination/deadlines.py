"""Deadlines and lateness: the one place that decides, for an assignment, a student and a moment, until
when the student may submit, whether a submission is late, and whether (and if not, why) they may submit.

The rules, in the order they are applied:

1. The syllabus: a round accepts work until `CourseRound.examinable_until` (two academic years after the
   course was last given). Nothing reaches past it, not even an extension.
2. A part takes work from `Assignment.opens_at`.
3. The student's deadline is the assignment's deadline moved by the latest extension the examiner
   granted them (for this part, or for every part of the round) and has not revoked; an extension never
   moves a deadline earlier. After it the round's late policy decides: accept the work and flag it late
   for the examiner, or refuse it.
4. At most `Assignment.max_submissions_per_day` submissions in the last 24 hours; runs that failed
   because of the platform do not count (`Assignment.submissions_counted_today`).

It lives in the examination app because extensions and the late policy are examination decisions, and
`courseware.models` never imports it: the model modules depend one way only (examination on courseware).
Every caller asks here: the upload service (`courseware.uploads`), the results behind the grade proposal
and the dashboard (`examination.results`), and the round, assignment and results pages.

`RoundDeadlines` loads a round's extensions and settings once, so a page or a round's results cost two
queries whatever the number of students and parts; the module-level functions are the one-off forms.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.utils import timezone
from django.utils.translation import gettext as _

from courseware.models import Assignment, CourseRound
from examination.models import Accommodation, RoundSettings


class RefusalKind(StrEnum):
    """Why a student may not submit now. Callers branch on the kind, never on the message's words."""

    ROUND_CLOSED = "round_closed"  # past the round's examinable_until (the two-year rule)
    NOT_OPEN = "not_open"  # before the assignment opens
    DEADLINE_PASSED = "deadline_passed"  # after the student's deadline, in a round that refuses late work
    DAILY_LIMIT = "daily_limit"  # the 24-hour submission limit is used up


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    message: str  # in words for the student: what the rule is and what they can do

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Deadline:
    """One student's deadline for one assignment."""

    at: dt.datetime
    assignment_deadline: dt.datetime

    @property
    def extended(self) -> bool:
        return self.at > self.assignment_deadline

    def passed(self, now: dt.datetime) -> bool:
        return now > self.at


@dataclass(frozen=True)
class Standing:
    """What a page tells a student about one assignment at one moment."""

    deadline: Deadline
    now: dt.datetime
    used_today: int
    refusal: Refusal | None

    @property
    def late_now(self) -> bool:
        """A submission made now would be late (accepted and flagged, or refused: see `refusal`)."""
        return self.deadline.passed(self.now)

    @property
    def may_submit(self) -> bool:
        return self.refusal is None


def _local(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


class RoundDeadlines:
    """The deadline rules of one round, with its extensions and settings loaded once.

    `students` limits what is loaded to those students (users or ids); None loads the whole round.
    """

    def __init__(self, course_round: CourseRound, students: Iterable | None = None):
        self.round = course_round
        self.settings = RoundSettings.of(course_round)
        extensions = Accommodation.objects.filter(
            round=course_round, kind=Accommodation.Kind.EXTENSION, revoked_at__isnull=True,
            extended_deadline__isnull=False)
        if students is not None:
            extensions = extensions.filter(student_id__in=[getattr(s, "pk", s) for s in students])
        # student id -> [(part id, or None for every part; the extended deadline)]
        self._extensions: dict[int, list[tuple[int | None, dt.datetime]]] = defaultdict(list)
        for student_id, part_id, until in extensions.values_list("student_id", "part_id", "extended_deadline"):
            self._extensions[student_id].append((part_id, until))

    def deadline(self, assignment: Assignment, student) -> Deadline:
        """The assignment's deadline for this student: the latest extension that applies, if any."""
        applying = [until for part_id, until in self._extensions.get(getattr(student, "pk", student), ())
                    if part_id is None or part_id == assignment.part_id]
        return Deadline(at=max([assignment.deadline, *applying]), assignment_deadline=assignment.deadline)

    def is_late(self, assignment: Assignment, student, when: dt.datetime) -> bool:
        """Whether a submission by this student at `when` is late: after their own deadline."""
        return self.deadline(assignment, student).passed(when)

    def refusal(self, assignment: Assignment, student, now: dt.datetime | None = None) -> Refusal | None:
        """Why `student` may not submit now, in words for the student; None when they may."""
        return self.standing(assignment, student, now).refusal

    def standing(self, assignment: Assignment, student, now: dt.datetime | None = None) -> Standing:
        now = now or timezone.now()
        deadline = self.deadline(assignment, student)
        signed_in = getattr(student, "is_authenticated", True)  # a user, or a student's id
        used = assignment.submissions_counted_today(student, now) if signed_in else 0
        return Standing(deadline=deadline, now=now, used_today=used,
                        refusal=self._refusal(assignment, deadline, now, used))

    def _refusal(self, assignment: Assignment, deadline: Deadline, now: dt.datetime, used: int) -> Refusal | None:
        if not self.round.accepts_work(now):
            return Refusal(RefusalKind.ROUND_CLOSED,
                           _("This round could be examined until %(date)s; it no longer accepts work.")
                           % {"date": f"{self.round.examinable_until:%Y-%m-%d}"})
        if now < assignment.opens_at:
            return Refusal(RefusalKind.NOT_OPEN, _("This part opens at %(when)s.") % {"when": _local(assignment.opens_at)})
        if deadline.passed(now) and self.settings.late_policy == RoundSettings.LatePolicy.REFUSE:
            message = (_("Your extended deadline (%(when)s) has passed and this round does not accept late work. "
                         "Ask the examiner if you have a reason for an extension.") if deadline.extended else
                       _("The deadline (%(when)s) has passed and this round does not accept late work. "
                         "Ask the examiner if you have a reason for an extension."))
            return Refusal(RefusalKind.DEADLINE_PASSED, message % {"when": _local(deadline.at)})
        if used >= assignment.max_submissions_per_day:
            return Refusal(RefusalKind.DAILY_LIMIT,
                           _("You have used all %(limit)d submissions for the last 24 hours. Runs that failed "
                             "because of the platform are not counted.") % {"limit": assignment.max_submissions_per_day})
        return None


def deadline_for(assignment: Assignment, student) -> Deadline:
    return RoundDeadlines(assignment.round, [student]).deadline(assignment, student)


def is_late(assignment: Assignment, student, when: dt.datetime) -> bool:
    return RoundDeadlines(assignment.round, [student]).is_late(assignment, student, when)


def refusal(assignment: Assignment, student, now: dt.datetime | None = None) -> Refusal | None:
    return RoundDeadlines(assignment.round, [student]).refusal(assignment, student, now)


def standing(assignment: Assignment, student, now: dt.datetime | None = None) -> Standing:
    return RoundDeadlines(assignment.round, [student]).standing(assignment, student, now)
