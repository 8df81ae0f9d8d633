"""The course, its rounds, who takes part, what is handed out, what is submitted and how it was graded.

Models carry their own rules (when a run may be claimed, who sees a submission); views stay thin. When a
student may submit, and whether a submission is late, is decided by `examination.deadlines` (extensions
and the late policy are examination decisions); submissions are made by `courseware.uploads`. This module
imports neither, so the two apps' models depend one way only: examination on courseware.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from grader.outcomes import CheckOutcome
from grader.outcomes import Status as OutcomeStatus


class Role(models.TextChoices):
    STUDENT = "student", _("Student")
    TA = "ta", _("Teaching assistant")
    EXAMINER = "examiner", _("Examiner")
    ADMIN = "admin", _("Course admin")


STAFF_ROLES = (Role.TA, Role.EXAMINER, Role.ADMIN)


class Course(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CourseRound(models.Model):
    """One offering of the course (e.g. HT26). Work is refused after `examinable_until`: the syllabus
    lets students be examined for two academic years after the course was last given."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="rounds")
    code = models.CharField(max_length=32, help_text="e.g. HT26")
    name = models.CharField(max_length=200, blank=True)
    starts_on = models.DateField()
    ends_on = models.DateField()
    examinable_until = models.DateField(help_text="Last day on which work for this round is accepted.")

    class Meta:
        unique_together = [("course", "code")]
        ordering = ["-starts_on"]

    def __str__(self) -> str:
        return f"{self.course.code} {self.code}"

    def accepts_work(self, now: dt.datetime | None = None) -> bool:
        today = timezone.localdate(now or timezone.now())
        return today <= self.examinable_until

    def role_of(self, user) -> str | None:
        if not user.is_authenticated:
            return None
        enrollment = self.enrollments.filter(user=user).first()
        return enrollment.role if enrollment else None

    def is_staff(self, user) -> bool:
        return user.is_superuser or self.role_of(user) in STAFF_ROLES


class Enrollment(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    round = models.ForeignKey(CourseRound, on_delete=models.CASCADE, related_name="enrollments")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)

    class Meta:
        unique_together = [("user", "round")]

    def __str__(self) -> str:
        return f"{self.user} in {self.round} as {self.get_role_display()}"


class Part(models.Model):
    """A LAB1 part as the course defines it (folder `assignments/lab1/<slug>`), across all its versions."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    current_version = models.ForeignKey(
        "PartVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def record_version(cls, spec) -> tuple[PartVersion, bool]:
        """The version of a part folder loaded from disk (a `grader.parts.PartSpec`), created the first time
        its content hash is seen, and made the part's current version; returns (version, created).

        Importing the parts and grading a run both come here, so the assignment page always describes the
        version that runs are being graded with, and no run records a version the site does not show.
        """
        with transaction.atomic():
            part, _ = cls.objects.get_or_create(slug=spec.slug, defaults={"title": spec.title})
            version, created = PartVersion.objects.get_or_create(
                part=part, content_hash=spec.content_hash, defaults={"manifest": spec.manifest})
            changes = {}
            if part.title != spec.title:
                changes["title"] = spec.title
            if part.current_version_id != version.pk:
                changes["current_version"] = version
            if changes:
                cls.objects.filter(pk=part.pk).update(**changes)
        return version, created


class PartVersion(models.Model):
    """One content hash of a part's folder, with its manifest (`part.toml`) as it was. Runs record the
    version they were graded with, and every page about a run reads the manifest from there, never from
    the folder on disk, which may have changed since."""

    part = models.ForeignKey(Part, on_delete=models.CASCADE, related_name="versions")
    content_hash = models.CharField(max_length=64)
    manifest = models.JSONField()
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("part", "content_hash")]
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.part.slug}@{self.content_hash[:12]}"

    @property
    def tier(self) -> str:
        """E for a core part that every passing grade needs; C or A for a higher-grade extension part."""
        return str(self.manifest.get("tier", "E"))

    @property
    def max_points(self) -> float:
        return float(sum(float(c.get("points", 0)) for c in self.manifest.get("checks", {}).values()))

    def check_explain(self, name: str) -> str:
        """What a check examines and why, as the part's author wrote it (`explain` in part.toml)."""
        return str(self.manifest.get("checks", {}).get(name, {}).get("explain", ""))


