"""One source of a part's manifest: pages about a run read the part version it was graded with, the assignment
page reads the part's current version, and recording a version (import or grading) makes it current."""

from __future__ import annotations

import ast
import copy
import dataclasses
import io
from pathlib import Path

from django.core.management import call_command
from django.urls import reverse

from courseware.models import CheckResult, Part, PartVersion
from grader.parts import load_part

from .conftest import REPO
from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)


def version_with(part: Part, content_hash: str, edit) -> PartVersion:
    manifest = copy.deepcopy(part.current_version.manifest)
    edit(manifest)
    return PartVersion.objects.create(part=part, content_hash=content_hash, manifest=manifest)


def test_check_explanations_come_from_the_runs_part_version(client, people, assignment):
    submission = graded_submission(assignment, people["alice"], failing=("nll",))
    run = submission.latest_run

    def explain(manifest):
        manifest["checks"]["nll"]["explain"] = "EXPLAINED-BY-THE-GRADED-VERSION"
        manifest["checks"]["density_integrates"]["explain"] = "STAFF-ONLY-EXPLANATION"
    run.part_version = version_with(assignment.part, "graded", explain)
    run.save()
    CheckResult.objects.filter(run=run, name="density_integrates").update(visibility="staff")
    on_disk = load_part("mdn").checks["nll"].explain
    assert on_disk and on_disk != "EXPLAINED-BY-THE-GRADED-VERSION"

    client.force_login(people["alice"])
    page = client.get(reverse("submission", args=[submission.pk])).content.decode()
    assert "EXPLAINED-BY-THE-GRADED-VERSION" in page and on_disk[:40] not in page
    assert "STAFF-ONLY-EXPLANATION" not in page  # the check itself is hidden from the student
    client.force_login(people["tina"])
    staff = client.get(reverse("staff_run", args=[run.pk])).content.decode()
    assert "EXPLAINED-BY-THE-GRADED-VERSION" in staff and "STAFF-ONLY-EXPLANATION" in staff


def test_the_assignment_page_describes_the_current_version(client, people, assignment):
    part = assignment.part
    part.current_version = version_with(part, "newer", lambda m: m.update(summary="SUMMARY-OF-THE-CURRENT-VERSION"))
    part.save()
    client.force_login(people["alice"])
    page = client.get(reverse("assignment", args=[assignment.pk])).content.decode()
    assert "SUMMARY-OF-THE-CURRENT-VERSION" in page


def test_recording_a_version_makes_it_current_for_import_and_grading_alike(db):
    spec = load_part("mdn")
    version, created = Part.record_version(spec)
    assert created and Part.objects.get(slug="mdn").current_version == version
    assert Part.record_version(spec) == (version, False)
    changed = dataclasses.replace(spec, content_hash="f" * 64, title="Renamed")
    newer, created = Part.record_version(changed)
    part = Part.objects.get(slug="mdn")
    assert created and part.current_version == newer and part.title == "Renamed"
    call_command("import_assignments", stdout=io.StringIO(), stderr=io.StringIO())
    assert Part.objects.get(slug="mdn").current_version == version  # the folder on disk again


def test_the_grading_task_records_versions_through_the_same_function():
    """grader/tasks.py once made versions of its own that never became current: it must not write them."""
    tree = ast.parse(Path(REPO, "grader", "tasks.py").read_text())
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    assert "record_version" in calls
    assert not any(isinstance(node, ast.Name) and node.id == "PartVersion" for node in ast.walk(tree))
