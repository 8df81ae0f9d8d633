"""The language switch: Django's own `set_language` (it validates the language and the `next` address,
and sets the cookie), plus storing the choice on the account of a signed-in user."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from languages.models import LanguagePreference


@require_POST
def switch_language(request: HttpRequest) -> HttpResponse:
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        LanguagePreference.choose(request.user, language)
    return response
