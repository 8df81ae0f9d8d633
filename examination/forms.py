"""Forms gather and validate input; the rules they feed live on the models."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from courseware.models import CourseRound, Part, Role
from examination.models import Accommodation, ComponentRecord, Outcome, RoundSettings, http_url
from examination.policy import GRADES, Policy

OUTCOME_CHOICES = [("", "—"), *Outcome.choices]


def round_students(course_round: CourseRound):
    return get_user_model().objects.filter(
        enrollments__round=course_round, enrollments__role=Role.STUDENT).order_by("username")


class StudentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.get_full_name() or obj.username} ({obj.username})"


class AutosaveForm(forms.Form):
    """One oral answer or one part's outcome, saved as it is typed. `version` is the version the
    page started from: the save is refused if someone else saved since."""

    outcome = forms.ChoiceField(choices=OUTCOME_CHOICES, required=False)
    note = forms.CharField(required=False, strip=False, max_length=20_000)
    version = forms.IntegerField(min_value=0)


class ComponentForm(forms.Form):
    status = forms.ChoiceField(choices=ComponentRecord.Status.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)
    link = forms.URLField(required=False, validators=[http_url], assume_scheme="https", max_length=500,
                          help_text="http:// or https:// only")
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class DecisionForm(forms.Form):
    grade = forms.ChoiceField(choices=[(g, g) for g in GRADES])
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000,
                                help_text="Required when the grade differs from the proposal.")


class OpenSessionForm(forms.Form):
    block = forms.ChoiceField()

    def __init__(self, *args, policy: Policy, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["block"].choices = [(b.key, b.title) for b in policy.blocks]


class AdhocQuestionForm(forms.Form):
    part = forms.ModelChoiceField(queryset=Part.objects.none())
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    good_answer = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)

    def __init__(self, *args, parts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["part"].queryset = Part.objects.filter(pk__in=[p.pk for p in parts])
        self.fields["part"].empty_label = None


class AccommodationForm(forms.ModelForm):
    class Meta:
        model = Accommodation
        fields = ["student", "kind", "part", "extended_deadline", "description", "coordinator_reference"]
        widgets = {"extended_deadline": forms.DateTimeInput(attrs={"type": "datetime-local"}),
                   "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, course_round: CourseRound, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.round = course_round
        self.fields["student"] = StudentChoiceField(queryset=round_students(course_round))
        self.fields["part"].queryset = Part.objects.filter(assignments__round=course_round)


class ReExaminationForm(forms.Form):
    student = StudentChoiceField(queryset=get_user_model().objects.none())
    earlier_round = forms.ModelChoiceField(queryset=CourseRound.objects.none())
    kept_parts = forms.ModelMultipleChoiceField(queryset=Part.objects.none(), required=False,
                                                widget=forms.CheckboxSelectMultiple)
    kept_components = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    other_form = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    def __init__(self, *args, course_round: CourseRound, policy: Policy, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["student"].queryset = round_students(course_round)
        self.fields["earlier_round"].queryset = CourseRound.objects.filter(
            course=course_round.course, starts_on__lt=course_round.starts_on)
        self.fields["kept_parts"].queryset = Part.objects.filter(assignments__round=course_round)
        self.fields["kept_components"].choices = [(c.key, c.title) for c in policy.components]


class RoundSettingsForm(forms.ModelForm):
    class Meta:
        model = RoundSettings
        fields = ["late_policy", "max_group_size", "students_form_groups", "hidden_feedback"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hidden_feedback"].required = False  # a form from before the field existed keeps it as is

    def clean_hidden_feedback(self) -> str:
        return self.cleaned_data.get("hidden_feedback") or self.instance.hidden_feedback


class GroupNameForm(forms.Form):
    name = forms.CharField(max_length=80)


class JoinGroupForm(forms.Form):
    join_code = forms.CharField(max_length=16)


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
