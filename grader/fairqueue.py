"""The fair queue at the deadline: which waiting run a free slot takes next, a run's place, the figures.

**The order.** Every student's (or group's) first waiting submission of a part goes before anybody's
resubmission, and among equals the oldest goes first: runs are taken by (`fair_rank`, `created_at`), where
`fair_rank` counts the owner's earlier runs of that assignment still waiting or running when the run was
queued (`GradingRun.save` sets it once). So ten quick resubmissions by one student wait behind everybody
else's first. The rank is not lowered when the owner's earlier run finishes: then the second run would be
rank 0 and older than everybody else's first, so a student who queued ten runs would be graded ten times in
a row while the others wait (what the real-worker test `test_a_real_worker_takes_runs_in_the_fair_order`
caught). A run queued after the owner's earlier ones finished is rank 0 again.

**A dispatcher on the database, not broker priorities.** A broker message carries no run: it is a token
meaning "a slot may take the next run of queue Q" (`grader.tasks.grade_next`). The worker that receives
it asks the database for the order at that moment and claims the first run it can (the claim is the
atomic conditional update the task already uses, so two workers never take the same run; one that loses
tries the next). Why not Celery/Redis priorities:
- a priority is fixed when a message is sent, but a resubmission's rank must change when the student's
  earlier run finishes;
- a prefork worker reserves messages before a slot is free, and a reserved message keeps its place
  however urgent later ones are; tokens are interchangeable, so nothing reserved is ever out of order;
- runs sent again (the sweeper, an expired lease, a retry after a platform problem) would go to the back
  of a Redis list; in the database they keep their age;
- the place and estimated start a student sees are computed by the same query that dispatches, and the
  embedded filesystem broker (no priorities) gets the same order.
The cost is one indexed query per dispatch (`fair_queue_order` index), negligible next to a run.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.utils import timezone

from courseware.models import GradingRun, WorkerHeartbeat

RECENT_RUNS = 50  # finished runs whose durations estimate the next ones
DEFAULT_JOB_SECONDS = 120.0  # before any run of the queue finished


def waiting(queue: str, now: dt.datetime | None = None) -> QuerySet[GradingRun]:
    """Runs a slot of `queue` may take now, in the fair order: queued ones past their `not_before`, and
    running ones whose lease expired (their worker died), which keep their rank and age."""
    now = now or timezone.now()
    ready = Q(status=GradingRun.Status.QUEUED) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    abandoned = Q(status=GradingRun.Status.RUNNING, lease_expires_at__lt=now)
    return GradingRun.objects.filter(ready | abandoned, queue=queue).order_by("fair_rank", "created_at", "pk")


def candidates(queue: str, limit: int = 20) -> list[int]:
    """The first runs in the order; the caller claims the first one it can."""
    return list(waiting(queue).values_list("pk", flat=True)[:limit])


def ahead_of(run: GradingRun) -> int:
    """How many waiting runs of the same queue a free slot takes before this one."""
    before = Q(fair_rank__lt=run.fair_rank) | Q(fair_rank=run.fair_rank, created_at__lt=run.created_at) | Q(
        fair_rank=run.fair_rank, created_at=run.created_at, pk__lt=run.pk)
    return waiting(run.queue).filter(before).exclude(pk=run.pk).count()


def job_seconds(queue: str) -> float:
    """The median time a run of this queue held its slot, over the last finished runs."""
    recent = (GradingRun.objects.filter(queue=queue, status=GradingRun.Status.DONE, started_at__isnull=False,
                                        finished_at__isnull=False)
              .order_by("-finished_at").values_list("started_at", "finished_at")[:RECENT_RUNS])
    durations = [(end - start).total_seconds() for start, end in recent if end > start]
    return statistics.median(durations) if durations else DEFAULT_JOB_SECONDS


def slots_serving(queue: str, now: dt.datetime | None = None) -> int:
    """Slots of the workers that answer and consume this queue."""
    return sum(len(w.slots) or 1 for w in WorkerHeartbeat.objects.all() if queue in w.queues and w.answering(now))


@dataclass(frozen=True)
class Place:
    """A waiting run's place in its queue and when it should start, for the submission page."""

    ahead: int  # runs a free slot takes before this one
    running: int  # runs of the queue being graded now
    slots: int  # slots of answering workers on this queue
    job_seconds: float  # median time of a recent run
    waits_for: str = ""  # why the estimate is open-ended, in words for the student

    @property
    def position(self) -> int:
        return self.ahead + 1

    @property
    def wait_seconds(self) -> float | None:
        """The expected wait: the runs ahead and those running share the slots, each taking about a job's
        time; a running one is half done on average. None when no worker is serving the queue."""
        if self.slots == 0:
            return None
        if self.ahead + self.running < self.slots:
            return 0.0
        slot_rounds = (self.ahead + self.running - self.slots) / self.slots
        return (slot_rounds + 0.5) * self.job_seconds


