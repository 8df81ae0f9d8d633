"""Student uploads -> validated, canonical, content-addressed archives, and their safe extraction.

Every upload is hostile until checked: a zip can lie in its headers, hide paths that climb out of the
extraction folder, carry symlinks or device files, or unpack to gigabytes. This module is the single gate
between what a student sent and what the grader unpacks, so it is pure Python (no Django): the web process
checks and stores, the grading worker re-checks and extracts, both with the same rules.

Flow: `check_upload` (web) or `check_directory` (staff command line) -> `CheckedArchive` -> `store` (a
content-addressed, atomically written, compressed zip) -> `extract` (worker; validates again before writing).

The content address. A submission's sha256 is the hash of its *canonical* zip: the members sorted by
name, stored uncompressed, with fixed timestamps and permissions, so it depends on names and contents
only and is the same on every machine and zlib build (the same files uploaded as a zip, as plain files
or from a folder hash the same). The file on disk, `root/ab/cd/<sha256>.zip`, is a *deflated* zip of the
same members with the same fixed metadata, because code compresses several times over. Readers never
hash the stored bytes: `load` validates the stored zip, rebuilds the canonical zip from its members and
compares that hash with the file's name. Archives stored before compression was introduced are
canonical zips themselves, so they read back, and verify, the same way.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import hashlib
import io
import os
import re
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, NoReturn


class ArchiveError(ValueError):
    """A rejected upload; str(e) is a clear message for the student (which file, what rule, what to do)."""


class UploadTooLarge(ArchiveError):
    """What was uploaded is over `ArchivePolicy.max_upload_bytes` (refused before it is read)."""


class MissingRequiredFile(ArchiveError):
    """The upload lacks a file the part needs (its module: the grader imports the student's code from it)."""


@dataclass(frozen=True)
class ArchivePolicy:
    """The limits an upload must respect; frozen so one policy object can be shared by web and worker."""

    max_upload_bytes: int = 5 * 2**20  # size of what was uploaded (zip or all files together)
    max_members: int = 200
    max_member_bytes: int = 5 * 2**20  # per file, uncompressed, counted while reading (headers lie)
    max_total_bytes: int = 20 * 2**20  # all files uncompressed
    max_ratio: float = 200.0  # uncompressed/compressed per member (zip bombs)
    max_depth: int = 6  # path components
    allowed_patterns: tuple[str, ...] = (
        "*.py", "*.md", "*.txt", "*.toml", "*.json", "*.yaml", "*.yml", "*.csv", "*.ipynb",
    )
    # The ratio rule only applies once a member has unpacked this much: a 10 KB file of blank lines is
    # highly compressible but harmless, and the size caps already bound anything smaller.
    ratio_grace_bytes: int = 256 * 2**10
    required_files: tuple[str, ...] = ()  # top-level files that must be there (a part's module)

    @classmethod
    def for_part(cls, part) -> ArchivePolicy:
        """The policy of one LAB1 part (anything with `allowed_patterns` and `module`, e.g. a PartSpec):
        the web upload, `grade_local` and `calibrate` all accept a submission through this one policy."""
        return cls(allowed_patterns=tuple(part.allowed_patterns), required_files=(part.module,))


DEFAULT_POLICY = ArchivePolicy()


@dataclass(frozen=True)
class CheckedArchive:
    """An upload that passed every check, in the one form the rest of the platform handles."""

    files: dict[str, bytes]  # relative POSIX path -> content, sorted
    sha256: str  # of the canonical zip below
    canonical_zip: bytes  # deterministic zip (sorted names, fixed timestamps/permissions): hash = content


# --- constants -----------------------------------------------------------------------------------------

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty zip
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# Only stored and deflate: zipfile decompresses bzip2 and LZMA without an output bound per read, so a
# tiny member could expand in memory before our counter sees it.
_METHOD_NAMES = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES"}
_UTF8_NAME_FLAG = 0x800
_ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional and strong encryption
_SPECIAL_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_JUNK_DIRS = frozenset({"__MACOSX", "__pycache__", ".ipynb_checkpoints"})
_JUNK_FILES = frozenset({".DS_Store"})
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})  # control, format, surrogate, private
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MAX_COMPONENT_BYTES = 255  # what Linux and macOS file systems accept per name
_MAX_PATH_BYTES = 1024
_CHUNK = 64 * 2**10
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: canonical archives carry no real time
# Everything zipfile and its decompressors raise on malformed input (ArchiveError is re-raised first).
_UNREADABLE = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError, OverflowError,
    ValueError, struct.error, OSError, IndexError, KeyError, RuntimeError,
)
_ADVICE_REZIP = "create the zip again with your system's 'Compress' / 'Send to zip' and upload it again"


