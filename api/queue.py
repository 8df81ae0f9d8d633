"""Where a queued run stands: its place in its queue and, when known, an estimated start.

HOOK for issue 13 (queue place and estimated start, built by another engineer at the same time): when
`courseware.models.GradingRun` gains its own `queue_standing()` (returning an object with `place` and
`estimated_start`), this module returns that and the count below goes away. Until then the place is
the number of runs queued on the same queue (cpu or gpu) before this one, plus one, and there is no
estimate: the API's field `estimated_start` stays null.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from courseware.models import GradingRun


@dataclass(frozen=True)
class QueueStanding:
    place: int | None  # 1 = next to start; None once the run has started
    estimated_start: dt.datetime | None = None


def queue_standing(run: GradingRun) -> QueueStanding:
    if run.status != GradingRun.Status.QUEUED:
        return QueueStanding(place=None)
    own = getattr(run, "queue_standing", None)
    if callable(own):  # issue 13's implementation, once it lands
        standing = own()
        return QueueStanding(place=standing.place, estimated_start=getattr(standing, "estimated_start", None))
    ahead = GradingRun.objects.filter(status=GradingRun.Status.QUEUED, queue=run.queue).filter(
        created_at__lt=run.created_at).count()
    return QueueStanding(place=ahead + 1)
