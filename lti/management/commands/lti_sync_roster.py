from django.core.management.base import BaseCommand, CommandError

from lti.models import RoundLink
from lti.roster import sync_roster


class Command(BaseCommand):
    help = "Sync rounds' rosters from their Canvas courses (LTI Names and Roles): who was added, who left."

    def add_arguments(self, parser):
        parser.add_argument("--round", type=int, help="only this round's links (its id)")

    def handle(self, *args, round=None, **options):
        links = RoundLink.objects.select_related("round", "context")
        if round is not None:
            links = links.filter(round_id=round)
        if not links:
            raise CommandError("No Canvas course is linked to that round." if round else "No Canvas course is linked.")
        failed = False
        for link in links:
            report = sync_roster(link)
            self.stdout.write(f"{link}: {report.summary()}")
            for label, names in (("added", report.added), ("changed role", report.changed), ("left", report.left),
                                 ("left Canvas, kept (has work)", report.kept)):
                for name in names:
                    self.stdout.write(f"  {label}: {name}")
            failed |= bool(report.error)
        if failed:
            raise CommandError("At least one roster sync failed (see above).")
