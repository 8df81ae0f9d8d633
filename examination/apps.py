from django.apps import AppConfig


class ExaminationConfig(AppConfig):
    name = "examination"
    verbose_name = "Examination"

    def ready(self) -> None:
        from examination import signals  # noqa: F401  (connects the receivers)
