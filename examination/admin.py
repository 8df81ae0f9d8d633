"""Admin. Decisions, the audit log, accommodations, re-examinations, oral records and groups are read-only
here: they change only through the views, which apply the rules (examiner only, versions, group sizes,
audit). Round settings change here too, audited like on the examiner's page."""

from django.contrib import admin

from courseware.admin import ReadOnlyAdmin
from examination import models


@admin.register(models.GradeDecision)
class GradeDecisionAdmin(ReadOnlyAdmin):
    list_display = ["student", "round", "grade", "proposed_grade", "decided_by", "decided_at", "supersedes"]
    list_filter = ["round", "grade"]
    search_fields = ["student__username"]


@admin.register(models.AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "target", "student", "round"]
    list_filter = ["round", "action"]
    search_fields = ["student__username", "actor__username", "target"]


@admin.register(models.Accommodation)
class AccommodationAdmin(ReadOnlyAdmin):
    list_display = ["student", "round", "kind", "part", "extended_deadline", "decided_by", "revoked_at"]
    list_filter = ["round", "kind"]


@admin.register(models.ReExamination)
class ReExaminationAdmin(ReadOnlyAdmin):
    list_display = ["student", "round", "earlier_round", "decided_by", "decided_at"]


class OralAnswerInline(admin.TabularInline):
    model = models.OralAnswer
    extra = 0
    fields = ["question", "outcome", "note", "version", "updated_by", "updated_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.OralSession)
class OralSessionAdmin(ReadOnlyAdmin):
    list_display = ["student", "round", "block", "opened_by", "opened_at"]
    list_filter = ["round", "block"]
    inlines = [OralAnswerInline]


@admin.register(models.OralQuestion)
class OralQuestionAdmin(admin.ModelAdmin):
    list_display = ["key", "part", "outcome", "retired_at", "session"]
    list_filter = ["part", "retired_at"]
    search_fields = ["key", "text"]
    readonly_fields = ["session", "created_by", "updated_at"]


@admin.register(models.ComponentRecord)
class ComponentRecordAdmin(ReadOnlyAdmin):
    list_display = ["student", "round", "component", "status", "updated_by", "updated_at"]
    list_filter = ["round", "component", "status"]


class MembershipInline(admin.TabularInline):
    model = models.GroupMembership
    extra = 0
    fields = ["user", "joined_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # members join through the groups page, which enforces the size limit


@admin.register(models.Group)
class GroupAdmin(ReadOnlyAdmin):
    """Groups are made, filled and emptied on the groups page (size limit, join codes, audit)."""

    list_display = ["name", "round", "created_by", "created_at"]
    list_filter = ["round"]
    inlines = [MembershipInline]


@admin.register(models.StudentProfile)
class StudentProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "kth_id"]
    search_fields = ["user__username", "kth_id"]


@admin.register(models.RoundSettings)
class RoundSettingsAdmin(admin.ModelAdmin):
    list_display = ["round", "late_policy", "max_group_size", "students_form_groups"]

    def save_model(self, request, obj, form, change) -> None:
        obj.save_by(request.user)  # validated and audited, as on the examiner's page

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a round without settings has the defaults: change them instead
