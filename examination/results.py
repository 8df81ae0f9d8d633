"""From the database to what examination needs: per student and part the latest submission (their own or
their group's, by the group rule `GroupMembership.shares`), its latest run and tier, the student's own
deadline and whether the submission was late for them (`examination.deadlines`), the oral outcome; then
the policy's facts and proposal. Parts come in the course order (the policy's blocks).

One `RoundResults` loads a whole round in a handful of queries, so the dashboard and the exports stay
fast for a round of 300 students; the oral session and the student's page load it for one student.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from courseware.models import Assignment, CheckResult, CourseRound, GradingRun, Part, Role, Submission
from examination.deadlines import Deadline, RoundDeadlines
from examination.models import (
    AuditEntry,
    ComponentRecord,
    GradeDecision,
    GroupMembership,
    PartOral,
    ReExamination,
    StudentProfile,
)
from examination.policy import (
    GRADES,
    Facts,
    PartFacts,
    Policy,
    Proposal,
    load_policy,
    propose_grade,
    tier_reached,
)

STATUSES = {
    "not_submitted": "not submitted",
    "grading": "grading",
    "passed": "passed",
    "failed": "failed",
    "oral_done": "oral done",
}


def part_max_points(part: Part) -> float:
    """The points a part offers now (its current version); a graded run carries its own maximum."""
    return part.current_version.max_points if part.current_version else 0.0


def part_required(part: Part) -> bool:
    """E-core parts are required for every passing grade; higher-grade extension parts are not."""
    return part.current_version.tier == "E" if part.current_version else True


def in_course_order(assignments: list[Assignment], policy: Policy) -> list[Assignment]:
    """A round's assignments in the course order (the policy's blocks); the assignment's own order, then
    its deadline, only for parts the policy does not name."""
    return sorted(assignments, key=lambda a: (policy.position(a.part.slug), a.order, a.deadline, a.part.slug))


@dataclass
class Cell:
    """One student's standing on one part."""

    part: Part
    submission: Submission | None = None
    run: GradingRun | None = None  # the latest run of the latest submission
    done_run: GradingRun | None = None  # its latest finished, successful run
    tier: str | None = None
    points: float = 0.0
    max_points: float = 0.0
    oral: str = ""
    kept_from: CourseRound | None = None  # a re-examined student's earlier result
    deadline: Deadline | None = None  # the student's own deadline for the part
    late: bool = False  # the submission came after the student's own deadline (as it stands now)

    @property
    def status(self) -> str:
        if self.submission is None:
            return "not_submitted"
        if self.run is not None and not self.run.is_finished:
            return "grading"
        return "passed" if self.tier else "failed"

    def matches(self, status: str) -> bool:
        return bool(self.oral) if status == "oral_done" else self.status == status


@dataclass
class StudentRow:
    student: object
    kth_id: str = ""
    group: object = None
    cells: list[Cell] = field(default_factory=list)
    components: dict[str, ComponentRecord] = field(default_factory=dict)
    decision: GradeDecision | None = None
    proposal: Proposal | None = None
    reexamination: ReExamination | None = None

    def facts(self, policy: Policy) -> Facts:
        parts = tuple(PartFacts(slug=c.part.slug, required=part_required(c.part), tier=c.tier, points=c.points,
                                max_points=c.max_points, oral=c.oral or None, submitted=c.submission is not None)
                      for c in self.cells)
        statuses = {key: record.status for key, record in self.components.items()}
        return Facts(parts=parts, components=statuses)


