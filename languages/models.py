"""A user's chosen language, kept on the account so that it follows them to every browser and into
e-mails (see `languages.language_of`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class LanguagePreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="language_preference")
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)

    def __str__(self) -> str:
        return f"{self.user}: {self.language}"

    @classmethod
    def choose(cls, user, language: str) -> None:
        cls.objects.update_or_create(user=user, defaults={"language": language})
