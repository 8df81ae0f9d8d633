"""LTI roles to ours. Canvas sends a TA as Instructor plus the TeachingAssistant sub-role, so the sub-role
is looked at first: Learner → student; Instructor → examiner; Instructor#TeachingAssistant → TA."""

from __future__ import annotations

from lti_tool.lti_core.utils import normalize_role

from courseware.models import Role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"


def our_role(lti_roles: list[str]) -> str | None:
    """Our role for a member's LTI context roles, or None when none gives access (e.g. an observer)."""
    roles = {normalize_role(r) for r in lti_roles}
    if any(r.endswith("#TeachingAssistant") for r in roles):
        return Role.TA
    if f"{MEMBERSHIP}#Instructor" in roles:
        return Role.EXAMINER
    if f"{MEMBERSHIP}#Learner" in roles:
        return Role.STUDENT
    return None
