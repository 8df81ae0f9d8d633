"""What the student register (Ladok) calls a round's course and its LAB1 module, per round: the course
code and module code can differ between course versions, so they are data, not constants."""

from __future__ import annotations

from django.db import models

from courseware.models import CourseRound


class LadokModule(models.Model):
    """The Ladok codes a round's results are reported under (the Ladok file reads them here)."""

    round = models.OneToOneField(CourseRound, on_delete=models.CASCADE, related_name="ladok_module")
    module_code = models.CharField(max_length=16, default="LAB1",
                                   help_text="The module (provmoment) LAB1 is registered as in Ladok for this round.")
    course_code = models.CharField(max_length=16, blank=True,
                                   help_text="Leave empty to use the course's own code.")

    class Meta:
        verbose_name = "Ladok module"

    def __str__(self) -> str:
        return f"{self.course_code or self.round.course.code} {self.module_code} ({self.round})"

    @classmethod
    def of(cls, course_round: CourseRound) -> LadokModule:
        """The round's codes, or the defaults (unsaved): the course's code and LAB1."""
        return cls.objects.filter(round=course_round).first() or cls(round=course_round)

    @property
    def course(self) -> str:
        return self.course_code or self.round.course.code
