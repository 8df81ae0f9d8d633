"""The client's own messages in English or Swedish (gettext; the catalogue is in locale/, compiled .mo
shipped in the package). The server's words (refusals, feedback) come in the language the client asks
for with Accept-Language, so the whole conversation is in one language."""

from __future__ import annotations

import gettext
import locale
import os
from pathlib import Path

SUPPORTED = ("en", "sv")
_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def choose(explicit: str | None = None, stored: str | None = None) -> str:
    """--lang, then DD2601_LANG, then the language chosen on the site (stored at login), then the system's."""
    for candidate in (explicit, os.environ.get("DD2601_LANG"), stored, *_system_languages()):
        if candidate and candidate[:2].lower() in SUPPORTED:
            return candidate[:2].lower()
    return "en"


def _system_languages() -> list[str]:
    found = [os.environ.get(name, "") for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")]
    found = [part for value in found for part in value.split(":") if part and part not in {"C", "POSIX"}]
    return found or [locale.getlocale()[0] or ""]


def activate(language: str) -> None:
    global _translation, _language
    _language = language
    _translation = gettext.translation("dd2601", localedir=Path(__file__).parent / "locale", languages=[language],
                                       fallback=True)


def current() -> str:
    return _language


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)
