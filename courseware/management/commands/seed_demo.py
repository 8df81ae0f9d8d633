"""A demo round with every imported part, in the course order with a deadline a week after the one
before, and one account per role. Idempotent."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from courseware.models import Assignment, Course, CourseRound, Enrollment, Part, Role
from examination.policy import load_policy

DEMO_ACCOUNTS = [
    ("examiner", "Eva", "Examiner", Role.EXAMINER),
    ("ta", "Tor", "Assistant", Role.TA),
    ("student", "Sara", "Student", Role.STUDENT),
    ("student2", "Sam", "Student", Role.STUDENT),
]


class Command(BaseCommand):
    help = "Create the DD2601 demo round, assignments for every imported part, and demo accounts."

    def add_arguments(self, parser):
        parser.add_argument("--password-suffix", default="-dd2601", help="demo password = username + suffix")

    def handle(self, *args, password_suffix, **options):
        course, _ = Course.objects.get_or_create(code="DD2601", defaults={"name": "Deep Generative Models and Synthesis"})
        today = timezone.localdate()
        course_round, _ = CourseRound.objects.get_or_create(
            course=course, code="DEMO", defaults={
                "name": "Demo round", "starts_on": today - dt.timedelta(days=14), "ends_on": today + dt.timedelta(days=90),
                # the syllabus: examination possible two academic years after the course was last given
                "examinable_until": today + dt.timedelta(days=90 + 2 * 365)})
        policy = load_policy()
        for order, part in enumerate(sorted(Part.objects.all(), key=lambda p: (policy.position(p.slug), p.slug))):
            Assignment.objects.get_or_create(round=course_round, part=part, defaults={
                "deadline": timezone.now() + dt.timedelta(days=21 + 7 * order), "order": order})
        User = get_user_model()
        self.stdout.write("Demo accounts (username / password):")
        for username, first, last, role in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
            if created:
                user.set_password(username + password_suffix)
                user.is_staff = role in (Role.EXAMINER,)
                user.is_superuser = role == Role.EXAMINER
                user.save()
            Enrollment.objects.get_or_create(user=user, round=course_round, defaults={"role": role})
            self.stdout.write(f"  {username:10s} / {username + password_suffix:20s} ({role.label})")
