from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from courseware.models import CourseRound, Role
from identity import roster


class Command(BaseCommand):
    help = "Import a roster CSV into a round: a preview by default; --commit writes it (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("round", type=int, help="the round's id")
        parser.add_argument("file", type=Path)
        parser.add_argument("--commit", action="store_true", help="write it (otherwise only the preview)")
        parser.add_argument("--by", help="the staff member's username recorded in the audit log "
                                         "(default: the round's examiner)")

    def handle(self, *args, round, file, commit, by=None, **options):
        course_round = CourseRound.objects.filter(pk=round).first()
        if course_round is None:
            raise CommandError(f"No round with id {round}.")
        staff = course_round.enrollments.filter(role=Role.EXAMINER).select_related("user").first()
        actor = get_user_model().objects.filter(username=by).first() if by else (staff.user if staff else None)
        if actor is None or not course_round.is_staff(actor):
            raise CommandError("Say who imports it: --by <a staff member of the round>.")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        result = roster.apply(text, course_round, by=actor) if commit else roster.preview(text, course_round)
        for plan in result.rows:
            self.stdout.write(f"line {plan.line}: {plan.person.kth_id} {plan.person.given_name} "
                              f"{plan.person.family_name}: {plan.action}")
        for line, message in result.errors:
            self.stderr.write(f"line {line}: {message}")
        if result.errors:
            raise CommandError("Nothing was imported: fix the rows above.")
        self.stdout.write(f"{'Imported' if commit else 'Would import'} {len(result.rows)} students into {course_round}."
                          + ("" if commit else " Run again with --commit to write it."))
