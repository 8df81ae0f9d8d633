"""Import every part's oral question bank (`assignments/lab1/<part>/oral.toml`). Idempotent: an unchanged
question is left alone, a changed one is updated in place (answers already recorded keep pointing at it),
a question removed from the file is retired (kept for the answers that used it, offered no more), and a
retired question that comes back is offered again. Ad-hoc questions added in sessions are never touched."""

from __future__ import annotations

import tomllib

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from courseware.models import Part
from examination.models import OralQuestion
from grader.parts import parts_root


def read_bank(path) -> list[dict]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(f"{path}: {exc}") from exc
    questions = data.get("questions", [])
    seen = set()
    for i, q in enumerate(questions):
        for key in ("id", "text"):
            if not isinstance(q.get(key), str) or not q[key].strip():
                raise CommandError(f"{path}: question {i + 1} needs a non-empty {key!r}")
        if q["id"] in seen:
            raise CommandError(f"{path}: question id {q['id']!r} appears twice")
        seen.add(q["id"])
    return questions


class Command(BaseCommand):
    help = "Import (or re-import) the oral question banks from assignments/lab1/<part>/oral.toml."

    def handle(self, *args, **options):
        root = parts_root()
        for folder in sorted(p for p in root.iterdir() if (p / "oral.toml").exists()):
            part = Part.objects.filter(slug=folder.name).first()
            if part is None:
                self.stderr.write(f"{folder.name:24s} oral bank skipped: the part is not imported")
                continue
            counts = self.import_bank(part, read_bank(folder / "oral.toml"))
            self.stdout.write(f"{folder.name:24s} oral: " + ", ".join(f"{n} {k}" for k, n in counts.items()))

    @transaction.atomic
    def import_bank(self, part: Part, questions: list[dict]) -> dict[str, int]:
        counts = {"new": 0, "updated": 0, "unchanged": 0, "retired": 0}
        existing = {q.key: q for q in OralQuestion.objects.filter(part=part, session__isnull=True)}
        for order, q in enumerate(questions):
            fields = {"text": q["text"].strip(), "good_answer": str(q.get("good_answer", "")).strip(),
                      "outcome": q.get("outcome"), "order": order, "retired_at": None}
            question = existing.pop(q["id"], None)
            if question is None:
                OralQuestion.objects.create(part=part, key=q["id"], **fields)
                counts["new"] += 1
            elif any(getattr(question, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(question, k, v)
                question.save()
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        for question in existing.values():
            if question.retired_at is None:
                question.retired_at = timezone.now()
                question.save(update_fields=["retired_at", "updated_at"])
                counts["retired"] += 1
        return counts
