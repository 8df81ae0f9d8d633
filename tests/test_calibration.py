"""The assignment set tests itself: `manage.py calibrate` for every LAB1 part, in the real sandbox.

On one secret seed: every reference must pass every check with a positive margin, every honest alternative
every E and C check, every starter must fail its hidden checks, and every known-wrong submission must fail
the checks named in its CATCHES file. The multi-seed statistics (pass rate and margin/sd of every check for
every honest solution) are a command one runs and quotes, not a CI step:
`manage.py calibrate --seeds 5 --alternatives 5 --wrong-seeds 3`."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from grader.parts import all_parts

pytestmark = [pytest.mark.sandbox, pytest.mark.calibration]


@pytest.mark.parametrize("slug", [p.slug for p in all_parts()])
def test_calibrate(slug, capsys):
    call_command("calibrate", slug, "--seeds", "1", "--alternatives", "1")
    out = capsys.readouterr().out
    with capsys.disabled():  # each grading's wall time into CI's log, which is how its share of CI is watched
        timed = [line for line in out.splitlines() if "wall time per run" in line or line.startswith("starter (")
                 or line.rstrip().endswith(" s)")]
        print(f"\n{slug}: " + "\n  ".join(line.removeprefix("== ") for line in timed))
    assert f"calibration passed for {slug}" in out