class RoundResults:
    def __init__(self, course_round: CourseRound, policy: Policy | None = None, students=None):
        self.round = course_round
        self.policy = policy
        self.assignments = in_course_order(list(course_round.assignments.select_related("part__current_version")),
                                           policy or load_policy())
        self.parts = [a.part for a in self.assignments]
        if students is None:
            students = get_user_model().objects.filter(
                enrollments__round=course_round, enrollments__role=Role.STUDENT).order_by("last_name", "username")
        self.students = list(students)
        self.rows = {s.pk: StudentRow(student=s) for s in self.students}
        self._load()

    def row(self, student) -> StudentRow:
        return self.rows[student.pk]

    def _load(self) -> None:
        ids = list(self.rows)
        for profile in StudentProfile.objects.filter(user_id__in=ids):
            self.rows[profile.user_id].kth_id = profile.kth_id
        latest = self._latest_submissions(ids)
        runs, done, checks = self._runs(latest.values())
        orals: dict[tuple[int, int], str] = {}
        for student_id, part_id, outcome in (
                PartOral.objects.filter(session__round=self.round, session__student_id__in=ids).exclude(outcome="")
                .order_by("session__opened_at", "session__pk").values_list("session__student_id", "part_id", "outcome")):
            orals[(student_id, part_id)] = outcome
        tiers = self.policy.tiers if self.policy else ("E", "C", "A")
        rules = RoundDeadlines(self.round, ids)
        for student_id, row in self.rows.items():
            for assignment in self.assignments:
                part = assignment.part
                cell = Cell(part=part, max_points=part_max_points(part), deadline=rules.deadline(assignment, student_id),
                            oral=orals.get((student_id, part.pk), ""))
                if (sub := latest.get((student_id, part.pk))) is not None:
                    cell.submission, cell.run, cell.done_run = sub, runs.get(sub.pk), done.get(sub.pk)
                    cell.late = cell.deadline.passed(sub.created_at)
                if cell.done_run is not None:
                    cell.tier = tier_reached(checks[cell.done_run.pk], tiers)
                    cell.points = cell.done_run.points or 0.0
                    cell.max_points = cell.done_run.max_points or cell.max_points
                row.cells.append(cell)
        self._load_records(ids)

    def _latest_submissions(self, ids: list[int]) -> dict[tuple[int, int], Submission]:
        """Latest submission per (student, part id): their own, or one of their group's that they share."""
        memberships: dict[int, list[GroupMembership]] = defaultdict(list)
        for m in GroupMembership.objects.filter(round=self.round, user_id__in=ids).select_related("group"):
            memberships[m.group_id].append(m)
            self.rows[m.user_id].group = m.group
        latest: dict[tuple[int, int], Submission] = {}
        submissions = (Submission.objects.filter(assignment__round=self.round)
                       .filter(Q(submitter_id__in=ids) | Q(group_id__in=list(memberships)))
                       .select_related("assignment").order_by("created_at", "pk"))
        for sub in submissions:
            owners = {m.user_id for m in memberships.get(sub.group_id, ()) if m.shares(sub)}
            if sub.submitter_id in self.rows:
                owners.add(sub.submitter_id)
            for owner in owners:
                latest[(owner, sub.assignment.part_id)] = sub
        return latest

    @staticmethod
    def _runs(submissions) -> tuple[dict[int, GradingRun], dict[int, GradingRun], dict[int, list[tuple[str, bool]]]]:
        """Per submission id its latest run and its latest done run; per done run its checks' (tier, passed)."""
        runs: dict[int, GradingRun] = {}
        done: dict[int, GradingRun] = {}
        for run in GradingRun.objects.filter(submission__in={s.pk for s in submissions}).order_by("created_at", "pk"):
            runs[run.submission_id] = run
            if run.status == GradingRun.Status.DONE:
                done[run.submission_id] = run
        checks: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        for run_id, tier, passed in CheckResult.objects.filter(run__in=list(done.values())).values_list(
                "run_id", "tier", "passed"):
            checks[run_id].append((tier, passed))
        return runs, done, checks

    def _load_records(self, ids: list[int]) -> None:
        """What staff recorded: components, decisions, re-examinations; then the proposal."""
        for record in ComponentRecord.objects.filter(round=self.round, student_id__in=ids):
            self.rows[record.student_id].components[record.component] = record
        for decision in GradeDecision.objects.filter(round=self.round, student_id__in=ids,
                                                     superseded_by__isnull=True).select_related("decided_by"):
            self.rows[decision.student_id].decision = decision
        for reexam in (ReExamination.objects.filter(round=self.round, student_id__in=ids)
                       .select_related("earlier_round").prefetch_related("kept_parts")):
            self._carry_over(self.rows[reexam.student_id], reexam)
        if self.policy is not None:
            for row in self.rows.values():
                row.proposal = propose_grade(self.policy, row.facts(self.policy))

    def _carry_over(self, row: StudentRow, reexam: ReExamination) -> None:
        """A kept part stands as it was in the earlier round until the student submits it anew here;
        a kept component stands until staff record something else for it here."""
        row.reexamination = reexam
        kept = {p.pk for p in reexam.kept_parts.all()}
        earlier = RoundResults(reexam.earlier_round, self.policy, students=[row.student]).row(row.student)
        earlier_cells = {c.part.pk: c for c in earlier.cells}
        for i, cell in enumerate(row.cells):
            old = earlier_cells.get(cell.part.pk)
            if cell.part.pk in kept and cell.submission is None and old is not None:
                old.kept_from = reexam.earlier_round
                old.oral = cell.oral or old.oral  # an oral held again in this round replaces the earlier one
                row.cells[i] = old
        for key in reexam.kept_components:
            mine = row.components.get(key)
            if (mine is None or mine.status == ComponentRecord.Status.NOT_DONE) and key in earlier.components:
                row.components[key] = earlier.components[key]

    def filtered(self, *, part: str = "", status: str = "", group: str = "") -> list[StudentRow]:
        rows = list(self.rows.values())
        if group == "none":
            rows = [r for r in rows if r.group is None]
        elif group:
            rows = [r for r in rows if r.group and str(r.group.pk) == group]
        if status in STATUSES:
            rows = [r for r in rows if any(c.matches(status) for c in r.cells if not part or c.part.slug == part)]
        return rows

    # ---- distributions, for the dashboard's plots --------------------------------------------------

    def score_histogram(self, part: Part, bins: int = 10) -> list[tuple[str, int]]:
        cells = [c for r in self.rows.values() for c in r.cells if c.part.pk == part.pk and c.done_run]
        top = max([c.max_points for c in cells] + [part_max_points(part), 1.0])
        counts = Counter(min(int(c.points / top * bins), bins - 1) for c in cells)
        width = top / bins
        return [(f"{i * width:g}", counts.get(i, 0)) for i in range(bins)]  # each bar labelled by its lower edge

    def grade_counts(self) -> dict[str, list[tuple[str, int]]]:
        decided = Counter(r.decision.grade for r in self.rows.values() if r.decision)
        proposed = Counter(r.proposal.grade for r in self.rows.values() if r.proposal)
        return {"decided": [(g, decided.get(g, 0)) for g in GRADES],
                "proposed": [(g, proposed.get(g, 0)) for g in GRADES]}