class _Name(NamedTuple):
    """A validated path and the name exactly as it was uploaded (messages must show what the student sent)."""

    path: str
    raw: str


# --- public API ----------------------------------------------------------------------------------------


def check_upload(uploads: list[tuple[str, bytes]], policy: ArchivePolicy = DEFAULT_POLICY) -> CheckedArchive:
    """Validate what the browser sent: exactly one zip, or several plain files (basenames only).

    A zip is recognised by its bytes, so a renamed zip is still checked as one and a `.zip` name on
    something else is refused rather than silently stored.
    """
    if not uploads:
        raise ArchiveError("the upload contains no files; choose your .py files or one .zip and try again")
    check_upload_size(sum(len(data) for _, data in uploads), policy)
    zips = [(name, data) for name, data in uploads if _is_zip(data) or _basename(name).lower().endswith(".zip")]
    if not zips:
        return _check_plain_files(uploads, policy)
    if len(uploads) > 1:
        raise ArchiveError(
            f"{_show(_basename(zips[0][0]))} looks like a zip archive: upload either one .zip on its own "
            "or several plain files, not both"
        )
    name, data = zips[0]
    label = _basename(name) or "upload.zip"
    if not _is_zip(data):
        raise ArchiveError(
            f"{_show(label)}: this is not a zip file{_sniff(data)}. Create a .zip with your system's "
            "'Compress' / 'Send to zip', or upload the .py files themselves."
        )
    return _check_zip(data, label, policy, canonical=False)


def check_upload_size(size: int, policy: ArchivePolicy = DEFAULT_POLICY) -> None:
    """Refuse an upload by its size alone; callers holding file objects call this before reading them."""
    if size > policy.max_upload_bytes:
        raise UploadTooLarge(
            f"the upload is {_size(size)}; the limit is {_size(policy.max_upload_bytes)}. "
            "Leave data sets, checkpoints and outputs out and upload only your code."
        )


def check_directory(path: Path, policy: ArchivePolicy = DEFAULT_POLICY) -> CheckedArchive:
    """Validate a local folder with the same rules as an upload (staff command line); symlinks are errors.

    No wrapper folder is stripped: staff name the root explicitly.
    """
    root = Path(path)
    if not root.is_dir():
        raise ArchiveError(f"{str(root)!r} is not a folder")
    found = _walk_directory(root, policy)
    names = _arrange([name for name, _ in found], str(root), policy, strip_wrapper=False)
    files: dict[str, bytes] = {}
    used = 0
    for name, (_, file_path) in zip(names, found, strict=True):
        with _open_regular(file_path, name.path) as stream:
            files[name.path] = _read_capped(stream, name.path, policy, used, compressed=None)
        used += len(files[name.path])
    return _finish(files, policy)


