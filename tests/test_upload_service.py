"""The one upload service (courseware.uploads): typed answers, every refusal before anything is stored,
compressed content-addressed archives, the daily limit under a row lock, and the one work-directory
preparation that the grading task and the staff commands share."""

from __future__ import annotations

import datetime as dt
import io
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from courseware import uploads
from courseware.models import Assignment, GradingRun, Part, Submission, SubmissionLock
from examination.deadlines import RefusalKind
from examination.models import RoundSettings
from grader import archives, workspace
from grader.parts import load_part

from .conftest import MDN, zip_folder
from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

# About 2.9 MB of ordinary Python, the size of the upload that used to be stored as 20.5 MB.
BIG_SOURCE = "".join(f"def layer_{i}(x, weight_{i}=0.5):\n    return x * weight_{i} + {i}\n\n" for i in range(48_000))


@pytest.fixture
def archive_root(settings, tmp_path) -> Path:
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return settings.ARCHIVE_ROOT


@pytest.fixture(autouse=True)
def no_broker(django_capture_on_commit_callbacks):
    """Uploads enqueue their run after the commit: not here, no broker is listening."""
    with django_capture_on_commit_callbacks(execute=False):
        yield


def stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def mdn_file(text: str = "x = 1\n", name: str = "mdn.py") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode())


def send(assignment, student, files, token="t1", declaration="none", **kwargs):
    return uploads.submit(assignment, student, files, declaration=declaration, client_token=token, **kwargs)


# ---- typed answers ------------------------------------------------------------------------------------------

def test_an_accepted_upload_is_one_submission_with_a_queued_run_and_its_facts(people, assignment, archive_root,
                                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        result = send(assignment, people["alice"], [mdn_file()])
    assert isinstance(result, uploads.Accepted) and not result.duplicate and not result.late
    submission = result.submission
    assert submission.files == ["mdn.py"] and submission.group is None and submission.archive_path.exists()
    assert submission.runs.get().status == GradingRun.Status.QUEUED and len(enqueued) == 1  # after the commit
    again = send(assignment, people["alice"], [mdn_file("y = 2\n")])
    assert again.duplicate and again.submission == submission and Submission.objects.count() == 1


@pytest.mark.parametrize("files, token, declaration, kind, field", [
    ([], "", "none", uploads.Problem.NO_TOKEN, None),
    ([], "t", "  ", uploads.Problem.NO_DECLARATION, "declaration"),
    ([mdn_file(name="notes.py")], "t", "none", uploads.Problem.NO_MODULE, "files"),
    ([mdn_file(name="model.pt")], "t", "none", uploads.Problem.BAD_ARCHIVE, "files"),
    ([SimpleUploadedFile("mdn.py", b"#" * (5 * 2**20 + 1))], "t", "none", uploads.Problem.TOO_LARGE, "files"),
])
def test_refusals_are_typed_and_store_nothing(people, assignment, archive_root, files, token, declaration, kind,
                                              field):
    result = send(assignment, people["alice"], files, token=token, declaration=declaration)
    assert isinstance(result, uploads.Refused) and result.kind == kind and result.field == field
    assert result.message and str(result) == result.message
    assert not Submission.objects.exists() and stored(archive_root) == []


def test_a_part_that_cannot_be_loaded_refuses_in_words(people, course_round, archive_root):
    ghost = Assignment.objects.create(round=course_round, part=Part.objects.create(slug="ghost", title="Ghost"),
                                      deadline=timezone.now() + dt.timedelta(days=1))
    result = send(ghost, people["alice"], [mdn_file()])
    assert result.kind == uploads.Problem.PART_UNAVAILABLE and "try again later" in result.message


# ---- refused before anything is stored --------------------------------------------------------------------------

def test_a_refused_upload_leaves_no_archive_behind(client, people, assignment, archive_root):
    """The view used to store the archive, then find the daily limit used up: the archive stayed."""
    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=1)
    client.force_login(people["alice"])
    first = io.BytesIO(b"x = 1\n")
    first.name = "mdn.py"
    assert client.post(reverse("submit", args=[assignment.pk]),
                       {"files": [first], "declaration": "none", "client_token": "a"}).status_code == 302
    before = stored(archive_root)
    second = io.BytesIO(zip_folder(MDN / "solution"))
    second.name = "solution.zip"
    response = client.post(reverse("submit", args=[assignment.pk]),
                           {"files": [second], "declaration": "none", "client_token": "b"})
    assert response.status_code == 400 and "used all 1 submissions" in response.content.decode()
    assert stored(archive_root) == before


def test_a_refuse_late_round_stores_nothing(people, assignment, archive_root):
    RoundSettings.objects.create(round=assignment.round, late_policy=RoundSettings.LatePolicy.REFUSE)
    result = send(assignment, people["alice"], [mdn_file()], now=assignment.deadline + dt.timedelta(minutes=1))
    assert result.kind == RefusalKind.DEADLINE_PASSED and stored(archive_root) == []