def place(run: GradingRun, now: dt.datetime | None = None) -> Place | None:
    """Where a queued run stands; None when it is not waiting."""
    if run.status != GradingRun.Status.QUEUED:
        return None
    now = now or timezone.now()
    slots = slots_serving(run.queue, now)
    running = GradingRun.objects.filter(queue=run.queue, status=GradingRun.Status.RUNNING).count()
    waits_for = ""
    if run.not_before and run.not_before > now:
        waits_for = "it is retried shortly after a problem on our side"
    elif slots == 0:
        waits_for = "no grading worker is running right now; staff can see this"
    return Place(ahead=ahead_of(run), running=running, slots=slots, job_seconds=job_seconds(run.queue),
                 waits_for=waits_for)


@dataclass
class QueueFigures:
    """What staff see on the dashboard and Prometheus scrapes from /metrics."""

    depth: dict[str, int] = field(default_factory=dict)  # waiting runs per queue
    oldest_wait_seconds: dict[str, float] = field(default_factory=dict)  # per queue
    running: dict[tuple[str, str], int] = field(default_factory=dict)  # (worker, slot) -> runs
    failures_last_hour: int = 0
    finished_last_hour: int = 0
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    silent_workers: list[WorkerHeartbeat] = field(default_factory=list)
    slots_total: int = 0


def figures(now: dt.datetime | None = None) -> QueueFigures:
    now = now or timezone.now()
    result = QueueFigures()
    oldest: dict[str, dt.datetime] = {}
    for queue, created in GradingRun.objects.filter(status=GradingRun.Status.QUEUED).values_list("queue", "created_at"):
        result.depth[queue] = result.depth.get(queue, 0) + 1
        oldest[queue] = min(oldest.get(queue, created), created)
    result.oldest_wait_seconds = {q: (now - t).total_seconds() for q, t in oldest.items()}
    running: Counter[tuple[str, str]] = Counter()
    for host, slot in GradingRun.objects.filter(status=GradingRun.Status.RUNNING).values_list("worker_host", "slot"):
        running[(host.rsplit(":", 1)[0], slot or "—")] += 1
    result.running = dict(sorted(running.items()))
    hour_ago = now - dt.timedelta(hours=1)
    finished = GradingRun.objects.filter(finished_at__gte=hour_ago)
    result.finished_last_hour = finished.count()
    result.failures_last_hour = finished.filter(
        Q(status=GradingRun.Status.ERROR) | Q(status=GradingRun.Status.DONE, grader_errors__gt=0)).count()
    result.workers = list(WorkerHeartbeat.objects.all())
    result.silent_workers = [w for w in result.workers if not w.answering(now)]
    result.slots_total = sum(len(w.slots) or 1 for w in result.workers if w.answering(now))
    return result


def running_by_worker(fig: QueueFigures) -> dict[str, list[tuple[str, int]]]:
    """The dashboard's grouping: each worker's slots with their running runs."""
    grouped: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (worker, slot), n in fig.running.items():
        grouped[worker].append((slot, n))
    return dict(grouped)