def store(archive: CheckedArchive, root: Path) -> Path:
    """Write the archive, compressed, to root/ab/cd/<sha256>.zip atomically; storing the same content twice
    is a no-op (the address is the canonical zip's hash: see the module's docstring).

    Atomic (temp file in the same folder + os.replace) so a reader never sees half an archive, and a crash
    leaves at most a dot-named temp file, never a wrong file under a content address.
    """
    digest = archive.sha256
    if not _SHA256_RE.fullmatch(digest) or hashlib.sha256(archive.canonical_zip).hexdigest() != digest:
        raise ValueError("archive.sha256 is not the SHA-256 of archive.canonical_zip; refusing to store it")
    target = Path(root) / digest[:2] / digest[2:4] / f"{digest}.zip"
    if _holds(target, digest):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{digest[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(stored_zip(archive))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def load(zip_path: Path, policy: ArchivePolicy = DEFAULT_POLICY) -> CheckedArchive:
    """Read a stored archive back, validated again (defence in depth: storage may be shared or tampered
    with); when the file is named by a content address, the canonical zip rebuilt from its members must
    hash to that name. Reads compressed archives and the uncompressed ones stored before them alike."""
    zip_path = Path(zip_path)
    limit = _stored_size_limit(policy)
    if zip_path.stat().st_size > limit:
        raise ArchiveError(f"stored archive {zip_path.name!r} is larger than {_size(limit)}; refusing to open it")
    data = zip_path.read_bytes()
    if not _is_zip(data):
        raise ArchiveError(f"stored archive {zip_path.name!r}: this is not a zip file")
    archive = _check_zip(data, zip_path.name, policy, canonical=True)
    if _SHA256_RE.fullmatch(zip_path.stem) and archive.sha256 != zip_path.stem:
        raise ArchiveError(f"stored archive {zip_path.name!r} does not match its content hash; it was damaged")
    return archive


def unpack(archive: CheckedArchive, dest: Path) -> list[str]:
    """Write a checked archive's files into an empty, fresh folder; returns the relative paths, sorted.

    A non-empty `dest` raises FileExistsError, because writing over other files would mix them with the
    submission. Folders are 0755 and files 0644 whatever the umask, so a sandbox user can read them.
    """
    root = _prepare_destination(Path(dest))
    for rel, content in archive.files.items():
        _write_file(root, rel, content)
    return list(archive.files)


def extract(zip_path: Path, dest: Path, policy: ArchivePolicy = DEFAULT_POLICY) -> list[str]:
    """Unpack a stored archive into an empty, fresh folder; returns the relative paths written, sorted.

    Nothing is written unless the whole archive passes `load`'s checks.
    """
    return unpack(load(zip_path, policy), dest)


# --- the three sources ---------------------------------------------------------------------------------


def _check_plain_files(uploads: list[tuple[str, bytes]], policy: ArchivePolicy) -> CheckedArchive:
    """Several files from a file picker: browsers may send full client paths, so keep the basename only."""
    kept: list[tuple[_Name, bytes]] = []
    for name, data in uploads:
        raw = _basename(name)
        if _is_junk(raw):
            continue
        kept.append((_Name(_clean_path(raw, ""), raw), data))
    if len(kept) > policy.max_members:  # before the per-file checks: one clear message, not the 201st name
        _too_many(len(kept), policy)
    for name, _ in kept:
        _check_pattern(name.path, policy)
    names = _arrange([name for name, _ in kept], "", policy, strip_wrapper=False)
    files: dict[str, bytes] = {}
    used = 0
    for name, (_, data) in zip(names, kept, strict=True):
        files[name.path] = _read_capped(io.BytesIO(data), name.path, policy, used, compressed=None)
        used += len(data)
    return _finish(files, policy)


def _check_zip(data: bytes, label: str, policy: ArchivePolicy, *, canonical: bool) -> CheckedArchive:
    """Check every member's metadata first, then unpack with running caps; nothing is trusted from headers.

    `canonical` is for re-checking a stored archive: its wrapper folder was already stripped, so stripping
    again would move files (a stored `src/a.py, src/b.py` must stay as it is); and it was compressed by us,
    so the ratio rule (meant for bombs in uploads) does not apply: a student's legitimate 4 MB file of
    zeros deflates a thousand times. The size caps still bound what a tampered archive can unpack to.
    """
    with _unreadable_as(label):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = _zip_members(zf, label, policy)
            names = _arrange([name for name, _ in members], label, policy, strip_wrapper=not canonical)
            files: dict[str, bytes] = {}
            used = 0
            for name, (_, info) in zip(names, members, strict=True):
                files[name.path] = _read_zip_member(zf, info, name.path, label, policy, used, ratio=not canonical)
                used += len(files[name.path])
    return _finish(files, policy)


def _zip_members(zf: zipfile.ZipFile, label: str, policy: ArchivePolicy) -> list[tuple[_Name, zipfile.ZipInfo]]:
    """The regular-file members worth keeping, each with a validated name; refuses anything unsafe."""
    kept: list[tuple[_Name, zipfile.ZipInfo]] = []
    for info in zf.infolist():
        raw = _member_name(info)
        if _is_junk(raw):
            continue
        is_dir = raw.endswith("/")
        path = _clean_path(raw[:-1] if is_dir else raw, label)
        is_dir = _check_member_kind(info, path, label) or is_dir
        if is_dir:
            continue  # folders are implied by the files' paths; empty ones are dropped
        _check_member_readable(info, path, label)
        kept.append((_Name(path, raw), info))
        if len(kept) > policy.max_members:  # stop early: a 5 MiB zip can list 100 000 entries
            _too_many(len(kept), policy, at_least=True)
    for name, _ in kept:
        _check_pattern(name.path, policy)
    return kept


def _walk_directory(root: Path, policy: ArchivePolicy) -> list[tuple[_Name, Path]]:
    """Regular files under `root` (junk skipped), in a stable order; symlinks and special files are errors."""
    found: list[tuple[_Name, Path]] = []
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                raw = prefix + entry.name
                if _is_junk(raw):
                    continue
                path = _clean_path(raw, str(root))
                if entry.is_symlink():
                    raise ArchiveError(f"{_show(path)} is a symbolic link; copy the real file there instead")
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), raw + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append((_Name(path, raw), Path(entry.path)))
                    if len(found) > policy.max_members:
                        _too_many(len(found), policy, at_least=True)
                else:
                    kind = _SPECIAL_KINDS.get(stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode), "a special file")
                    raise ArchiveError(f"{_show(path)} is {kind}, not a regular file; remove it")
    for name, _ in found:
        _check_pattern(name.path, policy)
    return found


