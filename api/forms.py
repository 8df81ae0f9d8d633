"""The profile page's form for a new access token; the rules (who may have a staff token, how long a
token may last) are `AccessToken.issue`'s."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import AccessToken, may_hold_staff_token

DAY_CHOICES = [(7, _("7 days")), (30, _("30 days")), (90, _("90 days")), (180, _("180 days")), (365, _("365 days"))]


class NewTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, initial="dd2601 CLI",
                           help_text=_("Where you will use it, e.g. “laptop”."))
    days = forms.TypedChoiceField(label=_("Valid for"), choices=DAY_CHOICES, coerce=int, initial=90)
    scope = forms.ChoiceField(label=_("Scope"), choices=AccessToken.Scope.choices, initial=AccessToken.Scope.STUDENT)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_hold_staff_token(user):
            self.fields["scope"].choices = [(AccessToken.Scope.STUDENT, AccessToken.Scope.STUDENT.label)]
