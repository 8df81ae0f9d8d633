"""The upload service: the one way a submission comes in.

The web form calls `submit` today; the REST API and the command line will call the same function, so a
rule written here holds for every way in. The caller gets a typed answer, `Accepted` or `Refused` (with a
`kind` to branch on and a message in words for the student), never a string to match.

Everything that can refuse an upload is checked before anything is stored:
1. the form's token (scoped to the student and the assignment: sending the same form twice gives the
   first submission back instead of making a second);
2. the declaration of help received and sources used, which the syllabus requires;
3. whether the student may submit now (`examination.deadlines`: the two-year rule, the opening, the late
   policy against the student's own deadline, the daily limit);
4. the files (`grader.archives` with the part's `ArchivePolicy.for_part`, the layer `grade_local` and
   `calibrate` accept staff folders through: the size cap before anything is read, allowed files, the
   part's module present, and every rule against hostile archives).
Then, in one transaction holding the row lock of (assignment, student) (`SubmissionLock`), the admission
is checked again (two uploads at once cannot both take the last submission of the day), the archive is
stored (compressed, content-addressed) and the `Submission` and its queued `GradingRun` are written; the
job is sent to the queue only after the commit.

If writing the rows fails after the archive was stored, the archive stays: it is content-addressed, so
it can never be mistaken for another submission, and it cannot be removed safely because another
submission may have the same content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from courseware.models import Assignment, GradingRun, Submission, SubmissionLock
from examination.deadlines import RefusalKind, RoundDeadlines
from examination.models import Group
from grader import archives
from grader.parts import PartError, PartSpec, load_part
from grader.tasks import enqueue_on_commit

MIN_DECLARATION_CHARS = 3


class UploadFile(Protocol):
    """What a caller hands in per file: Django's UploadedFile is one."""

    name: str | None
    size: int | None

    def read(self) -> bytes: ...


class Problem(StrEnum):
    """Why an upload was refused, besides the admission rules of `examination.deadlines.RefusalKind`."""

    NO_TOKEN = "no_token"  # the form came without its token
    NO_DECLARATION = "no_declaration"
    PART_UNAVAILABLE = "part_unavailable"  # the part's folder cannot be loaded: the platform's problem
    TOO_LARGE = "too_large"  # over the upload size cap
    NO_MODULE = "no_module"  # the part's module is missing
    BAD_ARCHIVE = "bad_archive"  # any other archive rule (allowed files, zip slip, bombs, damage, ...)


@dataclass(frozen=True)
class Refused:
    kind: Problem | RefusalKind
    message: str  # in words for the student; nothing was stored
    field: str | None = None  # the form field the message belongs to ("files", "declaration"), or None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    duplicate: bool = False  # the same form was sent again: this is the submission it made the first time

    @property
    def late(self) -> bool:
        return self.submission.late


def declaration_problem(text: str) -> str | None:
    """What is wrong with a declaration, in words for the student; None when it will do."""
    if len(text.strip()) < MIN_DECLARATION_CHARS:
        return _("Please write your declaration (“none” is a valid answer).")
    return None


def facts_at_upload(assignment: Assignment, student, at: dt.datetime,
                    rules: RoundDeadlines | None = None) -> dict:
    """What a submission records about the moment it was made: whether it was late for the student's own
    deadline, and the group the student was in (whose members then share it)."""
    rules = rules or RoundDeadlines(assignment.round, [student])
    return {"late": rules.is_late(assignment, student, at), "group": Group.of(assignment.round, student)}


def accept_files(files: Sequence[UploadFile], part: PartSpec) -> archives.CheckedArchive:
    """The archive-acceptance layer: the size cap (from the sizes, before anything is read), then every
    archive rule under the part's policy. Raises `archives.ArchiveError` (or a subclass) with the reason."""
    policy = archives.ArchivePolicy.for_part(part)
    archives.check_upload_size(sum(f.size or 0 for f in files), policy)
    return archives.check_upload([(f.name or "", f.read()) for f in files], policy)


def submit(assignment: Assignment, student, files: Sequence[UploadFile], *, declaration: str, client_token: str,
           now: dt.datetime | None = None) -> Accepted | Refused:
    """Take one submission of `files` by `student` to `assignment`, or say why not (nothing stored then).

    `now` is for tests and imports that replay a moment; by default each check reads the clock itself.
    """
    token = client_token.strip()
    if not token:
        return Refused(Problem.NO_TOKEN, _("The form was sent without its submission token (it may come from an old "
                       "or incomplete page), so nothing was submitted. Choose your files and submit again."))
    if (earlier := _by_token(assignment, student, token)) is not None:
        return Accepted(earlier, duplicate=True)
    if problem := declaration_problem(declaration):
        return Refused(Problem.NO_DECLARATION, problem, field="declaration")
    try:
        part = load_part(assignment.part.slug)
    except PartError:
        return Refused(Problem.PART_UNAVAILABLE, _("This part cannot take submissions right now (a problem on our "
                       "side, and staff can see it). Nothing was submitted; please try again later."))
    if refusal := RoundDeadlines(assignment.round, [student]).refusal(assignment, student, now):
        return Refused(refusal.kind, refusal.message)
    try:
        checked = accept_files(files, part)
    except archives.ArchiveError as exc:
        return Refused(_problem_of(exc), str(exc), field="files")
    return _record(assignment, student, checked, part, declaration=declaration.strip(), token=token, now=now)


def _problem_of(exc: archives.ArchiveError) -> Problem:
    if isinstance(exc, archives.UploadTooLarge):
        return Problem.TOO_LARGE
    if isinstance(exc, archives.MissingRequiredFile):
        return Problem.NO_MODULE
    return Problem.BAD_ARCHIVE


def _by_token(assignment: Assignment, student, token: str) -> Submission | None:
    return Submission.objects.filter(assignment=assignment, submitter=student, client_token=token).first()


def _record(assignment: Assignment, student, checked: archives.CheckedArchive, part: PartSpec, *,
            declaration: str, token: str, now: dt.datetime | None) -> Accepted | Refused:
    """Under the (assignment, student) lock: admit again, store the archive, write the rows."""
    lock, _ = SubmissionLock.objects.get_or_create(assignment=assignment, student=student)
    try:
        with transaction.atomic():
            SubmissionLock.objects.select_for_update().get(pk=lock.pk)  # held until the commit
            if (earlier := _by_token(assignment, student, token)) is not None:
                return Accepted(earlier, duplicate=True)  # the same form, sent twice at once
            at = now or timezone.now()
            rules = RoundDeadlines(assignment.round, [student])
            if refusal := rules.refusal(assignment, student, at):
                return Refused(refusal.kind, refusal.message)
            archives.store(checked, settings.ARCHIVE_ROOT)
            submission = Submission.objects.create(
                assignment=assignment, submitter=student, sha256=checked.sha256, size=len(checked.canonical_zip),
                files=sorted(checked.files), declaration=declaration, created_at=at, client_token=token,
                **facts_at_upload(assignment, student, at, rules))
            run = GradingRun.objects.create(submission=submission, queue=part.resources.device)
            enqueue_on_commit(run.pk)
    except IntegrityError:
        if (earlier := _by_token(assignment, student, token)) is not None:
            return Accepted(earlier, duplicate=True)
        raise
    return Accepted(submission)
