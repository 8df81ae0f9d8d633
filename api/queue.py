"""Where a queued run stands, for the API: issue 13's fair queue (`grader.fairqueue.place`, the one home
of the rule; the submission page shows the same) as plain fields."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from courseware.models import GradingRun
from grader import fairqueue


@dataclass(frozen=True)
class QueueStanding:
    place: int | None  # 1 = next to start; None once the run has started
    estimated_start: dt.datetime | None = None  # None when no worker serves the queue
    waits_for: str = ""  # why the estimate is open-ended, in words for the student


def queue_standing(run: GradingRun) -> QueueStanding:
    place = fairqueue.place(run)
    if place is None:
        return QueueStanding(place=None)
    wait = place.wait_seconds
    start = timezone.now() + dt.timedelta(seconds=wait) if wait is not None else None
    return QueueStanding(place=place.position, estimated_start=start, waits_for=place.waits_for)