class Assignment(models.Model):
    """A part offered in a round, with its deadline and submission limit."""

    round = models.ForeignKey(CourseRound, on_delete=models.CASCADE, related_name="assignments")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="assignments")
    opens_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField()
    max_submissions_per_day = models.PositiveIntegerField(default=10)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        unique_together = [("round", "part")]
        ordering = ["order", "deadline"]

    def __str__(self) -> str:
        return f"{self.part.title} ({self.round})"

    def submissions_counted_today(self, user, now: dt.datetime | None = None) -> int:
        """Submissions in the last 24 h that count against the limit. A run that ended in an
        infrastructure error, or whose checks the grader's own code failed in, is the platform's fault, not
        the student's, so it does not count."""
        since = (now or timezone.now()) - dt.timedelta(hours=24)
        return (
            self.submissions.filter(submitter=user, created_at__gte=since)
            .exclude(runs__status=GradingRun.Status.ERROR, runs__infrastructure_error=True)
            .exclude(runs__status=GradingRun.Status.DONE, runs__grader_errors__gt=0)
            .distinct()
            .count()
        )


class Submission(models.Model):
    """An uploaded archive, stored content-addressed by the sha256 of its canonical zip (see
    `grader.archives`). Made only by the upload service, `courseware.uploads.submit`, which sets `late`
    (against the student's own deadline, at upload: the record of what the student was told) and `group`
    (the submitter's group then). Pages ask `examination.deadlines` instead of reading `late`, so an
    extension the examiner grants afterwards shows."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="submissions")
    submitter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveIntegerField()
    files = models.JSONField(default=list)
    declaration = models.TextField(help_text="Help received and sources used.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    late = models.BooleanField(default=False)
    client_token = models.CharField(
        max_length=64, blank=True, help_text="From the upload form: a double submit creates one submission, not "
        "two. Unique per student and assignment.")
    group = models.ForeignKey("examination.Group", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="submissions", help_text="Set when the submitter was in a group: "
                              "the submission then belongs to every member.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "submitter", "client_token"], condition=~Q(client_token=""),
                                    name="one_submission_per_assignment_form_token"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.assignment.part.slug} by {self.submitter}"

    @property
    def archive_path(self) -> Path:
        return Path(settings.ARCHIVE_ROOT) / self.sha256[:2] / self.sha256[2:4] / f"{self.sha256}.zip"

    def visible_to(self, user) -> bool:
        """The submitter and the round's staff always; a group member by the group's rule
        (`examination.models.GroupMembership.shares`: in the group when it was made, and still)."""
        if user == self.submitter or self.assignment.round.is_staff(user):
            return True
        if not (self.group_id and user.is_authenticated):
            return False
        membership = self.group.memberships.filter(user=user).first()
        return membership is not None and membership.shares(self)

    @property
    def latest_run(self) -> GradingRun | None:
        return self.runs.order_by("-created_at").first()


class SubmissionLock(models.Model):
    """One row per (assignment, student) that the upload service locks (SELECT ... FOR UPDATE) while it
    counts the student's submissions against the daily limit and writes the new one, so two uploads at
    the same moment cannot both take the last submission of the day. It holds nothing else: the
    submissions themselves are the count. (SQLite ignores the row lock, but there every transaction
    takes the database's write lock at BEGIN: see settings.)"""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="+")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "student"], name="one_lock_per_student_and_assignment")]

    def __str__(self) -> str:
        return f"submission lock of {self.student} on {self.assignment}"


class GradingRun(models.Model):
    """One grading of one submission. The database row, not the broker, is the source of truth:
    a worker claims it atomically with an attempt number and writes results fenced by that number."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        ERROR = "error", _("Error")

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=0)
    part_version = models.ForeignKey(PartVersion, null=True, blank=True, on_delete=models.PROTECT)
    queue = models.CharField(max_length=16, default="cpu")

    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=64, blank=True, help_text="What the worker is doing now.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per phase.")

    backend = models.CharField(max_length=32, blank=True)
    image_digest = models.CharField(max_length=128, blank=True)
    worker_host = models.CharField(max_length=128, blank=True)

    error_reason = models.TextField(blank=True, help_text="Shown to the student.")
    infrastructure_error = models.BooleanField(default=False)
    grader_errors = models.PositiveIntegerField(
        default=0, help_text="Check sections the grader's own code failed in (our bug: the run does not count "
                             "against the student's limit, and staff must look).")
    student_log = models.TextField(blank=True, help_text="Output the student may see (import, training).")
    staff_log = models.TextField(blank=True, help_text="Output during hidden checks and grader detail: staff only.")
    examiner_flags = models.JSONField(
        default=list, blank=True, help_text="What no check could decide, for the examiner and the oral (a training "
        "far sooner than any, samples nearer the training set than fresh data): staff only, never a grade.")

    points = models.FloatField(null=True, blank=True)
    max_points = models.FloatField(null=True, blank=True)
    all_passed = models.BooleanField(null=True, blank=True)
    fingerprints = models.JSONField(
        default=dict, blank=True, help_text="Each module-level entry point's answer on fixed probe inputs, as a "
        "digest (grader.engine.fingerprint): the same code gives the same digests. Read by the similarity page.")

    # The fair queue and the worker's slots (issue 13; the order itself: grader/fairqueue.py).
    fair_rank = models.PositiveIntegerField(
        default=0, help_text="How many earlier runs of the same student (or group) for this assignment were "
                             "still waiting or running when this one was queued: 0 for a submission made with "
                             "nothing of theirs in the queue. The queue takes every rank 0 before any rank 1, and "
                             "the oldest first among equals. Fixed when queued.")
    not_before = models.DateTimeField(null=True, blank=True,
                                      help_text="A run sent back after a platform problem waits until then.")
    slot = models.CharField(max_length=96, blank=True, help_text="The worker slot (cores, GPU) that grades it.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["queue", "status", "fair_rank", "created_at"], name="fair_queue_order")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status}) of submission {self.submission_id}"

    def save(self, *args, **kwargs) -> None:
        if self._state.adding and self.status == self.Status.QUEUED and not self.fair_rank:
            self.fair_rank = GradingRun.objects.filter(self.same_owner(), status__in=self.UNFINISHED).count()
        super().save(*args, **kwargs)

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    def same_owner(self) -> Q:
        """Runs of the same assignment by the same owner: the group when the submission is a group's."""
        submission = self.submission
        if submission.group_id:
            return Q(submission__assignment_id=submission.assignment_id, submission__group_id=submission.group_id)
        return Q(submission__assignment_id=submission.assignment_id, submission__group__isnull=True,
                 submission__submitter_id=submission.submitter_id)

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.ERROR}

    @classmethod
    def claim(cls, run_id: int, *, worker_host: str, lease_seconds: float) -> int | None:
        """Take a run for this worker; returns the new attempt number, or None if another delivery
        holds it or it is finished. A running run whose lease expired (its worker died) may be taken."""
        now = timezone.now()
        with transaction.atomic():
            updated = cls.objects.filter(
                Q(status=cls.Status.QUEUED) | Q(status=cls.Status.RUNNING, lease_expires_at__lt=now),
                pk=run_id,
            ).update(
                status=cls.Status.RUNNING,
                attempt=F("attempt") + 1,
                started_at=now,
                worker_host=worker_host,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                phase="starting",
                error_reason="",
                infrastructure_error=False,
            )
            if not updated:
                return None
            return cls.objects.values_list("attempt", flat=True).get(pk=run_id)

    def fenced(self, attempt: int):
        """A queryset that matches this run only while `attempt` still owns it."""
        return GradingRun.objects.filter(pk=self.pk, attempt=attempt, status=self.Status.RUNNING)

    @property
    def points_shown(self) -> bool:
        """A run's total is meaningful once it was graded; a platform error has none."""
        return self.status == self.Status.DONE and self.max_points is not None


