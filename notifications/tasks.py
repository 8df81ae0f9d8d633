"""Sending e-mail: a Celery task per message, through Django's e-mail backend (SMTP in production).
A failure to reach the mail server is retried with growing pauses; the record says how it went."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from languages import override_for
from notifications.messages import compose
from notifications.models import EmailPreference, Notification

log = logging.getLogger(__name__)


def retry_seconds(retries: int) -> float:
    """30 s, 1 min, 2 min, … capped at 30 min (NOTIFY_RETRY_SECONDS scales it, for tests)."""
    return min(settings.NOTIFY_RETRY_SECONDS * 2**retries, 1800)


@shared_task(bind=True, name="notifications.send", max_retries=None)
def send(self, notification_id: int) -> str:
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None or notification.status != Notification.Status.PENDING:
        return "nothing-to-do"
    user = notification.user
    if not EmailPreference.of(user).wants(notification.kind) or not user.email:
        Notification.objects.filter(pk=notification_id).update(
            status=Notification.Status.SKIPPED, last_error="" if user.email else "no e-mail address")
        return "skipped"
    with override_for(user):  # issue 14, item 8: in the language the user chose (languages/)
        message = compose(notification)
    try:
        EmailMessage(message.subject, message.body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()
    except (smtplib.SMTPException, OSError) as exc:
        attempts = notification.attempts + 1
        final = self.request.retries >= settings.NOTIFY_MAX_RETRIES
        Notification.objects.filter(pk=notification_id).update(
            attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            status=Notification.Status.FAILED if final else Notification.Status.PENDING)
        if final:
            log.error("e-mail %s failed %d times; giving up: %s", notification_id, attempts, exc)
            return "failed"
        log.warning("e-mail %s failed (%s); retrying", notification_id, exc)
        raise self.retry(countdown=retry_seconds(self.request.retries), exc=exc) from None
    Notification.objects.filter(pk=notification_id).update(
        status=Notification.Status.SENT, attempts=notification.attempts + 1, sent_at=timezone.now(), last_error="")
    return "sent"


def notify(*, user, kind: str, key: str) -> Notification | None:
    """Record the message once and send it after the current transaction commits; a person who opted
    out gets a record marked skipped and no message."""
    notification = Notification.record(user=user, kind=kind, key=key)
    if notification is None:
        return None
    if not EmailPreference.of(user).wants(kind):
        Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.SKIPPED)
        return notification
    transaction.on_commit(lambda: _enqueue(notification.pk))
    return notification


def _enqueue(notification_id: int) -> None:
    try:
        send.apply_async(args=[notification_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - a broker outage must not break the grading or the decision
        log.warning("could not enqueue e-mail %s (%s); it stays pending", notification_id, exc)
