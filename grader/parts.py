"""The assignment package format: `assignments/lab1/<slug>/part.toml` and the folders beside it.

A part folder holds
- `part.toml`: the manifest (title, outcomes, tier, resources, entry points, checks with thresholds);
- `handout/`: everything a student may see; it is also the starter code;
- `checks.py` and `hidden/`: trusted checks and hidden data, never served, never mounted in a sandbox;
- `solution/`: the reference solution, never served;
- `oral.toml`: the oral question bank;
- `alternatives/<name>/`: honest solutions written independently of the reference (another network, objective
  or solver the handout allows); calibration holds them to the reference's standard on the E and C checks;
- `wrong/<bug>/`: known-wrong submissions, each naming the check that must catch it. A known-wrong is
  stored as what makes it wrong: `bug.patch` (a unified diff against `solution/`) and/or whole files
  laid over a copy of `solution/`; `build_known_wrong` makes the submission.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

TIERS = ("E", "C", "A")
VISIBILITIES = ("public", "hidden", "staff")
SPEC_RE = re.compile(r"^(?:(?P<name>[A-Za-z_]\w*)\s*:\s*)?(?P<type>[a-z0-9]+)(?:\[(?P<shape>[^\]]*)\])?$")
TENSOR_KINDS = {"float": "floating", "float32": "floating", "float64": "floating", "int64": "integer",
                "int": "integer", "long": "integer", "bool": "bool"}


class PartError(ValueError):
    """A malformed part folder; the message says which file and which field."""


@dataclass(frozen=True)
class ValueSpec:
    """One declared argument or result: `name: float32[B,K]`, `float32[B]`, or a scalar type."""

    name: str
    kind: str  # floating | integer | bool | number | int_scalar | str | json
    shape: tuple[str, ...] | None  # dims: digits are fixed sizes, identifiers bind per call

    @classmethod
    def parse(cls, text: str, where: str, default_name: str = "result") -> ValueSpec:
        m = SPEC_RE.match(text.strip())
        if not m:
            raise PartError(f"{where}: cannot read value spec {text!r} (write e.g. 'log_pi: float32[B,K]')")
        kind_word, shape = m["type"], m["shape"]
        name = m["name"] or default_name
        if shape is not None:
            if kind_word not in TENSOR_KINDS:
                raise PartError(f"{where}: unknown tensor type {kind_word!r}")
            dims = tuple(d.strip() for d in shape.split(",") if d.strip())
            for d in dims:
                if not (d.isdigit() or d.isidentifier()):
                    raise PartError(f"{where}: bad dimension {d!r} in {text!r}")
            return cls(name, TENSOR_KINDS[kind_word], dims)
        scalar = {"float": "number", "number": "number", "int": "int_scalar", "str": "str", "json": "json"}.get(kind_word)
        if scalar is None:
            raise PartError(f"{where}: unknown scalar type {kind_word!r}")
        return cls(name, scalar, None)


@dataclass(frozen=True)
class EntryPoint:
    """A callable the student implements. `call` is `function` (module level) or `object.method`,
    where the object was stored by an earlier entry point whose result is `object <name>`."""

    call: str
    doc: str
    args: tuple[ValueSpec, ...]
    kwargs: tuple[ValueSpec, ...]
    returns: tuple[ValueSpec, ...]  # empty when the result is stored as an object
    stores_object: str | None
    returns_tuple: bool
    build: str | None = None  # a training entry point: the function that rebuilds its object from its state
    seconds: float | None = None  # the limit of one call, from the reference's cost (default: call_seconds)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    title: str
    tier: str
    points: float
    visibility: str
    threshold: float | None
    direction: str  # "max": value <= threshold passes; "min": value >= threshold; "": pass/fail
    unit: str
    measure: str  # what the value is, in words: "largest |sum of weights - 1|"
    explain: str


@dataclass(frozen=True)
class Resources:
    device: str  # cpu | gpu
    memory_mb: int
    cpus: float
    pids: int
    tmpfs_mb: int
    run_seconds: float  # the whole run, every call included
    call_seconds: float  # default limit for one call
    train_seconds_cpu: float
    train_seconds_gpu: float
    # a training that returns within this share of its budget is flagged to the examiner (never failed): the
    # references train for 70-85 % of it, and a model written down from the data returns at once
    quick_fit_fraction: float = 0.05

    def train_seconds(self, on_gpu: bool) -> float:
        return self.train_seconds_gpu if on_gpu else self.train_seconds_cpu


@dataclass(frozen=True)
class PartSpec:
    slug: str
    path: Path
    title: str
    summary: str
    tier: str
    learning_outcomes: tuple[int, ...]
    module: str  # the file the student submits, e.g. "mdn.py"
    resources: Resources
    entry_points: dict[str, EntryPoint]
    checks: dict[str, CheckSpec]
    allowed_patterns: tuple[str, ...]
    content_hash: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def handout_dir(self) -> Path:
        return self.path / "handout"

    @property
    def solution_dir(self) -> Path:
        return self.path / "solution"

    @property
    def checks_file(self) -> Path:
        return self.path / "checks.py"

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks.values())

    def alternatives(self) -> list[Path]:
        """Honest solutions written independently of the reference (`alternatives/<name>/`, whole folders):
        calibration grades them like the reference, and they must pass every E and C check."""
        folder = self.path / "alternatives"
        return sorted(p for p in folder.iterdir() if p.is_dir() and (p / self.module).is_file()) if folder.is_dir() else []

    def known_wrong(self) -> list[tuple[str, Path, list[str]]]:
        """(bug name, folder, checks that must fail) for every `wrong/<bug>/` with a `CATCHES` file."""
        found = []
        wrong = self.path / "wrong"
        if wrong.is_dir():
            for folder in sorted(p for p in wrong.iterdir() if p.is_dir()):
                catches_file = folder / "CATCHES"
                if not catches_file.exists():
                    raise PartError(f"{folder}: a known-wrong submission needs a CATCHES file naming its checks")
                names = catches_file.read_text().split()
                unknown = [n for n in names if n not in self.checks]
                if unknown:
                    raise PartError(f"{catches_file}: unknown checks {unknown}")
                found.append((folder.name, folder, names))
        return found


WRONG_META = ("CATCHES", "ON_SOLUTION")  # bookkeeping beside a known-wrong or red-team submission, never part of it


def build_known_wrong(wrong: Path, dest: Path, solution: Path | None = None) -> Path:
    """Make the submission of the known-wrong folder `wrong/<bug>/` in `dest` (which must not exist): a copy of
    the part's `solution/`, the folder's own files laid over it, then its `*.patch` files applied. `solution`:
    another reference folder, for a folder kept outside the part (the red team's attacks).

    Patches keep a known-wrong to the few lines that make it wrong, so it cannot drift from the reference:
    when the reference changes under a patch, building fails and says which patch to regenerate."""
    solution = solution or wrong.parent.parent / "solution"
    shutil.copytree(solution, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(wrong.rglob("*")):
        rel = path.relative_to(wrong)
        if path.is_file() and path.suffix != ".patch" and rel.as_posix() not in WRONG_META and "__pycache__" not in rel.parts:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel)
    for patch in sorted(wrong.glob("*.patch")):
        # git apply works as a plain patch tool outside a repository; the ceiling stops it from finding
        # an enclosing one (which would make it resolve paths from that repository's root).
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(dest.parent)}
        done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch.resolve())], cwd=dest, env=env,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise PartError(f"{patch} no longer applies to {solution}: regenerate it from the reference "
                            f"({done.stderr.strip()[:500]})")
    return dest


def content_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, so any edit makes a new version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _require(table: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise PartError(f"{where}: missing '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        raise PartError(f"{where}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _parse_entry(call: str, table: dict, where: str) -> EntryPoint:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?", call):
        raise PartError(f"{where}: entry point name {call!r} must be 'function' or 'object.method'")
    args = tuple(ValueSpec.parse(s, where, f"arg{i}") for i, s in enumerate(table.get("args", [])))
    kwargs = tuple(ValueSpec.parse(s, where) for s in table.get("kwargs", []))
    returns = table.get("returns", "json")
    stores = None
    if isinstance(returns, str) and returns.startswith("object "):
        stores = returns.split(None, 1)[1].strip()
        if not stores.isidentifier():
            raise PartError(f"{where}: object name {stores!r} is not an identifier")
        specs: tuple[ValueSpec, ...] = ()
        as_tuple = False
    elif isinstance(returns, list):
        specs = tuple(ValueSpec.parse(s, where, f"out{i}") for i, s in enumerate(returns))
        as_tuple = True
    else:
        specs = (ValueSpec.parse(str(returns), where),)
        as_tuple = False
    build = None
    if stores:
        build = str(table.get("build", f"build_{stores}"))
        if not build.isidentifier():
            raise PartError(f"{where}: build {build!r} must name a function of the module")
    seconds = table.get("seconds")
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise PartError(f"{where}: seconds must be a positive number (the limit of one call)")
    return EntryPoint(call, str(table.get("doc", "")), args, kwargs, specs, stores, as_tuple, build,
                      None if seconds is None else float(seconds))


def _parse_check(name: str, table: dict, where: str) -> CheckSpec:
    tier = table.get("tier", "E")
    if tier not in TIERS:
        raise PartError(f"{where}: tier must be one of {TIERS}")
    visibility = table.get("visibility", "hidden")
    if visibility not in VISIBILITIES:
        raise PartError(f"{where}: visibility must be one of {VISIBILITIES}")
    threshold = table.get("threshold")
    direction = table.get("direction", "")
    if (threshold is None) != (direction == ""):
        raise PartError(f"{where}: give both 'threshold' and 'direction' (max|min) or neither")
    if direction not in ("", "max", "min"):
        raise PartError(f"{where}: direction must be 'max' (value ≤ threshold) or 'min' (value ≥ threshold)")
    return CheckSpec(
        name=name,
        title=_require(table, "title", where, str),
        tier=tier,
        points=float(table.get("points", 0)),
        visibility=visibility,
        threshold=None if threshold is None else float(threshold),
        direction=direction,
        unit=str(table.get("unit", "")),
        measure=str(table.get("measure", "measured")),
        explain=str(table.get("explain", "")),
    )


def load_part_dir(path: Path) -> PartSpec:
    manifest_file = path / "part.toml"
    if not manifest_file.exists():
        raise PartError(f"{path}: no part.toml")
    try:
        manifest = tomllib.loads(manifest_file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PartError(f"{manifest_file}: {exc}") from exc
    where = str(manifest_file)
    slug = _require(manifest, "slug", where, str)
    if slug != path.name:
        raise PartError(f"{where}: slug {slug!r} must equal the folder name {path.name!r}")
    res = _require(manifest, "resources", where, dict)
    train = manifest.get("training", {})
    resources = Resources(
        device=res.get("device", "cpu"),
        memory_mb=int(res.get("memory_mb", 2048)),
        cpus=float(res.get("cpus", 2)),
        pids=int(res.get("pids", 64)),
        tmpfs_mb=int(res.get("tmpfs_mb", 64)),
        run_seconds=float(res.get("run_seconds", 300)),
        call_seconds=float(res.get("call_seconds", 30)),
        train_seconds_cpu=float(train.get("cpu_seconds", 60)),
        train_seconds_gpu=float(train.get("gpu_seconds", 30)),
        quick_fit_fraction=float(train.get("quick_fit_fraction", 0.05)),
    )
    if resources.device not in ("cpu", "gpu"):
        raise PartError(f"{where}: resources.device must be cpu or gpu")
    entries = {
        call: _parse_entry(call, table, f"{where} [entry_points.{call}]")
        for call, table in _require(manifest, "entry_points", where, dict).items()
    }
    stored = {e.stores_object for e in entries.values() if e.stores_object}
    for call in entries:
        if "." in call and call.split(".")[0] not in stored:
            raise PartError(f"{where}: {call} calls a method on an object no entry point stores")
    checks = {
        name: _parse_check(name, table, f"{where} [checks.{name}]")
        for name, table in _require(manifest, "checks", where, dict).items()
    }
    module = _require(manifest, "module", where, str)
    if not re.fullmatch(r"[A-Za-z_]\w*\.py", module):
        raise PartError(f"{where}: module must be a plain file name like 'mdn.py'")
    return PartSpec(
        slug=slug,
        path=path,
        title=_require(manifest, "title", where, str),
        summary=str(manifest.get("summary", "")),
        tier=manifest.get("tier", "E"),
        learning_outcomes=tuple(int(x) for x in manifest.get("learning_outcomes", [])),
        module=module,
        resources=resources,
        entry_points=entries,
        checks=checks,
        allowed_patterns=tuple(manifest.get("allowed_files", ["*.py", "*.md", "*.txt"])),
        content_hash=content_hash(path),
        manifest=manifest,
    )


def parts_root() -> Path:
    return Path(settings.ASSIGNMENTS_DIR) / "lab1"


def load_part(slug: str) -> PartSpec:
    if not re.fullmatch(r"[a-z0-9_-]+", slug):
        raise PartError(f"not a part name: {slug!r}")
    path = parts_root() / slug
    if not path.is_dir():
        raise PartError(f"no part {slug!r} under {parts_root()}")
    return load_part_dir(path)


def all_parts() -> list[PartSpec]:
    root = parts_root()
    return [load_part_dir(p) for p in sorted(root.iterdir()) if (p / "part.toml").exists()]
