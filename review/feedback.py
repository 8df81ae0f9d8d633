"""What of a grading run a viewer sees: the one home of that rule.

- Staff of the round see everything, always: every check (staff-only ones too), every picture, the total.
- Anyone else who may read the submission (its submitter; a group member who shares it, by
  `GroupMembership.shares`, which `Submission.visible_to` asks) sees the public and hidden checks and the
  pictures drawn for students, never staff-only checks or pictures.
- Where the round shows hidden checks' results only after the deadline (`RoundSettings.hidden_feedback`),
  a student sees, until their own deadline for the part has passed (with extensions: the deadline service,
  `examination.deadlines`), the public checks only. The total, the "all checks passed" badge, the tier
  reached and the pictures stay back as well: each would tell the hidden checks' outcome.

Every page that shows a run to a student asks here: the submission page and its badges, the round and
results pages (the tier), the REST API and the "result ready" e-mail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils import timezone

from courseware.models import Assignment, CheckResult, CourseRound, GradingRun, RunArtifact
from examination.deadlines import RoundDeadlines
from examination.models import RoundSettings


@dataclass(frozen=True)
class RunFeedback:
    """One run as one viewer may see it."""

    run: GradingRun
    staff: bool
    checks: list[CheckResult] = field(default_factory=list)
    withheld: int = 0  # hidden checks whose results this viewer sees later
    withheld_until: dt.datetime | None = None  # when they will (None: nothing is held back)

    @property
    def summary_shown(self) -> bool:
        """The total, the badge and the tier: shown only when no hidden result is held back."""
        return self.withheld_until is None

    @property
    def points_shown(self) -> bool:
        return self.run.points_shown and self.summary_shown

    @property
    def artifacts(self) -> QuerySet[RunArtifact]:
        """The pictures without their bytes (those are served one by one, by `run_artifact`)."""
        pictures = self.run.artifacts.defer("data")
        if self.staff:
            return pictures
        if not self.run.is_finished or not self.summary_shown:
            return pictures.none()
        return pictures.filter(audience="student")


class FeedbackRules:
    """The rule for one viewer in one round, with the round's settings and the viewer's extensions loaded
    once, so a page with many runs asks the database a fixed number of times.

    `staff` overrides who counts as staff: the API passes whether the request's token has staff powers (a
    staff member using a student token sees what a student sees).
    """

    def __init__(self, course_round: CourseRound, viewer, *, staff: bool | None = None,
                 now: dt.datetime | None = None):
        self.viewer = viewer
        self.staff = course_round.is_staff(viewer) if staff is None else staff
        self.now = now or timezone.now()
        self._deadlines = None if self.staff else RoundDeadlines(course_round, [viewer])

    def withheld_until(self, assignment: Assignment) -> dt.datetime | None:
        """None when this viewer sees hidden checks' results for the assignment now; otherwise the moment
        they will: the viewer's own deadline for it."""
        if self._deadlines is None or self._deadlines.settings.hidden_feedback == RoundSettings.HiddenFeedback.AT_ONCE:
            return None
        deadline = self._deadlines.deadline(assignment, self.viewer)
        return None if deadline.passed(self.now) else deadline.at

    def run(self, run: GradingRun) -> RunFeedback:
        if self.staff:
            return RunFeedback(run, staff=True, checks=list(run.checks.all()) if run.is_finished else [])
        if not run.is_finished:
            return RunFeedback(run, staff=False)
        checks = list(run.checks.exclude(visibility=CheckResult.Visibility.STAFF))
        hidden = [c for c in checks if c.visibility == CheckResult.Visibility.HIDDEN]
        until = self.withheld_until(run.submission.assignment) if hidden else None
        if until is None:
            return RunFeedback(run, staff=False, checks=checks)
        public = [c for c in checks if c.visibility != CheckResult.Visibility.HIDDEN]
        return RunFeedback(run, staff=False, checks=public, withheld=len(hidden), withheld_until=until)

    def tier(self, run: GradingRun | None, tier: str | None) -> str | None:
        """The tier a run reached as this viewer may see it: None while its hidden results are held back."""
        if run is None or tier is None:
            return tier
        return tier if self.run(run).summary_shown else None


def run_feedback(run: GradingRun, viewer, *, staff: bool | None = None, now: dt.datetime | None = None) -> RunFeedback:
    """The one-off form of `FeedbackRules(...).run(run)`."""
    return FeedbackRules(run.submission.assignment.round, viewer, staff=staff, now=now).run(run)
