"""Forms. The upload's rules live in the upload service (courseware.uploads); the form only gathers the
inputs and shows the service's words."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courseware.uploads import declaration_problem

MAX_FILES = 30


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        files = data if isinstance(data, (list, tuple)) else [data]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(_("Upload at most %(count)d files, or one zip.") % {"count": MAX_FILES})
        return [single(f, initial) for f in files]


class SubmissionForm(forms.Form):
    files = MultipleFileField(
        label=gettext_lazy("Your files"),
        help_text=gettext_lazy("Either one .zip of your solution folder, or the .py files themselves."))
    declaration = forms.CharField(
        label=gettext_lazy("Declaration of help received and sources used"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        help_text=gettext_lazy("Required by the course's ethical rules. Write “none” if you had no help and used no "
                               "sources beyond the course material."),
    )
    # Not required here: the upload service refuses a missing token with a message the page shows.
    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def clean_declaration(self) -> str:
        text = self.cleaned_data["declaration"].strip()
        if problem := declaration_problem(text):
            raise forms.ValidationError(problem)
        return text
