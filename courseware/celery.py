"""The Celery application; configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseware.settings")

app = Celery("courseware")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every app with Celery tasks: a worker knows only the tasks it imported (the e-mail task was missing, so a
# real worker refused "notifications.send" while the in-process tests, which import it, passed).
app.autodiscover_tasks(["grader", "lti", "notifications"])
