"""From an LTI user (a launch or a roster entry) to our user, through the one matching rule
(`identity.people`): the KTH id when the platform sends it (Canvas: the SIS id as `person_sourcedid`);
otherwise the platform's stable `sub`, remembered on django-lti's LtiUser."""

from __future__ import annotations

import hashlib

from django.conf import settings
from lti_tool.models import LtiUser

from identity import people


def kth_id_of(claims: dict) -> str:
    """The KTH id in a launch's LIS claim or a roster entry (`LTI_KTH_ID_CLAIM`), or ""."""
    lis = claims.get("https://purl.imsglobal.org/spec/lti/claim/lis") or {}
    name = settings.LTI_KTH_ID_CLAIM
    return str(lis.get(name) or claims.get(name) or claims.get(f"lis_{name}") or "").strip()


def user_for(lti_user: LtiUser, claims: dict):
    """Our user for this platform user, made the first time; names and e-mail refreshed from the platform."""
    kth_id = kth_id_of(claims)
    details = people.Person(kth_id=kth_id, email=lti_user.email or "", given_name=lti_user.given_name or "",
                            family_name=lti_user.family_name or "")
    user = lti_user.auth_user
    if user is None and kth_id:
        user, _ = people.find_or_create(details)
    elif user is None:
        sub_hash = hashlib.sha256(f"{lti_user.registration_id}:{lti_user.sub}".encode()).hexdigest()[:12]
        user = people.create_unidentified(f"lti-{sub_hash}", details)
    people.update_details(user, details)
    if lti_user.auth_user_id != user.pk:
        LtiUser.objects.filter(pk=lti_user.pk).update(auth_user=user)
        lti_user.auth_user = user
    return user
