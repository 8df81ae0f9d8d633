"""grader.archives: one test per upload rule, with real zips built here (headers tweaked where a rule needs a lie)."""

from __future__ import annotations

import io
import os
import stat
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.archives import (
    ArchiveError,
    ArchivePolicy,
    CheckedArchive,
    check_directory,
    check_upload,
    extract,
    load,
    store,
    stored_zip,
)

Member = tuple[str | zipfile.ZipInfo, bytes | str]


def make_zip(
    members: list[Member],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    date_time: tuple[int, int, int, int, int, int] = (2024, 5, 17, 12, 0, 0),
    tweak: Callable[[zipfile.ZipInfo], None] | None = None,
) -> bytes:
    """A zip of `members`; `tweak` edits each ZipInfo after its data is written, so it only changes the
    central directory (how a lying header is made)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicates we build on purpose
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in members:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, date_time=date_time)
                if not isinstance(name, zipfile.ZipInfo):
                    info.compress_type = compression
                zf.writestr(info, data)
            if tweak is not None:
                for info in zf.infolist():
                    tweak(info)
    return buf.getvalue()


def upload_zip(members: list[Member], policy: ArchivePolicy | None = None, **kw: object) -> CheckedArchive:
    data = make_zip(members, **kw)  # type: ignore[arg-type]
    return check_upload([("submission.zip", data)], policy or ArchivePolicy())


def rejected(members: list[Member], *words: str, policy: ArchivePolicy | None = None, **kw: object) -> str:
    """Assert the zip is refused and the message names the problem; returns the message."""
    with pytest.raises(ArchiveError) as info:
        upload_zip(members, policy, **kw)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def info_with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


# --- not a zip, corrupt, encrypted, compression ---------------------------------------------------------


def test_non_zip_bytes_named_zip_are_not_a_zip_file() -> None:
    with pytest.raises(ArchiveError, match="this is not a zip file") as info:
        check_upload([("lab1.zip", b"Rar!\x1a\x07\x00 not really")])
    assert "RAR" in str(info.value) and "lab1.zip" in str(info.value)


def test_zip_bytes_under_another_name_are_still_checked_as_a_zip() -> None:
    data = make_zip([("lab/../../evil.py", "x")])
    with pytest.raises(ArchiveError, match=r"'\.\.'"):
        check_upload([("model.py", data)])


def test_truncated_zip_is_damaged() -> None:
    data = make_zip([("a.py", "print(1)\n" * 100)])
    with pytest.raises(ArchiveError, match="damaged"):
        check_upload([("a.zip", data[: len(data) // 2])])


def test_flipped_byte_fails_crc_as_damaged() -> None:
    data = bytearray(make_zip([("a.py", b"x = 1\n" * 50)], compression=zipfile.ZIP_STORED))
    data[data.index(b"x = 1") + 2] ^= 0xFF
    with pytest.raises(ArchiveError, match="damaged"):
        check_upload([("a.zip", bytes(data))])


def test_encrypted_member() -> None:
    def encrypt(info: zipfile.ZipInfo) -> None:
        info.flag_bits |= 0x1

    rejected([("secret.py", "x")], "secret.py", "encrypted", "password", tweak=encrypt)


def test_unsupported_compression_method() -> None:
    rejected([("a.py", "x" * 100)], "a.py", "bzip2", "deflate", compression=zipfile.ZIP_BZIP2)


# --- zip slip in every form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.py", ["'..'"]),
        ("lab/../../evil.py", ["'..'"]),
        ("/etc/evil.py", ["absolute"]),
        ("C:/Windows/evil.py", ["':'", "drive"]),
        ("C:evil.py", ["':'", "drive"]),
        ("..\\evil.py", ["backslash"]),
        ("lab\\evil.py", ["backslash"]),
        ("a\nb.py", ["control"]),
        ("a\x1b[31m.py", ["control"]),
        ("a\u202eyp.txt", ["invisible"]),
        ("lab//evil.py", ["empty folder name"]),
        ("./evil.py", ["'.' component"]),
        ("lab/./evil.py", ["'.' component"]),
    ],
)
def test_zip_slip_names_are_refused(name: str, words: list[str]) -> None:
    message = rejected([(name, "x"), ("ok.py", "y")], *words)
    assert repr(name) in message  # the message names the offending member


def test_nul_byte_in_member_name() -> None:
    info = zipfile.ZipInfo("placeholder.py")
    info.filename = "evil.py\x00.txt"  # set after construction: ZipInfo() would cut the name at the NUL
    rejected([(info, "x")], "NUL", "evil.py")


def test_folder_entry_that_climbs_out_is_refused() -> None:
    rejected([("../", b""), ("a.py", "x")], "'..'")


def test_component_longer_than_a_file_system_allows() -> None:
    rejected([("x" * 300 + ".py", "x")], "longer than 255")


# --- links and special files ----------------------------------------------------------------------------


def test_symlink_member() -> None:
    link = info_with_mode("data.py", stat.S_IFLNK | 0o777)
    rejected([(link, "/etc/passwd"), ("a.py", "x")], "data.py", "symbolic link")


@pytest.mark.parametrize(
    ("mode", "what"),
    [(stat.S_IFIFO, "named pipe"), (stat.S_IFCHR, "character device"), (stat.S_IFBLK, "block device"),
     (stat.S_IFSOCK, "socket")],
)
def test_special_file_member(mode: int, what: str) -> None:
    rejected([(info_with_mode("dev.py", mode | 0o644), b""), ("a.py", "x")], "dev.py", what, "regular file")


def test_unknown_file_type_member() -> None:
    rejected([(info_with_mode("odd.py", 0o150000 | 0o644), b""), ("a.py", "x")], "odd.py", "not a regular file")


# --- duplicates and collisions --------------------------------------------------------------------------


def test_exact_duplicate_names() -> None:
    rejected([("a.py", "1"), ("b.py", "x"), ("a.py", "2")], "'a.py'", "more than once")


def test_case_folding_duplicates() -> None:
    rejected([("Model.py", "1"), ("model.py", "2")], "'Model.py'", "'model.py'", "letter case")


def test_nfc_nfd_duplicates() -> None:
    composed, decomposed = "mod\u00e8le.py", "mode\u0300le.py"
    message = rejected([(composed, "1"), (decomposed, "2")], "Unicode form")
    assert ascii(composed) in message and ascii(decomposed) in message


def test_file_used_as_folder() -> None:
    rejected([("a.py", "1"), ("a.py/b.py", "2"), ("c.py", "3")], "'a.py'", "as a folder")


def test_file_used_as_folder_in_other_case() -> None:
    rejected([("util.py", "1"), ("UTIL.PY/b.py", "2"), ("c.py", "3")], "as a folder")


# --- counts, sizes, bombs ----------------------------------------------------------------------------------


def test_ten_thousand_members() -> None:
    members: list[Member] = [(f"f{i}.py", b"") for i in range(10_000)]
    rejected(members, "more than 200 files", "at most 200", compression=zipfile.ZIP_STORED)


def test_member_over_size_limit_although_header_claims_small() -> None:
    def lie(info: zipfile.ZipInfo) -> None:
        info.file_size = 10

    policy = ArchivePolicy(max_member_bytes=64 * 2**10)
    rejected([("data.csv", os.urandom(200 * 2**10)), ("a.py", "x")], "data.csv", "per file",
             policy=policy, compression=zipfile.ZIP_STORED, tweak=lie)


def test_header_size_that_disagrees_with_the_data_is_damaged() -> None:
    def lie(info: zipfile.ZipInfo) -> None:
        info.file_size += 1000

    rejected([("a.py", "x = 1\n")], "a.py", "damaged", "header says", tweak=lie)


def test_total_over_limit() -> None:
    policy = ArchivePolicy(max_member_bytes=100_000, max_total_bytes=250_000)
    members: list[Member] = [(f"part{i}.csv", os.urandom(90_000)) for i in range(3)]
    rejected(members, "together", "part2.csv", policy=policy, compression=zipfile.ZIP_STORED)


def test_ratio_bomb() -> None:
    rejected([("zeros.csv", b"\0" * (4 * 2**20)), ("a.py", "x")], "zeros.csv", "200 times", "zip bombs")


def test_small_compressible_file_is_not_a_bomb() -> None:
    assert upload_zip([("blank.txt", b"\n" * 100_000)]).files["blank.txt"] == b"\n" * 100_000


def test_member_is_counted_while_reading_not_read_whole() -> None:
    """A 64 MiB member is refused after about 1 MiB: memory never holds the whole member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.csv", "w") as fh:
            for _ in range(64):
                fh.write(b"\0" * 2**20)
    policy = ArchivePolicy(max_member_bytes=2**20, max_ratio=1e9)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match="per file"):
            check_upload([("big.zip", buf.getvalue())], policy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_upload_over_size_limit() -> None:
    with pytest.raises(ArchiveError, match="the upload is"):
        check_upload([("big.zip", b"PK\x03\x04" + b"\0" * 200)], ArchivePolicy(max_upload_bytes=100))


# --- names and structure ---------------------------------------------------------------------------------


def test_nested_archive_is_not_an_allowed_name() -> None:
    inner = make_zip([("a.py", "x")])
    rejected([("inner.zip", inner), ("a.py", "x")], "'inner.zip'", "not unpacked", "*.py")


def test_name_not_matching_allowed_patterns() -> None:
    message = rejected([("model.py", "x"), ("weights.pt", b"\x80")], "'weights.pt'", "allowed")
    assert "*.py" in message and "*.ipynb" in message


def test_depth_limit() -> None:
    rejected([("a/b/c/d/e/f/g.py", "x"), ("top.py", "y")], "7 levels", "at most 6")


def test_wrapped_folder_is_stripped_before_depth_is_counted() -> None:
    assert list(upload_zip([("lab1/b/c/d/e/f/g.py", "x")]).files) == ["b/c/d/e/f/g.py"]


def test_only_junk_is_empty() -> None:
    rejected([("__MACOSX/._a.py", "j"), (".DS_Store", "j"), ("__pycache__/a.cpython-311.pyc", "j")],
             "contains no files")


def test_empty_zip_is_empty() -> None:
    rejected([], "contains no files")


def test_only_folders_is_empty() -> None:
    rejected([("lab/", b""), ("lab/sub/", b"")], "contains no files")


# --- friendly normalisation and happy paths -------------------------------------------------------------------


def test_macos_zip_of_a_folder_is_cleaned_and_unwrapped() -> None:
    archive = upload_zip([
        ("lab1/", b""),
        ("lab1/model.py", "import torch\n"),
        ("lab1/data/train.csv", "x,y\n1,2\n"),
        ("lab1/.DS_Store", b"\0\0\0\1Bud1"),
        ("lab1/__pycache__/model.cpython-311.pyc", b"\x00"),
        ("lab1/nb/.ipynb_checkpoints/a-checkpoint.ipynb", "{}"),
        ("lab1/helper.pyc", b"\x00"),
        ("__MACOSX/lab1/._model.py", b"\0\5\26\7"),
    ])
    assert archive.files == {"data/train.csv": b"x,y\n1,2\n", "model.py": b"import torch\n"}


def test_utf8_names_without_the_utf8_flag_are_read_as_utf8() -> None:
    data = make_zip([("XXXX.py", "x")], compression=zipfile.ZIP_STORED)
    fixed = data.replace(b"XXXX.py", "mo\u00e8.py".encode())  # same byte length, no 0x800 flag
    assert list(check_upload([("a.zip", fixed)]).files) == ["mo\u00e8.py"]


def test_nfd_names_are_stored_nfc() -> None:
    assert list(upload_zip([("mode\u0300le.py", "x")]).files) == ["mod\u00e8le.py"]


def test_plain_files_keep_only_the_basename() -> None:
    archive = check_upload([
        ("C:\\Users\\student\\lab1\\model.py", b"a = 1\n"),
        ("../../notes.md", b"# notes\n"),
        (".DS_Store", b"junk"),
    ])
    assert archive.files == {"model.py": b"a = 1\n", "notes.md": b"# notes\n"}


@pytest.mark.parametrize(
    ("name", "words"),
    [("..", ["'..'"]), ("", ["empty name"]), ("weights.pt", ["allowed"]), ("a\x00.py", ["NUL"]),
     ("bad\r.py", ["control"])],
)
def test_plain_file_names_are_checked(name: str, words: list[str]) -> None:
    with pytest.raises(ArchiveError) as info:
        check_upload([(name, b"x"), ("ok.py", b"y")])
    for word in words:
        assert word in str(info.value)


def test_plain_files_case_duplicates() -> None:
    with pytest.raises(ArchiveError, match="letter case"):
        check_upload([("Model.py", b"1"), ("model.py", b"2")])


def test_plain_file_over_member_limit() -> None:
    with pytest.raises(ArchiveError, match="per file"):
        check_upload([("data.csv", b"1" * 2000)], ArchivePolicy(max_member_bytes=1000))


def test_mixing_a_zip_with_plain_files_is_refused() -> None:
    with pytest.raises(ArchiveError, match="either one .zip"):
        check_upload([("lab.zip", make_zip([("a.py", "x")])), ("b.py", b"y")])


def test_nothing_uploaded() -> None:
    with pytest.raises(ArchiveError, match="contains no files"):
        check_upload([])


def test_canonical_hash_depends_on_content_only() -> None:
    first = upload_zip([("lab/a.py", "A"), ("lab/b/c.py", "C")], date_time=(2021, 1, 2, 3, 4, 6))
    second = upload_zip([("b/c.py", "C"), ("a.py", "A")], date_time=(2025, 9, 9, 9, 9, 10),
                        compression=zipfile.ZIP_STORED)
    assert first.sha256 == second.sha256 and first.canonical_zip == second.canonical_zip
    assert upload_zip([("a.py", "A"), ("b/c.py", "changed")]).sha256 != first.sha256


def test_canonical_zip_is_sorted_with_fixed_metadata() -> None:
    archive = upload_zip([("z.py", "z"), ("a/b.py", "b"), ("m.md", "m")])
    assert list(archive.files) == ["a/b.py", "m.md", "z.py"]
    with zipfile.ZipFile(io.BytesIO(archive.canonical_zip)) as zf:
        assert zf.namelist() == ["a/b.py", "m.md", "z.py"]
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == stat.S_IFREG | 0o644
            assert zf.read(info) == archive.files[info.filename]


def test_plain_files_and_zip_of_the_same_files_hash_the_same() -> None:
    zipped = upload_zip([("model.py", "m"), ("notes.md", "n")])
    plain = check_upload([("notes.md", b"n"), ("model.py", b"m")])
    assert zipped.sha256 == plain.sha256


# --- check_directory ---------------------------------------------------------------------------------------


def test_check_directory_matches_the_upload(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("m")
    (tmp_path / "notes.md").write_text("n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    archive = check_directory(tmp_path)
    assert archive.files == {"notes.md": b"n", "src/model.py": b"m"}
    assert archive.sha256 == upload_zip([("notes.md", "n"), ("src/model.py", "m")]).sha256


def test_check_directory_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x")
    (tmp_path / "b.py").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        check_directory(tmp_path)


def test_check_directory_refuses_special_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x")
    os.mkfifo(tmp_path / "pipe.py")
    with pytest.raises(ArchiveError, match="named pipe"):
        check_directory(tmp_path)


def test_check_directory_of_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x")
    with pytest.raises(ArchiveError, match="not a folder"):
        check_directory(tmp_path / "a.py")


# --- store --------------------------------------------------------------------------------------------------


def all_paths(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_store_is_content_addressed_atomic_and_idempotent(tmp_path: Path) -> None:
    archive = upload_zip([("a.py", "x")])
    first = store(archive, tmp_path)
    sha = archive.sha256
    assert first == tmp_path / sha[:2] / sha[2:4] / f"{sha}.zip"
    assert first.read_bytes() == stored_zip(archive) and load(first) == archive  # compressed; reads back the same
    assert store(upload_zip([("lab/a.py", "x")]), tmp_path) == first
    assert all_paths(tmp_path) == [sha[:2], f"{sha[:2]}/{sha[2:4]}", f"{sha[:2]}/{sha[2:4]}/{sha}.zip"]
    assert stat.S_IMODE(first.stat().st_mode) == 0o644


def test_store_rewrites_a_damaged_copy(tmp_path: Path) -> None:
    archive = upload_zip([("a.py", "x")])
    path = store(archive, tmp_path)
    path.write_bytes(b"garbage")
    assert store(archive, tmp_path).read_bytes() == stored_zip(archive)
    assert len(all_paths(tmp_path)) == 3  # no temp file left behind


def test_store_refuses_an_archive_whose_hash_does_not_match(tmp_path: Path) -> None:
    good = upload_zip([("a.py", "x")])
    for forged in (CheckedArchive(good.files, "../" * 10 + "x" * 34, good.canonical_zip),
                   CheckedArchive(good.files, "0" * 64, good.canonical_zip)):
        with pytest.raises(ValueError, match="SHA-256"):
            store(forged, tmp_path)
    assert all_paths(tmp_path) == []


def test_failed_check_leaves_storage_untouched(tmp_path: Path) -> None:
    def submit(uploads: list[tuple[str, bytes]]) -> Path:
        return store(check_upload(uploads), tmp_path)

    for uploads in ([("a.zip", make_zip([("../evil.py", "x")]))], [("a.zip", b"not a zip")],
                    [("a.zip", make_zip([("a.py", "x"), ("zeros.csv", b"\0" * 2**22)]))]):
        with pytest.raises(ArchiveError):
            submit(uploads)
    assert all_paths(tmp_path) == []


# --- extract ------------------------------------------------------------------------------------------------


def test_extract_round_trip_with_fixed_permissions(tmp_path: Path) -> None:
    archive = upload_zip([("lab/src/model.py", "m"), ("lab/src/util/io.py", "u"), ("lab/README.md", "r")])
    path = store(archive, tmp_path / "store")
    dest = tmp_path / "work"
    assert extract(path, dest) == ["README.md", "src/model.py", "src/util/io.py"]
    assert (dest / "src" / "util" / "io.py").read_bytes() == b"u"
    assert stat.S_IMODE((dest / "src" / "model.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "src" / "util").stat().st_mode) == 0o755


def test_extract_does_not_strip_a_folder_again(tmp_path: Path) -> None:
    archive = upload_zip([("lab/src/a.py", "a"), ("lab/src/b.py", "b")])
    assert list(archive.files) == ["src/a.py", "src/b.py"]
    assert extract(store(archive, tmp_path / "store"), tmp_path / "work") == ["src/a.py", "src/b.py"]


def test_extract_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    path = store(upload_zip([("a.py", "x")]), tmp_path / "store")
    dest = tmp_path / "work"
    dest.mkdir()
    (dest / "keep.txt").write_text("k")
    with pytest.raises(FileExistsError):
        extract(path, dest)
    assert all_paths(dest) == ["keep.txt"]


def test_extract_revalidates_and_writes_nothing_on_a_hostile_archive(tmp_path: Path) -> None:
    hostile = tmp_path / "store" / "hostile.zip"
    hostile.parent.mkdir()
    hostile.write_bytes(make_zip([("a.py", "x"), ("../../escape.py", "y")]))
    dest = tmp_path / "area" / "work"
    with pytest.raises(ArchiveError, match="'..'"):
        extract(hostile, dest)
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "area" / "escape.py").exists()
    assert not dest.exists() or all_paths(dest) == []


def test_extract_refuses_a_stored_archive_whose_hash_no_longer_matches(tmp_path: Path) -> None:
    path = store(upload_zip([("a.py", "x")]), tmp_path / "store")
    other = upload_zip([("a.py", "y")]).canonical_zip
    path.write_bytes(other)
    with pytest.raises(ArchiveError, match="content hash"):
        extract(path, tmp_path / "work")
