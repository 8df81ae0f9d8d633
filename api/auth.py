"""Bearer-token authentication for the API (django-ninja's HttpBearer parses the header; we look up the
token). A request with a valid token acts as the token's user: `request.user` is set, so the web views'
access helpers (`courseware.views._assignment_for`, `Submission.visible_to`, `CourseRound.is_staff`)
decide exactly as they do for a signed-in browser."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import HttpError
from ninja.security import HttpBearer

from api.models import AccessToken
from languages import activate_for_request


class TokenAuth(HttpBearer):
    """Any active token: the user's own parts, submissions and results."""

    def authenticate(self, request: HttpRequest, token: str) -> AccessToken | None:
        row = AccessToken.authenticate(token)
        if row is None:
            return None
        request.user = row.user
        activate_for_request(request, row.user)
        return row


class StaffTokenAuth(TokenAuth):
    """A staff-scope token; each endpoint still checks that the user is staff of the round it reads."""

    def authenticate(self, request: HttpRequest, token: str) -> AccessToken | None:
        row = super().authenticate(request, token)
        if row is not None and not row.is_staff_scope:
            raise HttpError(403, _("This endpoint needs a staff token; make one on your profile page."))
        return row
