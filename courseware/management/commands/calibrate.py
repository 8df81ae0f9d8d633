"""Grade every reference solution, starter and known-wrong submission; fail on any surprise."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.calibration import calibrate_part
from grader.parts import PartError, all_parts, load_part
from grader.sandbox import BACKENDS


class Command(BaseCommand):
    help = "Calibrate LAB1 parts: references pass with margin over several seeds, starters and known-wrong fail."

    def add_arguments(self, parser):
        parser.add_argument("parts", nargs="*", help="part slugs (default: all)")
        parser.add_argument("--seeds", type=int, default=3)
        parser.add_argument("--alternatives", type=int, default=0, metavar="N",
                            help="grade every honest alternative (alternatives/<name>/) on the first N seeds "
                                 "(default 0: the reference only)")
        parser.add_argument("--wrong-seeds", type=int, default=1,
                            help="grade every known-wrong on the first N seeds (default 1)")
        parser.add_argument("--backend", choices=BACKENDS, default=None)

    def handle(self, *args, parts, seeds, backend, alternatives, wrong_seeds, **options):
        try:
            specs = [load_part(p) for p in parts] if parts else all_parts()
        except PartError as exc:
            raise CommandError(str(exc)) from exc
        problems = []
        for spec in specs:
            result = calibrate_part(spec, backend=backend or settings.GRADER_BACKEND, seeds=list(range(1, seeds + 1)),
                                    alternative_seeds=alternatives, wrong_seeds=wrong_seeds, echo=self.stdout.write)
            problems += [f"{spec.slug}: {p}" for p in result.problems]
        if problems:
            raise CommandError("calibration failed:\n  " + "\n  ".join(problems))
        self.stdout.write(self.style.SUCCESS(f"calibration passed for {', '.join(s.slug for s in specs)}"))
