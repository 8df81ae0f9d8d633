from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "E-mail notifications"

    def ready(self) -> None:
        from notifications import signals  # noqa: F401 (connects the run and decision hooks)
