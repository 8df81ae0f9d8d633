from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """Issue 17: similarity across a cohort, students' regrade requests, and when feedback is released."""

    name = "review"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Review"
