"""E-mail to students: what each person wants to hear about, and a record of every message, so a
redelivered task or a repeated hook sends a message once, and staff can see what failed."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    RESULT_READY = "result_ready", _("A submission's result is ready")
    GRADE_DECIDED = "grade_decided", _("The final grade is decided")


class EmailPreference(models.Model):
    """A person's opt-outs; no row means every message is wanted."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preference")
    result_ready = models.BooleanField(_("e-mail me when a result is ready"), default=True)
    grade_decided = models.BooleanField(_("e-mail me when my grade is decided"), default=True)

    def __str__(self) -> str:
        return f"e-mail preferences of {self.user}"

    @classmethod
    def of(cls, user) -> EmailPreference:
        return cls.objects.filter(user=user).first() or cls(user=user)

    def wants(self, kind: str) -> bool:
        return bool(getattr(self, kind))


class Notification(models.Model):
    """One message to one person about one thing (`key`: the run or the decision it is about)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent (opted out or no address)"
        FAILED = "failed", "Failed after every retry"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=64, help_text="What it is about, e.g. run:12 or decision:7")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "key", "user"], name="one_message_per_event")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} to {self.user} ({self.status})"

    @classmethod
    def record(cls, *, user, kind: str, key: str) -> Notification | None:
        """The message, recorded once; None if it was recorded before (the event was seen already)."""
        try:
            with transaction.atomic():
                return cls.objects.create(user=user, kind=kind, key=key)
        except IntegrityError:
            return None
