from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courseware.models import CourseRound
from identity import roster


class Command(BaseCommand):
    help = "Import a roster CSV into a round: a preview by default; --commit writes it (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("round", type=int, help="the round's id")
        parser.add_argument("file", type=Path)
        parser.add_argument("--commit", action="store_true", help="write it (otherwise only the preview)")

    def handle(self, *args, round, file, commit, **options):
        course_round = CourseRound.objects.filter(pk=round).first()
        if course_round is None:
            raise CommandError(f"No round with id {round}.")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        result = roster.apply(text, course_round, by=None) if commit else roster.preview(text, course_round)
        for plan in result.rows:
            self.stdout.write(f"line {plan.line}: {plan.person.kth_id} {plan.person.given_name} "
                              f"{plan.person.family_name}: {plan.action}")
        for line, message in result.errors:
            self.stderr.write(f"line {line}: {message}")
        if result.errors:
            raise CommandError("Nothing was imported: fix the rows above.")
        self.stdout.write(f"{'Imported' if commit else 'Would import'} {len(result.rows)} students into {course_round}."
                          + ("" if commit else " Run again with --commit to write it."))