# ---- compressed, content-addressed storage -------------------------------------------------------------------

def test_archives_are_stored_compressed_under_the_canonical_content_address(client, people, assignment, archive_root):
    client.force_login(people["alice"])
    upload = io.BytesIO(BIG_SOURCE.encode())
    upload.name = "mdn.py"
    assert len(BIG_SOURCE) > 2.8e6
    assert client.post(reverse("submit", args=[assignment.pk]),
                       {"files": [upload], "declaration": "none", "client_token": "big"}).status_code == 302
    submission = Submission.objects.get()
    checked = archives.check_upload([("mdn.py", BIG_SOURCE.encode())])
    assert submission.sha256 == checked.sha256  # the address is the canonical (stored-uncompressed) zip's hash
    path = submission.archive_path
    assert path.stat().st_size < len(checked.canonical_zip) / 5, (path.stat().st_size, len(checked.canonical_zip))
    assert archives.load(path).files == {"mdn.py": BIG_SOURCE.encode()}
    download = client.get(reverse("archive", args=[submission.pk]))
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zf:
        assert zf.read("mdn.py") == BIG_SOURCE.encode()


def test_archives_stored_uncompressed_before_still_read_and_verify(tmp_path):
    archive = archives.check_upload([("mdn.py", b"x = 1\n"), ("notes.md", b"n")])
    sha = archive.sha256
    old = tmp_path / sha[:2] / sha[2:4] / f"{sha}.zip"
    old.parent.mkdir(parents=True)
    old.write_bytes(archive.canonical_zip)  # how every archive was stored until now
    assert archives.load(old) == archive
    assert archives.store(archive, tmp_path) == old and old.read_bytes() == archive.canonical_zip  # kept as it is
    assert archives.extract(old, tmp_path / "work") == ["mdn.py", "notes.md"]


def test_the_stored_bytes_are_deterministic(tmp_path):
    one = archives.check_upload([("b.py", b"b" * 1000), ("a.py", b"a" * 1000)])
    two = archives.check_upload([("x.zip", zip_of({"lab/a.py": b"a" * 1000, "lab/b.py": b"b" * 1000}))])
    assert one.sha256 == two.sha256 and archives.stored_zip(one) == archives.stored_zip(two)


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_highly_compressible_file_that_was_accepted_is_still_extracted(tmp_path):
    """A plain upload is not a zip, so the bomb ratio never applied to it; compressing it for storage must not
    make the worker refuse it later."""
    archive = archives.check_upload([("mdn.py", b"x = 1\n"), ("data.csv", b"0," * 2**20)])
    path = archives.store(archive, tmp_path / "store")
    assert archives.extract(path, tmp_path / "work") == ["data.csv", "mdn.py"]


# ---- the daily limit under a row lock -----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_two_uploads_at_once_cannot_both_take_the_last_submission(people, assignment, archive_root):
    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=1)
    assignment.refresh_from_db()
    barrier = threading.Barrier(2)
    results: list = []

    def upload(token: str) -> None:
        try:
            barrier.wait(10)
            results.append(send(assignment, people["alice"], [mdn_file(f"x = '{token}'\n")], token=token))
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    kinds = sorted(type(r).__name__ if isinstance(r, uploads.Accepted) else str(r.kind) for r in results)
    assert kinds == ["Accepted", RefusalKind.DAILY_LIMIT.value], results
    assert Submission.objects.count() == 1 and SubmissionLock.objects.count() == 1
    assert len(stored(archive_root)) == 1


# ---- the staff commands accept folders through the same layer --------------------------------------------------

def test_staff_folders_are_accepted_through_the_upload_layer(tmp_path):
    (tmp_path / "notes.py").write_text("x = 1\n")
    with pytest.raises(archives.MissingRequiredFile, match="has no mdn.py"):
        workspace.check_source(tmp_path, load_part("mdn"))


def test_one_work_directory_preparation_for_runs_and_staff_commands(settings, tmp_path):
    settings.GRADER_WORK_DIR = tmp_path / "work"
    part = load_part("mdn")
    with workspace.submission_workspace(MDN / "solution", part) as folder:
        assert (folder / "mdn.py").read_bytes() == (MDN / "solution" / "mdn.py").read_bytes()
        for path in (folder, folder.parent, *[p for p in folder.rglob("*") if p.is_dir()]):
            assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    archive = archives.store(workspace.check_source(MDN / "solution", part), tmp_path / "store")
    with workspace.extracted(archive, name="run-7-1") as folder:
        assert folder == settings.GRADER_WORK_DIR / "run-7-1" / "submission" and (folder / "mdn.py").exists()
        assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o755
    assert list(settings.GRADER_WORK_DIR.iterdir()) == []  # removed afterwards
