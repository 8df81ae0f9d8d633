"""The operations endpoints: Prometheus metrics of the grading queue, and archives for remote workers.

`/metrics` answers staff who are signed in, or a scraper from `DD2601_METRICS_ALLOWED` (addresses or
networks, as the trusted-proxy middleware resolved the client); everyone else gets a 404, like a page
that does not exist. The figures are those of the staff dashboard (`grader.fairqueue.figures`).

`/internal/runs/<id>/archive.zip?sig=…` hands a run's archive to the worker that holds the run: the
signature names the run and the attempt (`grader.remote_archives`), and the attempt must still hold it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from courseware.models import STAFF_ROLES, GradingRun
from courseware.proxy import address_in
from grader import fairqueue, remote_archives


def may_read_metrics(request: HttpRequest) -> bool:
    user = request.user
    if user.is_authenticated and (user.is_superuser or user.enrollments.filter(role__in=STAFF_ROLES).exists()):
        return True
    return address_in(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_ADDRESSES)


def registry_of(fig: fairqueue.QueueFigures) -> CollectorRegistry:
    """The dashboard's figures as Prometheus gauges (a fresh registry per scrape: they are read, not kept)."""
    registry = CollectorRegistry(auto_describe=True)
    depth = Gauge("dd2601_queue_depth", "Grading runs waiting, per queue", ["queue"], registry=registry)
    oldest = Gauge("dd2601_queue_oldest_wait_seconds", "Age of the oldest waiting run, per queue", ["queue"],
                   registry=registry)
    for queue in sorted(set(fig.depth) | {"cpu", "gpu"}):
        depth.labels(queue).set(fig.depth.get(queue, 0))
        oldest.labels(queue).set(fig.oldest_wait_seconds.get(queue, 0.0))
    running = Gauge("dd2601_runs_running", "Grading runs being graded, per worker and slot", ["worker", "slot"],
                    registry=registry)
    for (worker, slot), n in fig.running.items():
        running.labels(worker, slot).set(n)
    Gauge("dd2601_runs_failed_last_hour", "Runs that ended in a platform or grader error in the last hour",
          registry=registry).set(fig.failures_last_hour)
    Gauge("dd2601_runs_finished_last_hour", "Runs finished in the last hour", registry=registry
          ).set(fig.finished_last_hour)
    Gauge("dd2601_slots", "Slots of the workers that answer", registry=registry).set(fig.slots_total)
    up = Gauge("dd2601_worker_up", "1 if the worker reported within three heartbeats, else 0", ["worker"],
               registry=registry)
    silent = {w.name for w in fig.silent_workers}
    for worker in fig.workers:
        up.labels(worker.name).set(0 if worker.name in silent else 1)
    return registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(request):
        raise Http404("No such page")
    return HttpResponse(generate_latest(registry_of(fairqueue.figures())), content_type=CONTENT_TYPE_LATEST)


@require_GET
def run_archive(request: HttpRequest, run_id: int) -> HttpResponse:
    attempt = remote_archives.verified_attempt(run_id, request.GET.get("sig", ""))
    if attempt is None:
        raise Http404("No such archive")
    run = (GradingRun.objects.select_related("submission")
           .filter(pk=run_id, attempt=attempt, status=GradingRun.Status.RUNNING).first())
    if run is None or not run.submission.archive_path.exists():
        raise Http404("No such archive")
    return FileResponse(run.submission.archive_path.open("rb"), content_type="application/zip")
