from django import forms
from django.utils.translation import gettext_lazy

from review.models import ANSWER_MAX_CHARS, REASON_MAX_CHARS

# Neither text is required here: an empty one reaches the model, whose refusal says what to write.


class RegradeRequestForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("What should staff review, and why?"), max_length=REASON_MAX_CHARS, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("Name the check and say what you think is wrong with its result."))


class RegradeAnswerForm(forms.Form):
    answer = forms.CharField(label=gettext_lazy("Answer to the student"), max_length=ANSWER_MAX_CHARS, required=False,
                             widget=forms.Textarea(attrs={"rows": 3}))
    regrade = forms.BooleanField(label=gettext_lazy("Grade the submission again (a new run; this one is kept)"),
                                 required=False)
