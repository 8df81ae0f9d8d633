from django.contrib import admin

from courseware import models


class EnrollmentInline(admin.TabularInline):
    model = models.Enrollment
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]


@admin.register(models.CourseRound)
class CourseRoundAdmin(admin.ModelAdmin):
    list_display = ["__str__", "starts_on", "ends_on", "examinable_until"]
    inlines = [EnrollmentInline]


@admin.register(models.Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["user", "round", "role"]
    list_filter = ["round", "role"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]


@admin.register(models.Part)
class PartAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "current_version"]


@admin.register(models.PartVersion)
class PartVersionAdmin(admin.ModelAdmin):
    list_display = ["part", "content_hash", "imported_at"]
    readonly_fields = ["part", "content_hash", "manifest", "imported_at"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["part", "round", "deadline", "max_submissions_per_day"]
    list_filter = ["round"]


class GradingRunInline(admin.TabularInline):
    model = models.GradingRun
    extra = 0
    fields = ["status", "attempt", "points", "max_points", "worker_host", "created_at", "finished_at"]
    readonly_fields = fields
    show_change_link = True


@admin.register(models.Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "assignment", "submitter", "created_at", "late"]
    list_filter = ["assignment__round", "assignment__part", "late"]
    search_fields = ["submitter__username", "sha256"]
    readonly_fields = ["sha256", "size", "files", "created_at", "client_token"]
    inlines = [GradingRunInline]


class CheckResultInline(admin.TabularInline):
    model = models.CheckResult
    extra = 0
    readonly_fields = ["name", "tier", "visibility", "passed", "points", "max_points", "value", "threshold",
                       "direction", "feedback", "staff_note"]
    fields = readonly_fields


@admin.register(models.GradingRun)
class GradingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "submission", "status", "attempt", "points", "max_points", "worker_host", "created_at"]
    list_filter = ["status", "infrastructure_error", "backend"]
    readonly_fields = ["submission", "part_version", "created_at", "enqueued_at", "started_at", "finished_at",
                       "lease_expires_at", "timings", "image_digest", "worker_host", "student_log", "staff_log"]
    inlines = [CheckResultInline]


@admin.register(models.CheckResult)
class CheckResultAdmin(admin.ModelAdmin):
    list_display = ["run", "name", "passed", "value", "threshold", "points"]
    list_filter = ["name", "passed", "visibility"]
