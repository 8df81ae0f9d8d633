"""Sign-in and sign-out pages: the local password form beside the KTH button, and logout that also ends
the KTH session when the user came through it."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from courseware.models import CourseRound
from identity import roster


class LoginView(auth_views.LoginView):
    template_name = "identity/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(sso_enabled=settings.SSO_ENABLED, students_use_sso=not settings.LOCAL_LOGIN_FOR_STUDENTS)
        return context


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Log out here; after a KTH sign-in, also at the provider (RP-initiated logout), which then sends
    the browser back to our login page."""
    id_token = request.session.get("oidc_id_token")
    auth.logout(request)
    if id_token and settings.OIDC_OP_LOGOUT_ENDPOINT:
        back = request.build_absolute_uri(reverse("login"))
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": back})
        # A page, not a redirect: the CSP's form-action 'self' also covers redirects after a form's POST.
        return render(request, "identity/logged_out.html",
                      {"provider_logout": f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{query}"})
    return redirect(settings.LOGOUT_REDIRECT_URL)


@login_required
def roster_import(request: HttpRequest, round_id: int) -> HttpResponse:
    """Staff upload a participant file, see the preview, then confirm; the file's text travels with the
    confirmation, so what is written is exactly what was previewed (and is checked again)."""
    course_round = get_object_or_404(CourseRound.objects.select_related("course"), pk=round_id)
    if not (request.user.is_superuser or course_round.role_of(request.user)):
        raise Http404("No such round")
    if not course_round.is_staff(request.user):
        raise PermissionDenied("Staff only")
    context: dict = {"round": course_round}
    if request.method == "POST":
        text = _uploaded_text(request)
        if text is None:
            context["problem"] = "Choose a CSV file (UTF-8) to import."
        elif request.POST.get("confirm"):
            result = roster.apply(text, course_round, by=request.user)
            if result.ok:
                messages.success(request, f"Roster imported: {len(result.rows)} students.")
                return redirect("roster_import", round_id=round_id)
            context.update(preview=result, text=text)
        else:
            context.update(preview=roster.preview(text, course_round), text=text)
    return render(request, "identity/roster.html", context)


def _uploaded_text(request: HttpRequest) -> str | None:
    if "text" in request.POST:
        return request.POST["text"]
    upload = request.FILES.get("file")
    if upload is None or upload.size > 2 * 2**20:
        return None
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
