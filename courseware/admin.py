"""Admin. What staff change here is audited (`AuditedAdmin`: an AuditEntry with the values before and
after); what only the platform writes is read-only here (`ReadOnlyAdmin`): submissions are made by the
upload service, runs and check results by the grader, and a result changed by hand would be a grade
nobody can explain. A wrong result is fixed by fixing the checks and regrading (the dashboard)."""

from django.contrib import admin

from courseware import models
from examination.models import AuditEntry, snapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted through the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Every save and delete through the admin records who changed which of `audited` fields, from what
    to what. `audit_round(obj)` says which round's log the entry belongs to."""

    audited: list[str] = []

    def audit_round(self, obj):
        raise NotImplementedError

    def save_model(self, request, obj, form, change) -> None:
        stored = type(obj).objects.filter(pk=obj.pk).first() if change else None
        before = snapshot(stored, self.audited) if stored is not None else None
        super().save_model(request, obj, form, change)
        after = snapshot(obj, self.audited)
        if before != after:
            action = f"admin.{type(obj).__name__.lower()}.{'changed' if change else 'added'}"
            AuditEntry.record(actor=request.user, action=action, obj=obj, course_round=self.audit_round(obj),
                              before=before, after=after)

    def delete_model(self, request, obj) -> None:
        course_round = self.audit_round(obj)
        AuditEntry.record(actor=request.user, action=f"admin.{type(obj).__name__.lower()}.deleted", obj=obj,
                          course_round=None if course_round == obj else course_round,  # the round itself goes
                          before=snapshot(obj, self.audited))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class EnrollmentInline(ReadOnlyInline):
    """Who is in the round, shown with the round; roles change on the Enrollment page, where it is audited."""

    model = models.Enrollment
    fields = ["user", "role"]
    readonly_fields = fields
    show_change_link = True


@admin.register(models.Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]


@admin.register(models.CourseRound)
class CourseRoundAdmin(AuditedAdmin):
    list_display = ["__str__", "starts_on", "ends_on", "examinable_until"]
    inlines = [EnrollmentInline]
    audited = ["code", "name", "starts_on", "ends_on", "examinable_until"]

    def audit_round(self, obj):
        return obj


@admin.register(models.Enrollment)
class EnrollmentAdmin(AuditedAdmin):
    list_display = ["user", "round", "role"]
    list_filter = ["round", "role"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user"]
    audited = ["user", "round", "role"]

    def audit_round(self, obj):
        return obj.round


@admin.register(models.Part)
class PartAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "current_version"]


@admin.register(models.PartVersion)
class PartVersionAdmin(admin.ModelAdmin):
    list_display = ["part", "content_hash", "imported_at"]
    readonly_fields = ["part", "content_hash", "manifest", "imported_at"]


@admin.register(models.Assignment)
class AssignmentAdmin(AuditedAdmin):
    list_display = ["part", "round", "deadline", "max_submissions_per_day"]
    list_filter = ["round"]
    audited = ["round", "part", "opens_at", "deadline", "max_submissions_per_day", "order"]

    def audit_round(self, obj):
        return obj.round


class GradingRunInline(ReadOnlyInline):
    model = models.GradingRun
    fields = ["status", "attempt", "points", "max_points", "worker_host", "created_at", "finished_at"]
    readonly_fields = fields
    show_change_link = True


@admin.register(models.Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    list_display = ["pk", "assignment", "submitter", "created_at", "late"]
    list_filter = ["assignment__round", "assignment__part", "late"]
    search_fields = ["submitter__username", "sha256"]
    inlines = [GradingRunInline]


class CheckResultInline(ReadOnlyInline):
    model = models.CheckResult
    fields = ["name", "tier", "visibility", "passed", "points", "max_points", "value", "threshold",
              "direction", "feedback", "staff_note"]
    readonly_fields = fields


@admin.register(models.GradingRun)
class GradingRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "submission", "status", "attempt", "points", "max_points", "worker_host", "created_at"]
    list_filter = ["status", "infrastructure_error", "backend"]
    inlines = [CheckResultInline]


@admin.register(models.CheckResult)
class CheckResultAdmin(ReadOnlyAdmin):
    list_display = ["run", "name", "passed", "value", "threshold", "points"]
    list_filter = ["name", "passed", "visibility"]
