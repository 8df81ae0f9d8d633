"""The Django project: course rounds, enrolments, submissions, grading runs and the web views."""

from courseware.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
