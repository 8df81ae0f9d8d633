"""Personal access tokens: how the command-line client and other programs act for one user.

A token is made on the profile page and shown once; only its SHA-256 is stored. That is enough (and
unlike a password hash, allows a lookup by digest) because the token is 256 random bits that nobody
chooses or remembers: there is no dictionary to try. A token acts only for its user, stops at its expiry
date or when revoked, and says what it may reach: a student token the student's own endpoints, a staff
token also the staff endpoints of rounds where its user is staff (the round's own check still applies).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from courseware.models import STAFF_ROLES
from examination.models import AuditEntry

TOKEN_PREFIX = "dd2601_"
SHOWN_PREFIX_CHARS = len(TOKEN_PREFIX) + 6  # what lists show, so a user can tell their tokens apart
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # don't write the row on every request of a watch loop


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def may_hold_staff_token(user) -> bool:
    """Staff of some round (or a superuser): the only users a staff token can be made for."""
    return user.is_superuser or user.enrollments.filter(role__in=STAFF_ROLES).exists()


class AccessToken(models.Model):
    class Scope(models.TextChoices):
        STUDENT = "student", _("Student: your own parts, submissions and results")
        STAFF = "staff", _("Staff: also the staff endpoints of your rounds")

    MAX_DAYS = {Scope.STUDENT: 365, Scope.STAFF: 90}

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(_("name"), max_length=100, help_text=_("Where you use it, e.g. “laptop”."))
    prefix = models.CharField(max_length=SHOWN_PREFIX_CHARS, help_text="The token's first characters, for lists.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token; the token is never stored.")
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.STUDENT)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}) of {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and timezone.now() < self.expires_at and self.user.is_active

    @property
    def is_staff_scope(self) -> bool:
        return self.scope == self.Scope.STAFF

    @classmethod
    def issue(cls, user, *, name: str, days: int, scope: str = Scope.STUDENT) -> tuple[AccessToken, str]:
        """A new token for `user`; returns the row and the token itself, which exists only in this answer."""
        scope = cls.Scope(scope)
        if scope == cls.Scope.STAFF and not may_hold_staff_token(user):
            raise ValidationError(_("Only a round's staff can make a staff token."))
        if not 1 <= days <= cls.MAX_DAYS[scope]:
            raise ValidationError(_("A %(scope)s token lasts 1 to %(days)d days.")
                                  % {"scope": scope.value, "days": cls.MAX_DAYS[scope]})
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        row = cls.objects.create(user=user, name=name.strip() or "token", prefix=token[:SHOWN_PREFIX_CHARS],
                                 digest=digest_of(token), scope=scope, created_at=now,
                                 expires_at=now + dt.timedelta(days=days))
        AuditEntry.record(actor=user, action="access_token.issue", obj=row, course_round=None,
                          after={"name": row.name, "scope": row.scope, "expires_at": row.expires_at.isoformat()})
        return row, token

    @classmethod
    def authenticate(cls, presented: str) -> AccessToken | None:
        """The active token that `presented` is, or None (unknown, revoked, expired, or its user disabled)."""
        if not presented.startswith(TOKEN_PREFIX):
            return None
        row = cls.objects.select_related("user").filter(digest=digest_of(presented)).first()
        if row is None or not row.is_active:
            return None
        now = timezone.now()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            cls.objects.filter(pk=row.pk).update(last_used_at=now)
        return row

    def revoke(self, *, by) -> None:
        """Stop the token now. Only its own user (or a superuser, in the admin) revokes it."""
        if by != self.user and not by.is_superuser:
            raise ValidationError(_("This is not your token."))
        if self.revoked_at is not None:
            return
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        AuditEntry.record(actor=by, action="access_token.revoke", obj=self, course_round=None,
                          after={"name": self.name, "revoked_at": self.revoked_at.isoformat()})
