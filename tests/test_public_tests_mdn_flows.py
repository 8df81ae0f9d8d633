"""The public tests of the MDN and flows parts accept every honest solution (issue 17, item 3): the
reference and each alternative in alternatives/ is put next to the handout's data.py and test_public.py,
as a student's folder, and `pytest test_public.py` must pass there. The public tests use the hidden checks'
limits and dtypes, so a solution the grader accepts cannot fail them on float32 rounding.

Each run trains the models the public tests train (up to 20 s for flows' two models). The MDN's public tests
give fit and fit_arm 30 s each; here they get less (SHORTER_BUDGETS, rewritten in the copied test_public.py
and asserted to be found, so a changed handout cannot silently skip it), so that the MDN's four honest
solutions take about a minute on 2 cores: every MDN solution budgets against max_seconds, so one that
passes on less time passes on the student's 30 s. The file is marked `calibration`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.parts import load_part

pytestmark = [pytest.mark.calibration]


def honest_solutions(slug: str) -> list[tuple[str, Path]]:
    part = load_part(slug)
    return [(f"{slug}-reference", part.solution_dir)] + [(f"{slug}-{p.name}", p) for p in part.alternatives()]


CASES = [case for slug in ("mdn", "flows") for case in honest_solutions(slug)]

# ---- MDN: shorter training budgets in the copied public tests (the mdn owner's block) ----
SHORTER_BUDGETS = {
    "mdn": {r"fit\(x, y, seed=0, max_seconds=30\)": "fit(x, y, seed=0, max_seconds=6)",
            r"a_tier\(fit_arm, x, theta, seed=0, max_seconds=30\)": "a_tier(fit_arm, x, theta, seed=0, max_seconds=12)"},
}


def shorten_budgets(slug: str, public_tests: Path) -> None:
    """Rewrite the training budgets of a copied test_public.py; each rewrite must find its call exactly once."""
    text = public_tests.read_text()
    for pattern, replacement in SHORTER_BUDGETS.get(slug, {}).items():
        text, found = re.subn(pattern, replacement, text)
        assert found == 1, f"{slug}: test_public.py no longer has the call {pattern!r}; update SHORTER_BUDGETS"
    public_tests.write_text(text)
# ---- end of the MDN block ----


@pytest.mark.parametrize("name, solution", CASES, ids=[name for name, _ in CASES])
def test_the_public_tests_accept_the_honest_solution(name, solution, tmp_path):
    slug = name.split("-")[0]
    part = load_part(slug)
    folder = tmp_path / "student"
    shutil.copytree(part.handout_dir, folder, ignore=shutil.ignore_patterns("__pycache__", part.module, "README.md"))
    for source in solution.glob("*.py"):
        shutil.copy(source, folder / source.name)
    shorten_budgets(slug, folder / "test_public.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    result = subprocess.run([sys.executable, "-m", "pytest", "test_public.py", "-q", "-p", "no:cacheprovider",
                             "-p", "no:django", "-p", "no:randomly"], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{name}: the public tests fail\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