def regrade_part(course_round: CourseRound, part: Part, *, by) -> list[GradingRun]:
    """A new grading run for the latest submission of every student on this part (a group's shared
    submission once), after its checks were fixed. Old runs stay: each run records its part version."""
    from grader.parts import PartError, load_part
    from grader.tasks import enqueue_on_commit

    try:
        queue = load_part(part.slug).resources.device
    except PartError:
        queue = "cpu"
    results = RoundResults(course_round)
    submissions = {c.submission.pk: c.submission for r in results.rows.values() for c in r.cells
                   if c.part.pk == part.pk and c.submission is not None and c.kept_from is None}
    with transaction.atomic():
        runs = [GradingRun.objects.create(submission=s, queue=queue) for s in submissions.values()]
        for run in runs:
            enqueue_on_commit(run.pk)
        AuditEntry.record(actor=by, action="part.regraded", obj=part, course_round=course_round,
                          after={"part": part.slug, "runs": [r.pk for r in runs]})
    return runs


# ---- bar charts as plain geometry; the template draws them as SVG ---------------------------------------

def bars(counts: list[tuple[str, int]], width: int = 320, height: int = 140) -> dict:
    top = max([n for _, n in counts] + [1])
    slot = width / max(len(counts), 1)
    out = []
    for i, (label, n) in enumerate(counts):
        h = round(n / top * (height - 32), 1)  # room below for the labels, above for the count
        out.append({"label": label, "count": n, "x": round(i * slot + slot * 0.1, 1), "w": round(slot * 0.8, 1),
                    "y": round(height - 16 - h, 1), "h": h, "cx": round(i * slot + slot / 2, 1),
                    "ty": round(height - 16 - h - 3, 1)})
    return {"width": width, "height": height, "bars": out, "base": height - 16, "label_y": height - 3}


