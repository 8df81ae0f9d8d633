"""The assignment set tests itself: `manage.py calibrate` for every LAB1 part, in the real sandbox.

Every reference must pass every check with a positive margin over 3 seeds, every honest alternative every
E and C check on one seed, every starter must fail its hidden checks, and every known-wrong submission must
fail the checks named in its CATCHES file. (The 5-seed statistics of every honest solution are a command
one runs and quotes: `manage.py calibrate --seeds 5 --alternatives 5`.)"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from grader.parts import all_parts

pytestmark = [pytest.mark.sandbox, pytest.mark.calibration]


@pytest.mark.parametrize("slug", [p.slug for p in all_parts()])
def test_calibrate(slug, capsys):
    call_command("calibrate", slug, "--seeds", "3", "--alternatives", "1")
    out = capsys.readouterr().out
    assert f"calibration passed for {slug}" in out
