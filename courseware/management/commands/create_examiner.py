"""The first examiner of a fresh installation: an account that can sign in, reach the admin, and is the
examiner of a course round (made if it does not exist yet). Prints a generated password once.

    python manage.py create_examiner erik --email erik@kth.se --course DD2601 --round HT26 \\
        --starts 2026-08-24 --ends 2026-10-26

Run again for the same user, it keeps the account (and its password) and only adds what is missing.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from courseware.models import Course, CourseRound, Enrollment, Role

COURSE_NAME = "Deep Generative Models and Synthesis"
EXAMINABLE_YEARS = 2  # the syllabus: work is accepted for two academic years after the course was given


def date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date like 2026-08-24") from exc


class Command(BaseCommand):
    help = "Create the first examiner (and their course round); prints a generated password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--course", default="DD2601")
        parser.add_argument("--round", dest="round_code", default="HT26")
        parser.add_argument("--starts", type=date, default=None, help="first day of the round (made if new)")
        parser.add_argument("--ends", type=date, default=None, help="last day of the round (made if new)")

    def handle(self, *args, username: str, email: str, course: str, round_code: str, starts, ends, **options):
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model.objects.filter(username=username).first()
            password = None
            if user is None:
                password = secrets.token_urlsafe(12)
                user = user_model.objects.create_user(username, email=email, password=password)
            if not user.is_staff:  # the admin is where rounds, parts and staff are managed
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
            the_course, _ = Course.objects.get_or_create(code=course, defaults={"name": COURSE_NAME})
            course_round = CourseRound.objects.filter(course=the_course, code=round_code).first()
            if course_round is None:
                if not (starts and ends):
                    raise CommandError(f"{course} {round_code} does not exist yet: give --starts and --ends")
                if ends < starts:
                    raise CommandError("--ends is before --starts")
                course_round = CourseRound.objects.create(
                    course=the_course, code=round_code, starts_on=starts, ends_on=ends,
                    examinable_until=ends.replace(year=ends.year + EXAMINABLE_YEARS))
            Enrollment.objects.update_or_create(user=user, round=course_round, defaults={"role": Role.EXAMINER})
        self.stdout.write(f"{username} is the examiner of {course_round}.")
        if password:
            self.stdout.write(f"password (shown once; change it after signing in): {password}")
