from django.contrib import admin

from notifications.models import EmailPreference, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "key", "status", "attempts", "last_error"]
    list_filter = ["status", "kind"]
    readonly_fields = ["user", "kind", "key", "status", "attempts", "last_error", "created_at", "sent_at"]


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "result_ready", "grade_decided"]