# --- names -----------------------------------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author meant it, NUL bytes included (ZipInfo.filename truncates at NUL).

    Many zip tools write UTF-8 names without setting the UTF-8 flag; zipfile then decodes them as cp437,
    which would turn 'é.py' into mojibake, so undo that when the bytes are valid UTF-8.
    """
    name = info.orig_filename
    if info.flag_bits & _UTF8_NAME_FLAG:
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def _clean_path(raw: str, label: str) -> str:
    """Return the NFC form of a relative POSIX path, or refuse it: every zip-slip trick ends here.

    The checks run on the normalised form because that is what gets written to disk.
    """
    path = unicodedata.normalize("NFC", raw)
    where = f"{_show(raw)}{_in(label)}"
    if "\x00" in path:
        raise ArchiveError(f"{where}: the name contains a NUL byte; rename the file")
    if not path:
        raise ArchiveError(f"{_show(label) if label else 'the upload'} contains a file with an empty name; remove it")
    bad = [c for c in path if unicodedata.category(c) in _BAD_CATEGORIES]
    if bad:
        raise ArchiveError(
            f"{where}: the name contains a control or invisible character ({ascii(bad[0])}) "
            "or bytes that are not valid text; rename the file using ordinary characters"
        )
    if "\\" in path:
        raise ArchiveError(
            f"{where}: the name contains a backslash '\\'; zip paths must use '/' (and may not climb "
            f"out of the folder with '..\\'); {_ADVICE_REZIP}"
        )
    if path.startswith("/"):
        raise ArchiveError(f"{where}: the path is absolute (starts with '/'); zip the files with relative paths")
    if ":" in path:
        raise ArchiveError(
            f"{where}: the name contains ':' (a Windows drive like 'C:' or a stream name); "
            "zip the files with relative paths and names without ':'"
        )
    if len(path.encode("utf-8")) > _MAX_PATH_BYTES:
        raise ArchiveError(f"{where}: the path is longer than {_MAX_PATH_BYTES} bytes; use shorter names")
    for part in path.split("/"):
        _check_component(part, where)
    return path


def _check_component(part: str, where: str) -> None:
    """One path component: no '..' (zip slip), no '.', no empty folder names, not too long."""
    if part == "..":
        raise ArchiveError(f"{where}: the path climbs out of the archive with '..'; zip the files with relative paths")
    if part == ".":
        raise ArchiveError(f"{where}: the path contains a '.' component; {_ADVICE_REZIP}")
    if not part:
        raise ArchiveError(f"{where}: the path contains an empty folder name ('//'); {_ADVICE_REZIP}")
    if len(part.encode("utf-8")) > _MAX_COMPONENT_BYTES:
        raise ArchiveError(f"{where}: a name is longer than {_MAX_COMPONENT_BYTES} bytes; use a shorter name")


def _is_junk(raw: str) -> bool:
    """Files that operating systems and editors add on their own; skipped silently, never written.

    AppleDouble `._name` files are macOS metadata too (they appear outside __MACOSX when copying to
    non-Apple disks). Junk is recognised on the raw name: it is never extracted, so it needs no validation.
    """
    parts = raw.rstrip("/").split("/")
    base = parts[-1]
    return (
        any(part in _JUNK_DIRS for part in parts)
        or base in _JUNK_FILES
        or base.startswith("._")
        or base.lower().endswith(".pyc")
    )


def _check_pattern(path: str, policy: ArchivePolicy) -> None:
    """Only the kinds of file a submission needs; this also keeps archives-in-archives out."""
    base = path.rsplit("/", 1)[-1].lower()
    if any(fnmatch.fnmatchcase(base, pattern.lower()) for pattern in policy.allowed_patterns):
        return
    hint = ""
    if base.endswith((".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")):
        hint = " (archives inside the upload are not unpacked: put the files in directly)"
    raise ArchiveError(
        f"{_show(path)} is not an allowed kind of file{hint}; allowed: "
        f"{', '.join(policy.allowed_patterns)}. Remove it from the upload."
    )


def _arrange(names: list[_Name], label: str, policy: ArchivePolicy, *, strip_wrapper: bool) -> list[_Name]:
    """Final paths in the same order: wrapper folder stripped, then depth and name collisions checked."""
    if not names:
        raise ArchiveError(
            "the upload contains no files (system files such as __MACOSX, .DS_Store and __pycache__ "
            "are ignored); upload your .py files"
        )
    if len(names) > policy.max_members:
        _too_many(len(names), policy)
    if strip_wrapper:
        names = _strip_wrapper(names)
    for name in names:
        depth = name.path.count("/") + 1
        if depth > policy.max_depth:
            raise ArchiveError(
                f"{_show(name.path)}{_in(label)} is {depth} levels deep; at most {policy.max_depth} "
                "are allowed. Flatten your folders."
            )
    _check_collisions(names, label)
    return names


def _strip_wrapper(names: list[_Name]) -> list[_Name]:
    """If the student zipped their folder (every file under one top folder), drop that folder once."""
    tops = {name.path.split("/", 1)[0] for name in names}
    if len(tops) != 1 or any("/" not in name.path for name in names):
        return names
    return [_Name(name.path.split("/", 1)[1], name.raw) for name in names]


def _check_collisions(names: list[_Name], label: str) -> None:
    """Refuse names that one file system would merge: exact duplicates, case and Unicode-form twins, and a
    file that is also used as a folder. macOS and Windows students would otherwise lose a file silently."""
    seen: dict[str, _Name] = {}
    for name in names:
        key = _fold(name.path)
        other = seen.get(key)
        if other is None:
            seen[key] = name
        elif other.raw == name.raw:
            raise ArchiveError(f"{_show(name.path)} appears more than once{_in(label)}; keep one copy")
        else:
            raise ArchiveError(
                f"{_show(other.path)} and {_show(name.path)}{_in(label)} differ only in letter case "
                f"or Unicode form (stored as {ascii(other.raw)} and {ascii(name.raw)}), which macOS and "
                "Windows treat as the same file; rename or remove one"
            )
    for name in names:
        parts = name.path.split("/")
        for depth in range(1, len(parts)):
            clash = seen.get(_fold("/".join(parts[:depth])))
            if clash is not None:
                raise ArchiveError(
                    f"{_show(clash.path)}{_in(label)} is a file but {_show(name.path)} uses it as a "
                    "folder; rename one of them"
                )


def _fold(path: str) -> str:
    """The identity a case-insensitive, normalisation-insensitive file system gives a path."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


