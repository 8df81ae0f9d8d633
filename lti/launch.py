"""An LTI 1.3 launch from Canvas: django-lti (on pylti1p3) does the OIDC login initiation, state and nonce,
and verifies the id_token against the platform's JWKS; `LaunchView` then links the Canvas course to a
round, maps the roles, enrols the person and lets them in.

The site refuses to be framed (X-Frame-Options, CSP), and inside Canvas's iframe our session cookie would
be a third-party cookie that browsers drop. So a framed launch shows one button that opens the site in a
new tab, carrying a single-use ticket that signs the person in there; a launch into a window goes straight on.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import login
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from lti_tool.views import LtiLaunchBaseView, OIDCLoginInitView
from pylti1p3.exception import LtiException

from courseware.models import Course, CourseRound
from identity import people as identity
from lti.models import RoundLink
from lti.people import user_for
from lti.roles import our_role

TICKET_SECONDS = 120
CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
FRAMEABLE = "default-src 'none'; style-src 'self'; frame-ancestors *; base-uri 'none'"
# pylti1p3's cookie check page (login initiation) is inline script and style; it shows nothing of ours.
COOKIE_CHECK = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "frame-ancestors *; base-uri 'none'")


def refusal(request: HttpRequest, reason: str, status: int = 403) -> HttpResponse:
    response = render(request, "lti/refused.html", {"reason": reason}, status=status)
    response["Content-Security-Policy"] = FRAMEABLE
    return response


class LoginInitView(OIDCLoginInitView):
    """Step 1 of a launch (django-lti's), with a policy that lets its cookie check run inside Canvas."""

    main_msg = _("Your browser keeps cookies from sites inside Canvas. Open DD2601 in a new tab instead: ")
    click_msg = _("open in a new tab")

    def get_oidc_response(self, request, registration_uuid, params):
        try:
            response = super().get_oidc_response(request, registration_uuid, params)
        except LtiException as exc:
            return refusal(request, _("Canvas's launch could not be started: %(reason)s") % {"reason": exc}, 400)
        response["Content-Security-Policy"] = COOKIE_CHECK
        return response


def round_for(lti_launch) -> CourseRound | None:
    """The round the launch's Canvas course is linked to; the first launch with the custom parameter
    `dd2601_round` ("DD2601 HT26") makes the link."""
    context = lti_launch.context
    link = RoundLink.objects.filter(context=context).select_related("round").first()
    if link is not None:
        return link.round
    named = str((lti_launch.get_claim(CUSTOM) or {}).get("dd2601_round", "")).split()
    if len(named) != 2:
        return None
    course = Course.objects.filter(code=named[0]).first()
    course_round = CourseRound.objects.filter(course=course, code=named[1]).first() if course else None
    if course_round is not None:
        RoundLink.objects.get_or_create(context=context, defaults={"round": course_round})
    return course_round


@method_decorator(xframe_options_exempt, name="dispatch")
class LaunchView(LtiLaunchBaseView):
    """Step 2: the verified launch (`lti_launch`) → round, role, user, enrolment, then a ticket."""

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except LtiException as exc:
            return refusal(request, _("This launch from Canvas was refused: %(reason)s") % {"reason": exc}, 400)

    def handle_resource_launch(self, request, lti_launch) -> HttpResponse:
        course_round = round_for(lti_launch)
        if course_round is None:
            return refusal(request, _("This Canvas course is not linked to a DD2601 course round yet. Staff link "
                                      "it in the admin (Canvas course links)."))
        role = our_role(lti_launch.roles_claim)
        if role is None:
            return refusal(request, _("Your role in this Canvas course gives no access to DD2601 LAB1."))
        user = user_for(lti_launch.user, lti_launch.get_launch_data())
        identity.enroll(user, course_round, role, source="lti launch")
        ticket = secrets.token_urlsafe(32)
        cache.set(f"lti-ticket:{ticket}", {"user": user.pk, "round": course_round.pk}, TICKET_SECONDS)
        enter_url = reverse("lti:enter", args=[ticket])
        if lti_launch.document_target == "window":
            return redirect(enter_url)
        response = render(request, "lti/open_in_new_tab.html", {"enter_url": enter_url, "round": course_round})
        response["Content-Security-Policy"] = FRAMEABLE
        return response


def enter(request: HttpRequest, ticket: str) -> HttpResponse:
    """The new tab: the ticket is used once, within two minutes, and signs its person in."""
    key = f"lti-ticket:{ticket}"
    data = cache.get(key)
    if data is None or not cache.delete(key):
        raise Http404(_("This link from Canvas has expired or was already used. Open DD2601 from Canvas again."))
    user = identity.find_user(data["user"])
    login(request, user, backend="identity.oidc.KthOidcBackend")
    return redirect("round", round_id=data["round"])
