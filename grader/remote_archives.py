"""How a run's archive reaches the worker that grades it.

On the web's own host the worker reads the archive volume (`ARCHIVE_ROOT`). A worker host elsewhere —
a GPU machine that shares nothing with the web but the broker's and the database's addresses — fetches it
over HTTP(S) from the web, at a URL signed for that run and that attempt only (`signed_url`; the web
answers it in `courseware.ops_views.run_archive` only while that attempt holds the run, and only for a
few minutes). It is kept in the worker's own cache under its content address, and `archives.extract`
verifies it against that address before anything is unpacked, so a damaged or substituted download is
refused like a damaged file on disk.

Why HTTP from the web rather than a shared volume: a second host then needs no network filesystem (no
NFS server to run, secure and keep mounted), only the web's address, which it already has to reach for
nothing else; the web stays the only writer of archives; and the signature limits each URL to one run's
attempt, so a leaked URL or a worker that lost its run cannot read anybody else's code.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import requests
from django.conf import settings
from django.core import signing

from grader import archives
from grader.sandbox import InfrastructureError

SALT = "dd2601.grader.archive"
URL_SECONDS = 600
MAX_DOWNLOAD_BYTES = 64 * 2**20


def _signer() -> signing.TimestampSigner:
    if not settings.GRADER_ARCHIVE_KEY:
        raise InfrastructureError("GRADER_ARCHIVE_KEY is not set: this worker cannot fetch archives from the web")
    return signing.TimestampSigner(key=settings.GRADER_ARCHIVE_KEY, salt=SALT)


def signature(run_id: int, attempt: int) -> str:
    return _signer().sign(f"{run_id}.{attempt}")


def verified_attempt(run_id: int, token: str) -> int | None:
    """The attempt a signature was made for, if it is genuine, recent and for this run; else None."""
    if not settings.GRADER_ARCHIVE_KEY:
        return None
    try:
        value = _signer().unsign(token, max_age=URL_SECONDS)
    except signing.BadSignature:
        return None
    signed_run, _, attempt = value.partition(".")
    if signed_run != str(run_id) or not attempt.isdigit():
        return None
    return int(attempt)


def signed_url(run_id: int, attempt: int) -> str:
    base = settings.GRADER_ARCHIVE_URL.rstrip("/")
    return f"{base}/internal/runs/{run_id}/archive.zip?sig={signature(run_id, attempt)}"


@contextlib.contextmanager
def available(stored: Path, sha256: str, run_id: int, attempt: int) -> Iterator[Path]:
    """A path to the run's archive on this host while the run needs it: the archive volume's copy, or one
    fetched from the web for this attempt (removed afterwards: the web keeps the archive)."""
    if stored.exists() or not settings.GRADER_ARCHIVE_URL:
        yield stored  # a missing file without a web to ask is reported by extract() as the damage it is
        return
    fetched = fetch(sha256, run_id, attempt)
    try:
        yield fetched
    finally:
        shutil.rmtree(fetched.parent, ignore_errors=True)


def fetch(sha256: str, run_id: int, attempt: int) -> Path:
    cache = Path(settings.GRADER_WORK_DIR) / f"run-{run_id}-{attempt}-archive"  # a killed attempt's: removed
    target = cache / f"{sha256}.zip"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        response = requests.get(signed_url(run_id, attempt), timeout=(10, 60), stream=True)
        response.raise_for_status()
        data = bytearray()
        for chunk in response.iter_content(2**16):
            data += chunk
            if len(data) > MAX_DOWNLOAD_BYTES:
                raise InfrastructureError(f"the archive of run {run_id} is larger than any stored archive can be")
    except requests.RequestException as exc:
        raise InfrastructureError(f"could not fetch the archive of run {run_id} from the web: {exc}") from exc
    partial = target.with_suffix(".part")
    partial.write_bytes(bytes(data))
    staged = partial.rename(target)
    try:
        archives.load(staged)  # named by its content address: the canonical zip must hash to that name
    except archives.ArchiveError as exc:
        staged.unlink(missing_ok=True)
        raise InfrastructureError(f"the archive fetched for run {run_id} is damaged or not this run's: {exc}") from exc
    return staged
