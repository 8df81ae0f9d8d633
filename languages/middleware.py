"""Django's LocaleMiddleware, with the user's stored choice first (`languages.activate_for_request`).

It sits after AuthenticationMiddleware, because the stored choice needs the user; we use no
language-prefixed URLs, so nothing needs it earlier."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware

from languages import activate_for_request


class UserLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        activate_for_request(request, getattr(request, "user", None))
