"""Grade a folder or zip through the same sandbox and checks as the web, without the web."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.archives import ArchiveError
from grader.calibration import grade_source, report_table
from grader.parts import PartError, load_part
from grader.sandbox import BACKENDS, InfrastructureError


class Command(BaseCommand):
    help = "Grade <dir-or-zip> against LAB1 part <part>; exit 0 only when every check passes."

    def add_arguments(self, parser):
        parser.add_argument("part")
        parser.add_argument("source", type=Path)
        parser.add_argument("--backend", choices=BACKENDS, default=None,
                            help="sandbox backend (default: GRADER_BACKEND, normally docker). "
                                 "'unsafe-local' runs the code unisolated: only for your own reference code.")
        parser.add_argument("--seed", type=int, default=None, help="grading seed (default: a fresh secret one)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, part, source, backend, seed, json: bool = False, **options):
        try:
            spec = load_part(part)
        except PartError as exc:
            raise CommandError(str(exc)) from exc
        if not source.exists():
            raise CommandError(f"{source} does not exist")
        try:
            report = grade_source(spec, source, backend=backend or settings.GRADER_BACKEND, seed=seed)
        except ArchiveError as exc:
            raise CommandError(f"the submission was rejected: {exc}") from exc
        except InfrastructureError as exc:
            raise CommandError(f"the sandbox could not run: {exc}") from exc
        if json:
            self.stdout.write(_json_report(report))
        else:
            self.stdout.write(report_table(report))
            if report.error:
                self.stdout.write(f"\nstopped early: {report.error}")
            for c in report.checks:
                if not c.passed:
                    self.stdout.write(f"\n{c.name}: {c.feedback}")
            for text in report.flags:
                self.stdout.write(f"\nEXAMINER FLAG: {text}")
            self.stdout.write(f"\n{report.points:g} of {report.max_points:g} points; backend {report.backend}; "
                              f"timings {report.timings}")
        if not report.all_passed:
            raise SystemExit(1)


def _json_report(report) -> str:
    return json.dumps({
        "part": report.part, "all_passed": report.all_passed, "points": report.points,
        "max_points": report.max_points, "error": report.error, "timings": report.timings,
        "checks": [c.as_dict() for c in report.checks], "student_log": report.student_log,
        "fingerprints": report.fingerprints, "examiner_flags": report.flags,
    }, indent=2)