# ---- CSV ---------------------------------------------------------------------------------------------

def _cell(value) -> str:
    """No spreadsheet formulas from user-supplied text (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _name(user) -> str:
    return user.get_full_name() or user.username


def examination_date(row: StudentRow) -> dt.date | None:
    """The examination date Ladok records: the day the student completed the last required part, not
    the day the examiner decided. A required part (E tier) is completed by the submission whose graded run
    reached a tier; its day is the day that submission was handed in (the student's own record, before the
    queue). If a required part is not completed (a failing grade), the day of the last graded submission
    of a required part, the student's last attempt. None when no required part was ever graded."""
    completed, attempted = [], []
    for cell in row.cells:
        if not part_required(cell.part) or cell.done_run is None or cell.submission is None:
            continue
        day = timezone.localdate(cell.submission.created_at)
        attempted.append(day)
        if cell.tier:
            completed.append(day)
    required = sum(1 for c in row.cells if part_required(c.part))
    if completed and len(completed) == required:
        return max(completed)
    return max(attempted, default=None)


LADOK_COLUMNS = ["kth_id", "course_code", "module_code", "grade", "examination_date", "examiner", "name"]


def ladok_csv(results: RoundResults) -> str:
    """One row per student with a decided grade, in the order a result is entered in Ladok: who (the KTH
    id from the profile, never an e-mail address), which course and module (`ladok.LadokModule`, per
    round), the grade, the examination date (`examination_date`) and the examiner; the name last, only for
    a person checking the file."""
    from ladok.models import LadokModule

    codes = LadokModule.of(results.round)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(LADOK_COLUMNS)
    for row in results.rows.values():
        if row.decision is None:
            continue
        day = examination_date(row)
        writer.writerow([_cell(row.kth_id), _cell(codes.course), _cell(codes.module_code), row.decision.grade,
                         day.isoformat() if day else "", _cell(_name(row.decision.decided_by)),
                         _cell(_name(row.student))])
    return buffer.getvalue()


def full_results_csv(results: RoundResults, policy: Policy) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["student_id", "username", "name", "group"]
    for part in results.parts:
        header += [f"{part.slug}_points", f"{part.slug}_max", f"{part.slug}_tier", f"{part.slug}_oral"]
    header += [f"component_{c.key}" for c in policy.components]
    header += ["proposed_grade", "proposal", "decided_grade", "decision_date", "examiner", "rationale"]
    writer.writerow(header)
    for row in results.rows.values():
        line = [_cell(row.kth_id), _cell(row.student.username), _cell(_name(row.student)),
                _cell(row.group.name if row.group else "")]
        for c in row.cells:
            line += [f"{c.points:g}", f"{c.max_points:g}", c.tier or "", c.oral]
        line += [row.components[c.key].status if c.key in row.components else "not_done" for c in policy.components]
        line += [row.proposal.grade if row.proposal else "", _cell(" | ".join(row.proposal.explanation) if row.proposal else "")]
        d = row.decision
        line += [d.grade, timezone.localdate(d.decided_at).isoformat(), _cell(_name(d.decided_by)), _cell(d.rationale)] if d else ["", "", "", ""]
        writer.writerow(line)
    return buffer.getvalue()
