"""Run a part's public tests (handout/test_public.py) against a submission folder, as a student would:
the handout's files with the submission's laid over them, pytest in a fresh process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.parts import PartSpec, load_part


def run_public_tests(part: PartSpec, submission: Path, work: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    folder = work / f"{part.slug}-{submission.name}"
    shutil.copytree(part.handout_dir, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for source in submission.glob("*.py"):
        shutil.copyfile(source, folder / source.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}  # a student's machine has no Django
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
                           "test_public.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def honest_solutions(part: PartSpec) -> list[Path]:
    """The reference and every honest alternative."""
    return [part.solution_dir, *part.alternatives()]


def public_test_cases(*slugs: str) -> list:
    """pytest parameters (part, solution) for every honest solution of the named parts, with readable ids: the
    parts are split over two files only so that CI's two streams take equal time (bin/setup.sh)."""
    parts = [load_part(slug) for slug in slugs]
    return [pytest.param(part, solution, id=f"{part.slug}-{solution.name}")
            for part in parts for solution in honest_solutions(part)]
