"""A fresh, validated copy of a submission on the host, ready to be bind-mounted read-only.

The same archive checks apply to staff's folders as to students' uploads, so a reference solution
that would be rejected on upload is rejected here too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from grader import archives
from grader.parts import WRONG_META, PartSpec, build_known_wrong


def check_source(source: Path, part: PartSpec) -> archives.CheckedArchive:
    """A folder, a zip, or a known-wrong folder (`wrong/<bug>/`, built from the reference and its patch)."""
    policy = archives.ArchivePolicy(allowed_patterns=part.allowed_patterns)
    if source.is_dir():
        if any((source / name).exists() for name in WRONG_META):
            with tempfile.TemporaryDirectory() as tmp:
                return archives.check_directory(build_known_wrong(source, Path(tmp) / source.name), policy)
        return archives.check_directory(source, policy)
    return archives.check_upload([(source.name, source.read_bytes())], policy)


@contextlib.contextmanager
def submission_workspace(source: Path, part: PartSpec) -> Iterator[Path]:
    """Yields a directory holding the checked files of `source` (a folder or a zip)."""
    checked = check_source(source, part)
    root = Path(settings.GRADER_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="local-", dir=root))
    try:
        os.chmod(workdir, 0o755)  # the sandbox user must be able to traverse it
        zip_path = workdir / "submission.zip"
        zip_path.write_bytes(checked.canonical_zip)
        target = workdir / "submission"
        target.mkdir(mode=0o755)
        archives.extract(zip_path, target)
        zip_path.unlink()
        yield target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
