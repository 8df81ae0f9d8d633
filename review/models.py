"""Regrade requests: a student asks staff to review one grading run, with a reason; staff answer from a
queue, and may grade the submission again (a new run; the old one stays, as every run does).

The request carries its own rules (who may ask, one open request per run and student, who answers, one
answer per request even when two staff members answer at once), and every step is in the audit log
(`examination.models.AuditEntry`): the question, the answer and the regrade.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from courseware.models import CourseRound, GradingRun
from examination.models import AuditEntry, is_student

REASON_MAX_CHARS = 4000
ANSWER_MAX_CHARS = 4000


class RegradeRequest(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", gettext_lazy("Waiting for staff")
        ANSWERED = "answered", gettext_lazy("Answered")
        REGRADED = "regraded", gettext_lazy("Answered and graded again")

    run = models.ForeignKey(GradingRun, on_delete=models.PROTECT, related_name="regrade_requests",
                            help_text="The run the student asks about.")
    round = models.ForeignKey(CourseRound, on_delete=models.PROTECT, related_name="regrade_requests")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="regrade_requests")
    reason = models.TextField(max_length=REASON_MAX_CHARS)
    asked_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    answer = models.TextField(blank=True, max_length=ANSWER_MAX_CHARS)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    new_run = models.ForeignKey(GradingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                help_text="The run made when staff graded the submission again.")

    class Meta:
        ordering = ["asked_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "student"], condition=Q(status="open"),
                                    name="one_open_regrade_request_per_run_and_student"),
        ]

    def __str__(self) -> str:
        return f"regrade request {self.pk} on run {self.run_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @classmethod
    def ask(cls, run: GradingRun, *, by, reason: str) -> RegradeRequest:
        """A student who may read the run's submission asks for a review of a finished run."""
        submission = run.submission
        course_round = submission.assignment.round
        if not (is_student(course_round, by) and submission.visible_to(by)):
            raise PermissionDenied("Only a student whose submission it is may ask for a review of it.")
        reason = reason.strip()
        if not reason:
            raise ValidationError(gettext("Say what you want reviewed and why: which check, and what you "
                                          "think is wrong with its result."))
        if len(reason) > REASON_MAX_CHARS:
            raise ValidationError(gettext("Keep the reason under %(n)d characters.") % {"n": REASON_MAX_CHARS})
        if not run.is_finished:
            raise ValidationError(gettext("This run is not finished yet: ask once its result is shown."))
        duplicate = ValidationError(gettext("You have already asked for a review of this run; staff will answer "
                                            "that request."))
        if cls.objects.filter(run=run, student=by, status=cls.Status.OPEN).exists():
            raise duplicate
        try:
            with transaction.atomic():
                request = cls.objects.create(run=run, round=course_round, student=by, reason=reason)
                AuditEntry.record(actor=by, action="regrade.requested", obj=request, course_round=course_round,
                                  student=by, after={"run": run.pk, "submission": submission.pk,
                                                     "part": submission.assignment.part.slug, "reason": reason})
        except IntegrityError:  # the same request sent twice at the same moment
            raise duplicate from None
        return request

    def answer_by(self, by, *, answer: str, regrade: bool) -> RegradeRequest:
        """Staff answer an open request, and may grade the submission again. Of two answers at the same
        moment the first counts; the second is refused with who answered."""
        if not self.round.is_staff(by):
            raise PermissionDenied("Only the round's staff answer regrade requests.")
        answer = answer.strip()
        if not answer:
            raise ValidationError(gettext("Write an answer to the student, also when you grade again."))
        if len(answer) > ANSWER_MAX_CHARS:
            raise ValidationError(gettext("Keep the answer under %(n)d characters.") % {"n": ANSWER_MAX_CHARS})
        status = self.Status.REGRADED if regrade else self.Status.ANSWERED
        with transaction.atomic():
            now = timezone.now()
            taken = RegradeRequest.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
                status=status, answer=answer, answered_by=by, answered_at=now)
            if not taken:
                current = RegradeRequest.objects.select_related("answered_by").get(pk=self.pk)
                raise ValidationError(gettext("%(who)s answered this request first.") % {
                    "who": current.answered_by or gettext("Someone")})
            new_run = self._grade_again(by) if regrade else None
            if new_run is not None:
                RegradeRequest.objects.filter(pk=self.pk).update(new_run=new_run)
            AuditEntry.record(actor=by, action="regrade.answered", obj=self, course_round=self.round,
                              student=self.student, before={"status": self.Status.OPEN},
                              after={"status": status, "answer": answer, "run": self.run_id,
                                     "new_run": new_run.pk if new_run else None})
        self.refresh_from_db()
        return self

    def _grade_again(self, by) -> GradingRun:
        """A new run for the same submission, queued after the commit like an upload's
        (`examination.results.regrade_part` does the same for a whole part)."""
        from grader.parts import PartError, load_part
        from grader.tasks import enqueue_on_commit

        submission = self.run.submission
        try:
            queue = load_part(submission.assignment.part.slug).resources.device
        except PartError:
            queue = "cpu"
        new_run = GradingRun.objects.create(submission=submission, queue=queue)
        enqueue_on_commit(new_run.pk)
        AuditEntry.record(actor=by, action="submission.regraded", obj=new_run, course_round=self.round,
                          student=self.student, after={"submission": submission.pk, "previous_run": self.run_id,
                                                       "new_run": new_run.pk, "regrade_request": self.pk})
        return new_run
