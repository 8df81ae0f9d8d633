"""The fair queue on the pages: a waiting run's place and expected start (the submission page, polled
live with the rest of the run's status), and the queue and workers on the staff dashboard."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from grader import fairqueue

register = template.Library()


def minutes(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


@register.inclusion_tag("courseware/_queue_place.html")
def queue_place(run) -> dict:
    place = fairqueue.place(run)
    context: dict = {"place": place}
    if place is not None and place.wait_seconds is not None:
        context["wait"] = minutes(place.wait_seconds) if place.wait_seconds > 0 else ""
        context["start_at"] = timezone.now() + dt.timedelta(seconds=place.wait_seconds)
    context["resubmission"] = run.fair_rank > 0
    return context


@register.inclusion_tag("courseware/_queue_figures.html")
def queue_figures() -> dict:
    fig = fairqueue.figures()
    running = fairqueue.running_by_worker(fig)
    queues = [{"name": q, "depth": fig.depth.get(q, 0), "oldest": fig.oldest_wait_seconds.get(q)}
              for q in sorted(set(fig.depth) | {"cpu", "gpu"})]
    silent = {w.name for w in fig.silent_workers}
    workers = [{"worker": w, "silent": w.name in silent, "running": running.pop(w.name, [])} for w in fig.workers]
    workers += [{"worker": None, "name": name, "silent": True, "running": slots} for name, slots in running.items()]
    return {"fig": fig, "queues": queues, "workers": workers, "now": timezone.now()}
