from django.apps import AppConfig


class LadokConfig(AppConfig):
    name = "ladok"
    verbose_name = "Ladok"
