"""KTH single sign-on with mozilla-django-oidc.

mozilla-django-oidc does the authorization-code flow: the redirect with `state` and `nonce` kept in the
session, the code exchange, fetching the provider's JWKS and checking the signature. We add what KTH needs
and what the library leaves out:
- the claims come from the id_token (KTH's userinfo endpoint returns little more than `sub`);
- the token is checked fully: signature, expiry, issuer, audience and nonce (the library checks only
  signature and nonce, and lets an expired token escape as an unhandled error);
- users are matched on the KTH id claim (`identity.people`), never on e-mail; which claim holds what is
  configuration (`OIDC_CLAIMS`);
- every refusal (a forged or expired token, a wrong state, an error from the provider) ends on a page that
  says what happened, not on a bare redirect or a 500.
"""

from __future__ import annotations

import logging

import jwt
import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.shortcuts import redirect, render
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from identity import people

log = logging.getLogger(__name__)


class SignInRefused(SuspiciousOperation):
    """A sign-in that must not succeed, with the reason in the user's words."""


def claims_to_person(claims: dict) -> people.Person:
    """The person an id_token describes, read through the configured claim names (`OIDC_CLAIMS`)."""
    names = settings.OIDC_CLAIMS
    return people.Person(**{field: str(claims.get(claim) or "") for field, claim in names.items()})


class KthOidcBackend(OIDCAuthenticationBackend):
    """The authentication backend for KTH's OpenID Connect login (see the module's docstring)."""

    def authenticate(self, request, **kwargs):
        if not settings.SSO_ENABLED:
            return None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        """Signature against the provider's JWKS, then exp/iat, issuer, audience and nonce; each failure
        becomes a SignInRefused with a reason a person can act on."""
        key = self.retrieve_matching_jwk(token) if self.OIDC_RP_IDP_SIGN_KEY is None else self.OIDC_RP_IDP_SIGN_KEY
        try:
            payload = jwt.decode(
                token, key, algorithms=[self.OIDC_RP_SIGN_ALGO], audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_OP_ISSUER or None, leeway=settings.OIDC_CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub"], "verify_iss": bool(settings.OIDC_OP_ISSUER)})
        except jwt.ExpiredSignatureError:
            raise SignInRefused("The answer from the KTH login had expired. Please sign in again.") from None
        except jwt.InvalidSignatureError:
            raise SignInRefused("The answer from the KTH login did not carry a valid signature, so it was "
                                "refused.") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise SignInRefused("The answer from the KTH login was meant for another site or came from "
                                "another issuer, so it was refused.") from None
        except jwt.InvalidTokenError as exc:
            raise SignInRefused(f"The answer from the KTH login could not be verified ({exc}).") from None
        if self.get_settings("OIDC_USE_NONCE", True) and kwargs.get("nonce") != payload.get("nonce"):
            raise SignInRefused("The answer from the KTH login did not belong to this sign-in (nonce).")
        return payload

    def retrieve_matching_jwk(self, token):
        try:
            return super().retrieve_matching_jwk(token)
        except SuspiciousOperation:
            raise SignInRefused("The answer from the KTH login was signed with a key the login does not "
                                "publish, so it was refused.") from None

    def get_userinfo(self, access_token, id_token, payload):
        """The verified id_token's claims: KTH puts the person's details there, not in userinfo."""
        return payload

    def verify_claims(self, claims) -> bool:
        try:
            claims_to_person(claims).validated()
        except ValidationError as exc:
            raise SignInRefused("The KTH login did not say who you are (" + " ".join(exc.messages) + ").") from None
        return True

    def filter_users_by_claims(self, claims):
        user = people.find(claims_to_person(claims).kth_id)
        return [user] if user is not None else self.UserModel.objects.none()

    def create_user(self, claims):
        user, _ = people.find_or_create(claims_to_person(claims))
        people.update_details(user, claims_to_person(claims).validated())
        return user

    def update_user(self, user, claims):
        people.update_details(user, claims_to_person(claims).validated())
        return user


class SsoStartView(OIDCAuthenticationRequestView):
    """The redirect to the KTH login; without SSO configured, back to the password form."""

    def get(self, request):
        if not settings.SSO_ENABLED:
            return redirect("login")
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """The provider's redirect back to us; a refusal renders `identity/sign_in_failed.html` (HTTP 400)."""

    def get(self, request):
        if request.GET.get("error"):
            reason = request.GET.get("error_description") or request.GET["error"]
            super().get(request)  # forgets the state and logs out, as the library does
            return self.refused(f"The KTH login reported a problem: {reason}.")
        state = request.GET.get("state")
        if state and state not in request.session.get("oidc_states", {}):
            return self.refused("This sign-in was not started from this browser, or it was already used "
                                "(its state does not match). Please start again.")
        try:
            return super().get(request)
        except SignInRefused as exc:
            log.warning("single sign-on refused: %s", exc)
            return self.refused(str(exc))
        except requests.RequestException as exc:
            log.warning("single sign-on failed talking to the provider: %s", exc)
            return self.refused("The KTH login could not be reached to finish signing you in. Please try "
                                "again in a moment.", status=502)

    def login_failure(self):
        return self.refused("The sign-in did not complete. Please start again.")

    def refused(self, reason: str, status: int = 400):
        return render(self.request, "identity/sign_in_failed.html", {"reason": reason}, status=status)


class LocalPasswordBackend(ModelBackend):
    """Django's password login, which stays for staff and the embedded default; with
    `LOCAL_LOGIN_FOR_STUDENTS` off, students (everyone who is not staff) must use single sign-on."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return settings.LOCAL_LOGIN_FOR_STUDENTS or people.is_staff_person(user)
