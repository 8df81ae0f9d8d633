"""The API object: /api/v1/, its OpenAPI document (/api/v1/openapi.json) and docs page (/api/v1/docs).

Errors keep one shape (`api.schemas.Problem`: `detail`, and `kind` where there is one), so the command-line
client and other programs print one field: Django's 404 and 403 become that shape too.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI

from api import staff, student

api = NinjaAPI(
    title="DD2601 LAB1 API",
    version="1",
    urls_namespace="api-v1",
    description=("The student's parts, deadlines, submissions and results, and staff's view of a round. "
                 "Authenticate with a personal access token from your profile page: "
                 "`Authorization: Bearer dd2601_…`. See docs/api.md."),
)
api.add_router("/", student.router)
api.add_router("/staff", staff.router)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": _("Not found (or not yours to see)."), "kind": "not_found"},
                               status=404)


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": _("Only the round's staff may do this."), "kind": "forbidden"},
                               status=403)
