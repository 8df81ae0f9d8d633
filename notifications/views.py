from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import modelform_factory
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from notifications.models import EmailPreference

PreferenceForm = modelform_factory(EmailPreference, fields=["result_ready", "grade_decided"])


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Which e-mails the signed-in person wants; every message links here."""
    form = PreferenceForm(request.POST or None, instance=EmailPreference.of(request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Your e-mail settings are saved."))
        return redirect("notification_settings")
    return render(request, "notifications/preferences.html", {"form": form})
