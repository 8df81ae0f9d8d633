"""Words the pages show that are not literals in any template or module, so that `makemessages` finds
them: the status of a check result (its choices are made from `grader.outcomes.Status`, which has no
Django), shown with `{% translate c.get_status_display %}`; and KTH's grading terms, so that the Swedish
catalogue holds them the way KTH writes them (betyg, muntlig examination, komplettering for FX)."""

from django.utils.translation import gettext_noop

CHECK_STATUSES = [gettext_noop("passed"), gettext_noop("failed"), gettext_noop("not checked"),
                  gettext_noop("not attempted"), gettext_noop("grader error")]
GRADING_TERMS = [gettext_noop("Grade"), gettext_noop("Oral exam"), gettext_noop("FX (komplettering)")]