# --- member metadata and contents --------------------------------------------------------------------------


def _check_member_kind(info: zipfile.ZipInfo, path: str, label: str) -> bool:
    """True for a folder entry; refuses symlinks and special files (their Unix type is in external_attr)."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise ArchiveError(
            f"{_show(path)}{_in(label)} is a symbolic link; links are not accepted. "
            "Put the real file in the zip instead."
        )
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = _SPECIAL_KINDS.get(kind, f"a special file (type {kind:#o})")
        raise ArchiveError(f"{_show(path)}{_in(label)} is {what}, not a regular file; remove it")
    return kind == stat.S_IFDIR


def _check_member_readable(info: zipfile.ZipInfo, path: str, label: str) -> None:
    """Refuse what cannot be unpacked safely before touching the data: encryption, odd compression."""
    if info.flag_bits & _ENCRYPTED_FLAGS or info.compress_type == 99:
        raise ArchiveError(
            f"{_show(path)}{_in(label)} is encrypted (password-protected); create the zip without a password"
        )
    if info.compress_type not in _SUPPORTED_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise ArchiveError(
            f"{_show(path)}{_in(label)} uses {method} compression, which is not supported; "
            "create the zip with standard (deflate) compression"
        )


def _read_zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, label: str, policy: ArchivePolicy, used: int,
    *, ratio: bool = True,
) -> bytes:
    """Unpack one member while counting; the header's sizes are checked against what actually came out.

    zipfile stops reading at the header's file_size (and checks the CRC there); a copy with that size
    raised past our cap plus a read's worth lets our own counter, not the header, decide when a member
    is too big.
    """
    probe = copy.copy(info)
    probe.file_size = policy.max_member_bytes + 2 * _CHUNK
    with zf.open(probe) as stream:
        data = _read_capped(stream, path, policy, used, compressed=info.compress_size if ratio else None)
    if len(data) != info.file_size:
        raise ArchiveError(
            f"{_show(path)}{_in(label)} is damaged: its header says {info.file_size} bytes but it "
            f"unpacks to {len(data)}; {_ADVICE_REZIP}"
        )
    return data


def _read_capped(stream: BinaryIO, path: str, policy: ArchivePolicy, used: int, compressed: int | None) -> bytes:
    """Read in chunks and stop as soon as a cap is crossed, so a bomb never fills memory.

    `used` is what earlier files already took of the total; `compressed` (zips only) feeds the ratio rule.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > policy.max_member_bytes:
            raise ArchiveError(
                f"{_show(path)} is more than {_size(policy.max_member_bytes)} once unpacked (the limit per "
                "file); leave large data files out of the upload"
            )
        if used + size > policy.max_total_bytes:
            raise ArchiveError(
                f"the files together are more than {_size(policy.max_total_bytes)} once unpacked (the limit), "
                f"reached while unpacking {_show(path)}; leave large data files out of the upload"
            )
        if compressed is not None and size > policy.ratio_grace_bytes and size > policy.max_ratio * max(compressed, 1):
            raise ArchiveError(
                f"{_show(path)} unpacks to more than {policy.max_ratio:g} times its compressed size "
                f"({_size(compressed)} compressed), as zip bombs do; if it is a real data file, leave it out"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def _unreadable_as(label: str) -> Iterator[None]:
    """Turn whatever zipfile or zlib raise on a damaged archive into one clear ArchiveError."""
    try:
        yield
    except ArchiveError:
        raise
    except _UNREADABLE as exc:
        detail = str(exc)[:120] or exc.__class__.__name__
        raise ArchiveError(f"{_show(label)} is damaged or truncated and cannot be read ({detail}); {_ADVICE_REZIP}") from exc


# --- canonical form, storage and extraction -----------------------------------------------------------------


def _finish(files: dict[str, bytes], policy: ArchivePolicy) -> CheckedArchive:
    """Check the required files are there, sort, build the canonical zip and hash it."""
    for required in policy.required_files:
        if required not in files:
            found = ", ".join(_show(name) for name in sorted(files)[:10]) or "nothing"
            raise MissingRequiredFile(
                f"The submission has no {required}: this part imports your code from that file, at the top "
                f"of the upload (found: {found}). Name your file {required} and upload it again."
            )
    ordered = dict(sorted(files.items()))
    blob = _zip_of(ordered, zipfile.ZIP_STORED)
    return CheckedArchive(files=ordered, sha256=hashlib.sha256(blob).hexdigest(), canonical_zip=blob)


def stored_zip(archive: CheckedArchive) -> bytes:
    """The bytes `store` writes: the canonical zip's members and metadata, deflated.

    Deterministic on one zlib build; across builds the bytes may differ, which is why the content
    address is the canonical zip's hash, never this one's.
    """
    return _zip_of(archive.files, zipfile.ZIP_DEFLATED)


def _zip_of(files: dict[str, bytes], compression: int) -> bytes:
    """A zip whose bytes depend on names, contents and `compression` only: sorted names, fixed times and
    permissions. ZIP_STORED gives the canonical zip, whose hash is the content address."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression, compresslevel=9 if compression else None) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = compression
            zf.writestr(info, files[path])
    return buf.getvalue()


def _stored_size_limit(policy: ArchivePolicy) -> int:
    """The largest canonical zip the policy can produce: contents plus per-entry headers and names."""
    return policy.max_total_bytes + policy.max_members * (2 * _MAX_PATH_BYTES + 128) + 1024


def _holds(target: Path, digest: str) -> bool:
    """Whether `target` already holds this archive, compressed or not (a damaged copy is rewritten, not trusted)."""
    try:
        return load(target).sha256 == digest
    except (FileNotFoundError, ArchiveError):
        return False


def _prepare_destination(dest: Path) -> Path:
    """The resolved, empty destination folder, created if missing."""
    if dest.exists():
        if not dest.is_dir():
            raise NotADirectoryError(f"extract destination {str(dest)!r} is not a folder")
        if any(dest.iterdir()):
            raise FileExistsError(f"extract destination {str(dest)!r} is not empty")
    else:
        dest.mkdir(parents=True)
        os.chmod(dest, 0o755)
    return dest.resolve()


def _write_file(root: Path, rel: str, content: bytes) -> None:
    """Create one file under `root` (never following or overwriting anything), with fixed permissions."""
    parts = rel.split("/")
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        _make_folder(folder)
    target = folder / parts[-1]
    if os.path.commonpath([root, target]) != str(root):  # unreachable after _clean_path; kept on purpose
        raise ArchiveError(f"{_show(rel)} would be written outside the destination")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        os.fchmod(fh.fileno(), 0o644)


def _make_folder(folder: Path) -> None:
    """mkdir with mode 0o755 regardless of umask; an existing entry must be a real folder, not a link."""
    try:
        os.mkdir(folder, 0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise ArchiveError(f"{str(folder)!r} exists and is not a folder") from None
        return
    os.chmod(folder, 0o755)


@contextlib.contextmanager
def _open_regular(file_path: Path, shown: str) -> Iterator[BinaryIO]:
    """Open without following a symlink swapped in since the walk, and insist on a regular file."""
    fd = os.open(file_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ArchiveError(f"{_show(shown)} is not a regular file; remove it")
        yield fh


# --- small helpers for messages ------------------------------------------------------------------------------


def _is_zip(data: bytes) -> bool:
    return data[:4] in _ZIP_MAGICS


def _basename(name: str) -> str:
    """The last component of a browser-sent name; old browsers send 'C:\\Users\\me\\model.py'."""
    return re.split(r"[\\/]", name)[-1]


def _sniff(data: bytes) -> str:
    """A hint at what a fake zip really is, so the message can say more than 'no'."""
    kinds = [
        (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"\x1f\x8b", "a gzip file"),
        (b"%PDF", "a PDF"), (b"\x89PNG", "a PNG image"),
    ]
    for magic, what in kinds:
        if data.startswith(magic):
            return f" (it looks like {what})"
    if data[257:262] == b"ustar":
        return " (it looks like a tar archive)"
    return ""


def _in(label: str) -> str:
    """' in <archive>' for messages about a member; empty for plain uploads, which have no container."""
    return f" in {_show(label)}" if label else ""


def _show(name: str) -> str:
    """A name quoted for a message: escapes control characters, and long names are cut."""
    return repr(name if len(name) <= 120 else name[:100] + "…")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _too_many(count: int, policy: ArchivePolicy, *, at_least: bool = False) -> NoReturn:
    """Raise the 'too many files' error; `at_least` when counting stopped early (a folder walk)."""
    counted = f"more than {policy.max_members}" if at_least else str(count)
    raise ArchiveError(
        f"the upload has {counted} files; at most {policy.max_members} are allowed. Upload only your code."
    )
