"""Property tests for grader.archives: hostile bytes and hostile names never get past the gate."""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import tempfile
import unicodedata
import warnings
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.archives import ArchiveError, ArchivePolicy, check_upload, extract, store

# database=None: no .hypothesis/ folder in the checkout; failures are reproduced from the printed example.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = ArchivePolicy(max_members=20, max_member_bytes=4096, max_total_bytes=16384, ratio_grace_bytes=0,
                       max_ratio=50.0)

# Name fragments chosen to hit every path rule; hypothesis joins them in arbitrary orders.
FRAGMENTS = st.sampled_from([
    "..", ".", "/", "//", "\\", "..\\", "\x00", "\n", "\x7f", "\u202e", ":", "C:", "~", " ",
    "a", "B", "lab", "\u00e9", "e\u0301", "\u212a", "k", "__MACOSX", "__pycache__", ".DS_Store", "._",
    ".py", ".PY", ".md", ".zip", ".pyc", ".ipynb_checkpoints",
])
NAMES = st.one_of(
    st.lists(FRAGMENTS, min_size=1, max_size=8).map("".join),
    st.text(min_size=1, max_size=30).map(lambda s: s + ".py"),
    st.text(min_size=0, max_size=20),
)
# Mostly plausible paths with a few traps mixed in, so that many examples pass and reach extract().
PLAUSIBLE_NAMES = st.builds(
    lambda folders, stem, suffix: "/".join([*folders, stem + suffix]),
    st.lists(st.sampled_from(["lab", "src", "a", "B", "\u00e9", "e\u0301", "\u212a", "x y", "__pycache__", "..",
                              "lab", "src", "data", "d"]), max_size=3),
    st.sampled_from(["model", "Model", "mod\u00e8le", "mode\u0300le", "K", "\u212a", "._x", ".DS_Store", "-",
                     "train", "util", "\u00e9"]),
    st.sampled_from([".py", ".PY", ".md", ".txt", ".pyc", ".zip", "", ".py", ".py", ".json", ".csv"]),
)
CONTENTS = st.one_of(st.binary(max_size=300), st.just(b"\0" * 3000), st.just(b"x = 1\n" * 200))


def zip_of(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip with exactly these names (NUL included), contents and Unix modes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data, mode in members:
                info = zipfile.ZipInfo("placeholder")
                info.filename = name  # set after construction so a NUL survives
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = mode << 16
                zf.writestr(info, data)
    return buf.getvalue()


@st.composite
def mutated_zips(draw: st.DrawFn) -> bytes:
    """A valid zip with bytes flipped, cut or spliced: gets further into the parser than random bytes."""
    members = draw(st.lists(st.tuples(NAMES, CONTENTS, st.just(0o100644)), min_size=1, max_size=4))
    data = bytearray(zip_of(members))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(4, len(data)))
    return bytes(data[:cut])


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
                      mutated_zips()),
       name=st.sampled_from(["upload.zip", "model.py", "x"]))
def test_arbitrary_bytes_either_pass_or_raise_archive_error(data: bytes, name: str) -> None:
    try:
        check_upload([(name, data)], POLICY)
    except ArchiveError as exc:
        assert str(exc)


def assert_safe_path(path: str) -> None:
    assert path and not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert posixpath.normpath(path) == path
    assert ".." not in path.split("/") and "." not in path.split("/")
    assert unicodedata.is_normalized("NFC", path)
    assert len(path.split("/")) <= POLICY.max_depth
    base = path.rsplit("/", 1)[-1].lower()
    assert any(fnmatch.fnmatchcase(base, p.lower()) for p in POLICY.allowed_patterns)


MODES = st.sampled_from([0o100644, 0o100755, 0, 0o120777, 0o040755, 0o010644])
MEMBERS = st.one_of(
    st.lists(st.tuples(PLAUSIBLE_NAMES, CONTENTS, st.just(0o100644)), min_size=1, max_size=6),
    st.lists(st.tuples(st.one_of(NAMES, PLAUSIBLE_NAMES), CONTENTS, MODES), min_size=1, max_size=6),
)


@FUZZ
@given(members=MEMBERS)
def test_hostile_names_are_refused_or_land_inside_the_destination(members: list[tuple[str, bytes, int]]) -> None:
    try:
        archive = check_upload([("upload.zip", zip_of(members))], POLICY)
    except ArchiveError:
        return
    for path in archive.files:
        assert_safe_path(path)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        stored = store(archive, root / "store")
        dest = root / "work"
        assert extract(stored, dest, POLICY) == list(archive.files)
        written = {}
        for folder, dirs, files in os.walk(root):
            assert not any(Path(folder, d).is_symlink() for d in dirs)
            for file in files:
                full = Path(folder, file)
                assert not full.is_symlink()
                if full.parent.resolve().is_relative_to(root / "store"):
                    continue
                assert full.resolve().is_relative_to(dest)
                written[full.relative_to(dest).as_posix()] = full.read_bytes()
        assert written == archive.files
