"""The profile page: the language switch and personal access tokens (made, shown once, revoked)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from api.forms import NewTokenForm
from api.models import AccessToken


def _render(request: HttpRequest, form: NewTokenForm, *, new_token: str = "", status: int = 200) -> HttpResponse:
    response = render(request, "api/profile.html", {
        "form": form, "new_token": new_token, "tokens": request.user.access_tokens.all(),
        "api_base": request.build_absolute_uri("/api/v1/")}, status=status)
    if new_token:
        response["Cache-Control"] = "no-store"  # the one page that shows the token: never from a cache
    return response


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return _render(request, NewTokenForm(user=request.user))


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Answered in place, not redirected: the token is in this answer and nowhere else."""
    form = NewTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render(request, form, status=400)
    try:
        _row, token = AccessToken.issue(request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"],
                                        scope=form.cleaned_data["scope"])
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render(request, form, status=400)
    return _render(request, NewTokenForm(user=request.user), new_token=token)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    row = get_object_or_404(AccessToken, pk=token_id, user=request.user)  # someone else's token: a 404
    row.revoke(by=request.user)
    messages.success(request, _("Token “%(name)s” revoked: it no longer works.") % {"name": row.name})
    return redirect("profile")
