from django.contrib import admin

from lti.models import RoundLink, ScorePost


@admin.register(RoundLink)
class RoundLinkAdmin(admin.ModelAdmin):
    list_display = ["context", "round", "post_part_points", "synced_at"]
    readonly_fields = ["synced_at", "sync_report"]


@admin.register(ScorePost)
class ScorePostAdmin(admin.ModelAdmin):
    list_display = ["student", "link", "tag", "score_given", "status", "attempts", "last_error", "sent_at"]
    list_filter = ["status", "link"]
    readonly_fields = [f.name for f in ScorePost._meta.fields]
