"""Load every part under assignments/lab1 into the database. Idempotent: a part whose folder did not
change keeps its version; any change to any file makes a new version (by content hash), which becomes the
part's current version (`Part.record_version`, the same function the grader uses)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from courseware.models import Part
from grader.parts import PartError, load_part_dir, parts_root


class Command(BaseCommand):
    help = "Import (or re-import) the LAB1 parts from assignments/lab1/."

    def handle(self, *args, **options):
        problems = []
        specs = []
        for folder in sorted(p for p in parts_root().iterdir() if (p / "part.toml").exists()):
            try:
                specs.append(load_part_dir(folder))
            except PartError as exc:  # one broken part must not keep the others out
                problems.append(str(exc))
                self.stderr.write(f"{folder.name:24s} NOT IMPORTED: {exc}")
        for spec in specs:
            _, created = Part.record_version(spec)
            state = "new version" if created else "unchanged"
            self.stdout.write(f"{spec.slug:24s} {spec.content_hash[:12]}  {state}")
        call_command("import_oral_questions", stdout=self.stdout, stderr=self.stderr)
        if problems:
            raise CommandError(f"{len(problems)} part(s) could not be imported")
