"""What `submit` and `check` take from the student's folder: the files the part accepts (its `allowed_files`
patterns, as the server's upload rules match them), never caches, hidden files or virtual environments;
and the part's module must be there. The server checks everything again: this only saves a refused upload."""

from __future__ import annotations

import fnmatch
import io
import zipfile
from pathlib import Path

from dd2601.i18n import _

SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".git", ".venv", "venv", "env", "node_modules",
                ".pytest_cache", ".mypy_cache", ".ruff_cache"}
MAX_DEPTH = 6  # path components, as the server's archive rules


class FolderProblem(Exception):
    pass


def selected_files(folder: Path, allowed: list[str], module: str) -> list[Path]:
    """The files to submit, relative to `folder`, sorted."""
    if not folder.is_dir():
        raise FolderProblem(_("%(folder)s is not a folder.") % {"folder": folder})
    chosen = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if len(relative.parts) > MAX_DEPTH or not path.is_file() or path.is_symlink():
            continue
        if any(fnmatch.fnmatchcase(path.name.lower(), pattern.lower()) for pattern in allowed):
            chosen.append(relative)
    if Path(module) not in chosen:
        raise FolderProblem(_("%(module)s is missing from %(folder)s: the grader imports your code from it.")
                            % {"module": module, "folder": folder})
    return chosen


def zipped(folder: Path, files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for relative in files:
            zf.write(folder / relative, relative.as_posix())
    return buffer.getvalue()
