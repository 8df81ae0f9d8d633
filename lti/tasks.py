"""Celery: send a student's pending scores to Canvas, retrying failures with growing pauses."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from lti.grades import mark_sent, send
from lti.models import ScorePost

log = logging.getLogger(__name__)
RETRY_SECONDS = 30


def post_scores_on_commit(link_id: int, student_id: int) -> None:
    def enqueue() -> None:
        try:
            post_scores.apply_async(args=[link_id, student_id], retry=False)
        except Exception as exc:  # noqa: BLE001 - the decision stands; staff see the post as waiting
            log.warning("could not enqueue grade post for link %s student %s: %s", link_id, student_id, exc)

    transaction.on_commit(enqueue)


@shared_task(bind=True, name="lti.post_scores", max_retries=None)
def post_scores(self, link_id: int, student_id: int) -> dict[str, int]:
    waiting = ScorePost.objects.filter(link_id=link_id, student_id=student_id).filter(
        Q(status=ScorePost.Status.PENDING) | Q(status=ScorePost.Status.FAILED)).select_related(
        "link__context__deployment__registration", "student")
    counts = {"sent": 0, "failed": 0}
    for post in waiting:
        try:
            send(post)
        except Exception as exc:  # noqa: BLE001 - Canvas down, a refused token, a missing student: retry, show staff
            counts["failed"] += 1
            final = self.request.retries >= settings.LTI_AGS_MAX_RETRIES
            ScorePost.objects.filter(pk=post.pk).update(
                status=ScorePost.Status.GAVE_UP if final else ScorePost.Status.FAILED,
                attempts=post.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000])
            log.warning("grade post %s failed (attempt %d): %s", post.pk, post.attempts + 1, exc)
            continue
        mark_sent(post)
        counts["sent"] += 1
    if counts["failed"] and self.request.retries < settings.LTI_AGS_MAX_RETRIES:
        raise self.retry(countdown=settings.LTI_AGS_RETRY_SECONDS * 2**self.request.retries)
    return counts
