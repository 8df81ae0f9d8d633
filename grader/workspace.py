"""A fresh, validated copy of a submission on the host, ready to be bind-mounted read-only.

Two callers, one preparation (`extracted`): the grading task unpacks a stored archive for a run, and
`grade_local` / `calibrate` unpack a staff folder or zip. Both get a new folder under GRADER_WORK_DIR,
0755 all the way down so the sandbox's unprivileged user can traverse it, removed when they are done.

Staff folders are accepted through the same layer as students' uploads (`ArchivePolicy.for_part`: allowed
files, the part's module present, every archive rule), so a reference solution that would be rejected on
upload is rejected here too.
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
    policy = archives.ArchivePolicy.for_part(part)
    if source.is_dir():
        if any((source / name).exists() for name in WRONG_META):
            with tempfile.TemporaryDirectory() as tmp:
                return archives.check_directory(build_known_wrong(source, Path(tmp) / source.name), policy)
        return archives.check_directory(source, policy)
    return archives.check_upload([(source.name, source.read_bytes())], policy)


@contextlib.contextmanager
def extracted(archive: Path | archives.CheckedArchive, *, name: str | None = None) -> Iterator[Path]:
    """Yields `<work dir>/submission`, a folder holding the archive's files: a stored archive (a path, checked
    again while it is unpacked) or one checked just now. The work dir is GRADER_WORK_DIR/<name> when a
    name is given (a run's, so a later attempt can find and remove what a killed worker left), else a new
    temporary one; it is removed afterwards, whatever happens inside."""
    root = Path(settings.GRADER_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    if name is None:
        workdir = Path(tempfile.mkdtemp(prefix="local-", dir=root))
    else:
        workdir = root / name
        workdir.mkdir()
    try:
        os.chmod(workdir, 0o755)  # whatever the umask: the sandbox user must be able to traverse it
        target = workdir / "submission"
        if isinstance(archive, archives.CheckedArchive):
            archives.unpack(archive, target)
        else:
            archives.extract(archive, target)
        yield target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def submission_workspace(source: Path, part: PartSpec) -> Iterator[Path]:
    """Yields a directory holding the checked files of `source` (a folder or a zip)."""
    with extracted(check_source(source, part)) as target:
        yield target
