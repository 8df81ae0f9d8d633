"""Which language a person gets: the one home of that rule, for pages, the API, e-mails and the CLI.

1. The language the user chose with the switch (stored on their account, so that it follows them to
   another browser and into e-mails sent by a worker, where there is no request);
2. otherwise, for a request, what the request asks for: the language cookie the switch sets for a
   visitor who is not signed in, then the browser's Accept-Language (the command-line client sends its
   own);
3. otherwise settings.LANGUAGE_CODE (English).

Django's i18n does the rest (LocaleMiddleware's negotiation, gettext catalogues in locale/); what is
ours is the stored choice and its precedence.

An explicit Accept-Language on an API request wins over the stored choice: a program asking for a
language gets it (the CLI's `--lang`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation


def stored_language(user) -> str | None:
    """The language the user chose with the switch, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    from languages.models import LanguagePreference

    return LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()


def language_of(user) -> str:
    """The language to write to `user` in when there is no request (e-mails)."""
    return stored_language(user) or settings.LANGUAGE_CODE


@contextlib.contextmanager
def override_for(user) -> Iterator[str]:
    """Render something for `user` (an e-mail, say) in their language: `with override_for(user): ...`."""
    language = language_of(user)
    with translation.override(language):
        yield language


def activate_for_request(request: HttpRequest, user) -> str:
    """Activate the language of a request made by `user` (a browser with a session, or an API token)."""
    explicit_api_choice = request.path.startswith("/api/") and "HTTP_ACCEPT_LANGUAGE" in request.META
    language = None if explicit_api_choice else stored_language(user)
    language = language or translation.get_language_from_request(request)
    translation.activate(language)
    request.LANGUAGE_CODE = translation.get_language()
    return request.LANGUAGE_CODE
