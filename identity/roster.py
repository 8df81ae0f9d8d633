"""Roster import from a participant file (Canvas's or Ladok's export, or one made by hand): one row per
student with the KTH id, the name, the e-mail address and optionally a group. A preview says what each
row will do and what is wrong with each bad row; nothing is written unless every row is good, and then
everything is written in one transaction. Importing the same file again changes nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from courseware.models import CourseRound, Role
from examination.models import Group
from identity import people

# Column names as the exports spell them (Canvas: "SIS User ID", "Student" as "Last, First"; Ladok: Swedish).
COLUMNS = {
    "kth_id": ("kth_id", "kthid", "kth id", "sis user id", "sis_user_id", "ug kthid", "student id"),
    "name": ("name", "student", "namn"),
    "given_name": ("given_name", "first name", "förnamn", "fornamn"),
    "family_name": ("family_name", "last name", "efternamn"),
    "email": ("email", "e-mail", "e-post", "epost", "mail"),
    "group": ("group", "grupp"),
}
MAX_ROWS = 5000


@dataclass
class RowPlan:
    line: int
    person: people.Person
    group: str = ""
    action: str = ""  # new person | update | enrol | unchanged


@dataclass
class Preview:
    rows: list[RowPlan] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        key = title.strip().lower().lstrip("\ufeff")
        for field_name, names in COLUMNS.items():
            if key in names and field_name not in found:
                found[field_name] = index
    return found


def _person(values: dict[str, str]) -> people.Person:
    given, family = values.get("given_name", ""), values.get("family_name", "")
    name = values.get("name", "")
    if name and not (given or family):
        family, _, given = name.partition(",") if "," in name else (name.rpartition(" ")[2], "", name.rpartition(" ")[0])
    return people.Person(kth_id=values.get("kth_id", ""), email=values.get("email", ""),
                         given_name=given.strip(), family_name=family.strip()).validated()


def preview(text: str, course_round: CourseRound) -> Preview:
    """Parse and check the file against the round; writes nothing."""
    result = Preview()
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, [])
    columns = _columns(header)
    if "kth_id" not in columns:
        result.errors.append((1, "No KTH id column: the first row must name the columns, one of them "
                                 "kth_id (or Canvas's “SIS User ID”)."))
        return result
    seen: dict[str, int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(result.rows) + len(result.errors) >= MAX_ROWS:
            result.errors.append((line, f"More than {MAX_ROWS} rows; split the file."))
            break
        values = {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
        try:
            plan = RowPlan(line=line, person=_person(values), group=values.get("group", ""))
        except ValidationError as exc:
            result.errors.append((line, " ".join(exc.messages)))
            continue
        if plan.person.kth_id in seen:
            result.errors.append((line, f"{plan.person.kth_id} is also on line {seen[plan.person.kth_id]}."))
            continue
        seen[plan.person.kth_id] = line
        problem = _plan(plan, course_round)
        if problem:
            result.errors.append((line, problem))
        else:
            result.rows.append(plan)
    if not result.rows and not result.errors:
        result.errors.append((1, "The file has no rows below the header."))
    return result


def _plan(plan: RowPlan, course_round: CourseRound) -> str:
    """What the row will do, in `plan.action`; or what is wrong with it."""
    user = people.find(plan.person.kth_id)
    if user is None:
        plan.action = "new person"
        return ""
    role = course_round.role_of(user)
    if role not in (None, Role.STUDENT):
        return f"{plan.person.kth_id} is staff in this round ({role}); the roster only adds students."
    if plan.group:
        current = Group.of(course_round, user)
        if current is not None and current.name != plan.group:
            return f"{plan.person.kth_id} is already in group {current.name!r}, not {plan.group!r}."
    details_change = any(value and getattr(user, attr) != value for attr, value in (
        ("email", plan.person.email), ("first_name", plan.person.given_name), ("last_name", plan.person.family_name)))
    in_group = not plan.group or Group.of(course_round, user) is not None
    plan.action = "enrol" if role is None else ("update" if details_change or not in_group else "unchanged")
    return ""


def apply(text: str, course_round: CourseRound, *, by) -> Preview:
    """Write the roster, all or nothing; the returned preview has the errors if anything was wrong."""
    result = preview(text, course_round)
    if not result.ok:
        return result
    try:
        with transaction.atomic():
            for plan in result.rows:
                user, _ = people.find_or_create(plan.person)
                people.update_details(user, plan.person)
                people.enroll(user, course_round, Role.STUDENT, by=by, source="roster file")
                if plan.group and Group.of(course_round, user) is None:
                    group = course_round.groups.filter(name=plan.group).first() or Group.start(
                        course_round, plan.group, by=by)
                    group.add_member(user, by=by)
    except ValidationError as exc:
        result.errors.append((plan.line, " ".join(exc.messages)))
    return result
