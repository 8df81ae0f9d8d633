from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "lti"
    label = "lti"
    verbose_name = "Canvas (LTI 1.3)"

    def ready(self) -> None:
        from lti import signals  # noqa: F401 (connects the grade decision hook)
