"""What the API answers, as pydantic schemas (django-ninja turns them into the OpenAPI document)."""

from __future__ import annotations

import datetime as dt

from ninja import Schema


class Problem(Schema):
    """Every refusal and error: `detail` in words for the user (in their language), `kind` to branch on."""

    detail: str
    kind: str = ""
    field: str | None = None
    errors: dict[str, list[str]] | None = None


class RoundOut(Schema):
    id: int
    course_code: str
    course_name: str
    code: str
    role: str | None
    examinable_until: dt.date


class MeOut(Schema):
    username: str
    full_name: str
    email: str
    language: str | None  # the language chosen with the site's switch, if any
    token_name: str
    token_scope: str
    token_expires_at: dt.datetime
    rounds: list[RoundOut]


class RefusalOut(Schema):
    kind: str
    message: str


class CheckOut(Schema):
    name: str
    title: str
    tier: str
    visibility: str
    status: str
    passed: bool
    value: float | None
    threshold: float | None
    direction: str
    margin: float | None
    unit: str
    points: float
    max_points: float
    feedback: str
    explain: str
    staff_note: str | None = None  # staff tokens only


class ArtifactOut(Schema):
    name: str
    caption: str
    audience: str
    url: str


class RunOut(Schema):
    id: int
    submission_id: int
    status: str
    phase: str
    queue: str
    queue_place: int | None
    estimated_start: dt.datetime | None
    waits_for: str  # why no start can be estimated (no worker running, a retry after a platform problem)
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    finished: bool
    points: float | None
    max_points: float | None
    all_passed: bool | None  # None, like points, while hidden checks' results are held back
    hidden_withheld: int = 0  # hidden checks whose results are shown from hidden_shown_from (issue 17)
    hidden_shown_from: dt.datetime | None = None
    error_reason: str
    grader_errors: int
    checks: list[CheckOut]
    artifacts: list[ArtifactOut]
    student_log: str


class SubmissionOut(Schema):
    id: int
    assignment_id: int
    part: str
    submitter: str
    created_at: dt.datetime
    late: bool
    files: list[str]
    size: int
    url: str
    run: RunOut | None


class SubmitOut(Schema):
    duplicate: bool
    late: bool
    submission: SubmissionOut


class PartOut(Schema):
    assignment_id: int
    round_id: int
    round: str
    slug: str
    title: str
    tier: str
    module: str
    allowed_files: list[str]
    max_points: float
    opens_at: dt.datetime
    deadline: dt.datetime
    deadline_extended: bool
    late_now: bool
    may_submit: bool
    refusal: RefusalOut | None
    used_today: int
    max_per_day: int
    status: str
    tier_reached: str | None
    latest_submission_id: int | None
    latest_run: RunOut | None


class SandboxOut(Schema):
    """What `dd2601 check` needs to run the public tests under the grader's limits for this part."""

    image: str
    memory_mb: int
    cpus: float
    pids: int
    tmpfs_mb: int
    tmpfs_inodes: int
    nofile: int
    fsize_mb: int
    run_seconds: float
    seccomp_profile: str  # the grader's seccomp policy, as Docker's JSON


class StaffRunOut(Schema):
    id: int
    submission_id: int
    student: str
    part: str
    status: str
    phase: str
    queue_place: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    points: float | None
    max_points: float | None
    grader_errors: int
    infrastructure_error: bool


class StaffRunDetailOut(RunOut):
    student: str
    part: str
    backend: str
    image_digest: str
    worker_host: str
    attempt: int
    timings: dict[str, float]
    staff_log: str
    examiner_flags: list[str]


class StaffCellOut(Schema):
    part: str
    status: str
    tier: str | None
    points: float
    max_points: float
    late: bool
    submission_id: int | None


class StaffStudentOut(Schema):
    username: str
    kth_id: str
    name: str
    parts: list[StaffCellOut]
    proposed_grade: str | None
    decided_grade: str | None