class CheckResult(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public (also in the handout's tests)"
        HIDDEN = "hidden", "Hidden inputs (student sees the outcome and feedback)"
        STAFF = "staff", "Staff only"

    class Direction(models.TextChoices):
        AT_MOST = "max", "value ≤ threshold"
        AT_LEAST = "min", "value ≥ threshold"
        NONE = "", "pass/fail"

    run = models.ForeignKey(GradingRun, on_delete=models.CASCADE, related_name="checks")
    order = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    tier = models.CharField(max_length=2, default="E")
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.HIDDEN)
    status = models.CharField(max_length=16, choices=[(s.value, s.value.replace("_", " ")) for s in OutcomeStatus],
                              default=OutcomeStatus.FAILED.value)
    passed = models.BooleanField(help_text="status == passed, kept for fast queries")
    points = models.FloatField(default=0)
    max_points = models.FloatField(default=0)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    feedback = models.TextField(blank=True)
    staff_note = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "order"]
        unique_together = [("run", "name")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"

    @classmethod
    def from_outcome(cls, run: GradingRun, outcome: CheckOutcome) -> CheckResult:
        """The row for one check outcome: every field of `grader.outcomes.CheckOutcome`, nothing typed twice."""
        return cls(run=run, **outcome.stored_fields())

    @property
    def explain(self) -> str:
        """The check's `explain` text from the part version this run was graded with (not today's files)."""
        version = self.run.part_version
        return version.check_explain(self.name) if version else ""

    @property
    def margin(self) -> float | None:
        """How far inside the threshold the value is; positive means passed with room to spare."""
        if self.value is None or self.threshold is None or not self.direction:
            return None
        return self.threshold - self.value if self.direction == "max" else self.value - self.threshold


class RunArtifact(models.Model):
    """A picture the trusted checks made from a run's outputs (e.g. samples against the data), because
    a person judges samples by looking. Made by grader code, never by the sandbox."""

    run = models.ForeignKey(GradingRun, on_delete=models.CASCADE, related_name="artifacts")
    name = models.SlugField(max_length=64)
    caption = models.CharField(max_length=300, blank=True)
    audience = models.CharField(max_length=8, choices=[("student", "Student and staff"), ("staff", "Staff only")],
                                default="student")
    content_type = models.CharField(max_length=32, default="image/png")
    data = models.BinaryField()
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "order"]
        unique_together = [("run", "name")]

    def __str__(self) -> str:
        return f"{self.name} of run {self.run_id}"


class WorkerHeartbeat(models.Model):
    """A grading worker as it last reported itself (every GRADER_HEARTBEAT_SECONDS, from its main process):
    its queues and slots for the queue's estimates, its last report so staff see one that stopped answering.
    A worker that stops cleanly removes its row."""

    name = models.CharField(max_length=200, unique=True, help_text="Celery's node name, e.g. worker@gpu-host-3.")
    host = models.CharField(max_length=200)
    queues = models.JSONField(default=list)
    slots = models.JSONField(default=list, help_text="Each slot's index, cores, memory and GPU.")
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def silent_for(self, now: dt.datetime | None = None) -> float:
        return ((now or timezone.now()) - self.last_seen).total_seconds()

    def answering(self, now: dt.datetime | None = None) -> bool:
        """Reported within three heartbeats (at least a minute)."""
        return self.silent_for(now) <= max(60.0, 3 * settings.GRADER_HEARTBEAT_SECONDS)
