"""What a part's trusted `checks.py` works with: a `Grading` that calls the student's entry points
through the sandbox, validates every result against the manifest, and records check outcomes.

Every score is computed here or in the part's checks, outside the sandbox, from returned values.
Thresholds, points, tiers and visibility come from the manifest, so a check cannot drift from it.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from grader.parts import CheckSpec, EntryPoint, PartSpec, ValueSpec
from grader.sandbox.session import SandboxError, Session


class ResultInvalid(SandboxError):
    """A returned value does not have the declared type, shape or finiteness."""

    kind = "result"


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 1_000_000


@dataclass
class Artifact:
    name: str
    caption: str
    audience: str  # student | staff
    data: bytes
    content_type: str = "image/png"


@dataclass
class CheckOutcome:
    name: str
    title: str
    tier: str
    visibility: str
    passed: bool
    points: float
    max_points: float
    value: float | None
    threshold: float | None
    direction: str
    unit: str
    feedback: str
    staff_note: str
    order: int

    @property
    def margin(self) -> float | None:
        if self.value is None or self.threshold is None or not self.direction:
            return None
        return self.threshold - self.value if self.direction == "max" else self.value - self.threshold

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_number(x: float | None) -> str:
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.3e}"
    return f"{x:.4g}"


TRAINING_HINT = "Stop training when max_seconds is used up (check time.monotonic() in your loop)."


class Grading:
    """Handed to `grade(g)` in a part's checks.py."""

    def __init__(self, part: PartSpec, session: Session, *, seed: int, on_gpu: bool,
                 progress: Callable[[str], None] | None = None):
        self.part = part
        self.session = session
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.on_gpu = on_gpu
        self.train_seconds = part.resources.train_seconds(on_gpu)
        self.outcomes: dict[str, CheckOutcome] = {}
        self.artifacts: list[Artifact] = []
        self.timings: dict[str, float] = {}
        self._progress = progress or (lambda phase: None)

    # ---- talking to the sandbox ----
    def progress(self, phase: str) -> None:
        self._progress(phase)

    def torch_seed(self) -> int:
        """A fresh seed for the student's code, drawn from the secret run seed."""
        return int(self.rng.integers(0, 2**31 - 1))

    def call(self, entry: str, *args: Any, audience: str = "staff", timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Call an entry point declared in the manifest and return its validated result: a float64
        tensor (floating results), a dict name -> value for tuple results, or a JSON value."""
        spec = self.part.entry_points[entry]
        args = tuple(_to_wire(a) for a in args)
        kwargs = {k: _to_wire(v) for k, v in kwargs.items()}
        result, seconds = self.session.call(
            entry, *args, timeout=timeout or self.part.resources.call_seconds, audience=audience,
            stores_object=spec.stores_object is not None, **kwargs)
        self.timings[entry] = self.timings.get(entry, 0.0) + seconds
        if spec.stores_object:
            return None
        bound = _bind_args(spec, args)
        return _validate_result(spec, result, bound)

    def train(self, entry: str, *data: Any, check: str, budget: float | None = None, audience: str = "student",
              hint: str = TRAINING_HINT) -> None:
        """Call a training entry point (`fit`-like: data, then seed= and max_seconds=) with a fresh seed
        drawn from the secret one, and score the time it took in `check` against the budget plus 2 s of
        grace for moving the data. The call itself may run to 1.5 x the budget + 10 s before it is
        stopped, so that an overrun is reported as a slow fit rather than a timeout. A failing call raises
        SandboxError into the enclosing `checks` section, like any call."""
        budget = self.train_seconds if budget is None else float(budget)
        before = self.timings.get(entry, 0.0)
        self.call(entry, *data, seed=self.torch_seed(), max_seconds=budget, audience=audience,
                  timeout=budget * 1.5 + 10)
        self.metric(check, self.timings[entry] - before, threshold=budget + 2.0, hint=hint)

    def attach_image(self, name: str, png: bytes, caption: str = "", *, audience: str = "student") -> None:
        """Show a PNG (made by trusted code, e.g. with matplotlib) with the results. Never pass
        anything the sandbox produced as bytes: draw it here from validated tensors."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            raise ValueError(f"artifact name {name!r} must be a short slug")
        if audience not in ("student", "staff"):
            raise ValueError("audience must be 'student' or 'staff'")
        if not png.startswith(PNG_MAGIC) or len(png) > MAX_IMAGE_BYTES:
            raise ValueError("attach_image takes a PNG of at most 1 MB")
        if any(a.name == name for a in self.artifacts):
            raise ValueError(f"artifact {name} attached twice")
        self.artifacts.append(Artifact(name, caption[:300], audience, png))

    # ---- recording outcomes ----
    def _spec(self, name: str) -> CheckSpec:
        try:
            return self.part.checks[name]
        except KeyError:
            raise KeyError(f"check {name!r} is not declared in {self.part.slug}/part.toml") from None

    def record(self, name: str, passed: bool, feedback: str = "", *, value: float | None = None,
               note: str = "") -> bool:
        spec = self._spec(name)
        if name in self.outcomes:
            raise RuntimeError(f"check {name} recorded twice")
        self.outcomes[name] = CheckOutcome(
            name=name, title=spec.title, tier=spec.tier, visibility=spec.visibility, passed=bool(passed),
            points=spec.points if passed else 0.0, max_points=spec.points,
            value=None if value is None else float(value), threshold=spec.threshold,
            direction=spec.direction, unit=spec.unit, feedback=feedback, staff_note=note,
            order=list(self.part.checks).index(name),
        )
        return bool(passed)

    def metric(self, name: str, value: float, *, hint: str = "", note: str = "",
               threshold: float | None = None) -> bool:
        """Compare a trusted measurement with the manifest's threshold (or one derived from it, such as
        a budget that differs on GPU; the threshold used is what gets stored). NaN never passes."""
        spec = self._spec(name)
        if spec.threshold is None:
            raise RuntimeError(f"check {name} has no threshold in part.toml")
        limit = spec.threshold if threshold is None else float(threshold)
        value = float(value)
        ok = math.isfinite(value) and (value <= limit if spec.direction == "max" else value >= limit)
        relation = "at most" if spec.direction == "max" else "at least"
        unit = f" {spec.unit}" if spec.unit else ""
        feedback = f"{spec.measure[:1].upper() + spec.measure[1:]}: {format_number(value)}{unit}; needs to be {relation} {format_number(limit)}{unit}."
        if not ok and hint:
            feedback += " " + hint
        self.record(name, ok, feedback, value=value, note=note)
        self.outcomes[name].threshold = limit
        return ok

    @contextlib.contextmanager
    def checks(self, *names: str) -> Iterator[None]:
        """A section of checks that share sandbox calls: if a call fails, each of these checks that was
        not yet recorded fails with the reason, and grading continues with the next section."""
        for name in names:
            self._spec(name)
        try:
            yield
        except SandboxError as exc:
            for name in names:
                if name not in self.outcomes:
                    self.record(name, False, f"Not checked: {exc.student_message}", note=exc.detail[-2000:])

    def finish(self, reason: str = "") -> list[CheckOutcome]:
        for name in self.part.checks:
            if name not in self.outcomes:
                self.record(name, False, reason or "Not checked: grading stopped before this check.")
        return sorted(self.outcomes.values(), key=lambda o: o.order)


# ---- result validation ----

def _to_wire(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
        return value.to(torch.float32)  # students' models work in float32
    return value


def _bind_args(spec: EntryPoint, args: tuple) -> dict[str, int]:
    bound: dict[str, int] = {}
    for arg_spec, arg in zip(spec.args, args, strict=False):
        if arg_spec.shape and isinstance(arg, torch.Tensor) and arg.dim() == len(arg_spec.shape):
            for dim, size in zip(arg_spec.shape, arg.shape, strict=True):
                if not dim.isdigit():
                    bound.setdefault(dim, int(size))
    return bound


def _validate_result(spec: EntryPoint, result: Any, bound: dict[str, int]) -> Any:
    if spec.returns_tuple:
        names = [s.name for s in spec.returns]
        if isinstance(result, dict):
            missing = [n for n in names if n not in result]
            if missing:
                raise ResultInvalid(f"{spec.call} must return {', '.join(names)}; {', '.join(missing)} missing.")
            items = [result[n] for n in names]
        elif isinstance(result, list):
            if len(result) != len(names):
                raise ResultInvalid(
                    f"{spec.call} must return a tuple of {len(names)} values ({', '.join(names)}); it returned {len(result)}.")
            items = result
        else:
            raise ResultInvalid(f"{spec.call} must return a tuple ({', '.join(names)}); it returned a single value.")
        return {s.name: _validate_value(spec.call, s, v, bound) for s, v in zip(spec.returns, items, strict=True)}
    return _validate_value(spec.call, spec.returns[0], result, bound)


def _validate_value(call: str, spec: ValueSpec, value: Any, bound: dict[str, int]) -> Any:
    what = f"{call} returned {spec.name}" if spec.name not in ("result", "out0") else f"{call} returned a value that"
    if spec.shape is None:
        if spec.kind == "number":
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ResultInvalid(f"{what} should be a number.")
            return float(value)
        if spec.kind == "int_scalar":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ResultInvalid(f"{what} should be an integer.")
            return value
        if spec.kind == "str" and not isinstance(value, str):
            raise ResultInvalid(f"{what} should be a string.")
        return value
    if not isinstance(value, torch.Tensor):
        raise ResultInvalid(f"{what} should be a tensor, not {type(value).__name__}.")
    if spec.kind == "floating" and not value.is_floating_point():
        raise ResultInvalid(f"{what} should be a floating-point tensor, not {value.dtype}.")
    if spec.kind == "integer" and (value.is_floating_point() or value.dtype == torch.bool):
        raise ResultInvalid(f"{what} should be an integer tensor, not {value.dtype}.")
    if value.dim() != len(spec.shape):
        raise ResultInvalid(
            f"{what} has shape {list(value.shape)}; expected {len(spec.shape)} dimensions [{', '.join(spec.shape)}].")
    for dim, size in zip(spec.shape, value.shape, strict=True):
        expected = int(dim) if dim.isdigit() else bound.get(dim)
        if expected is None:
            bound[dim] = int(size)
        elif expected != size:
            shown = ", ".join(d if not d.isdigit() else d for d in spec.shape)
            raise ResultInvalid(
                f"{what} has shape {list(value.shape)}; expected [{shown}] with {dim} = {expected}.")
    if value.is_floating_point():
        value = value.to(torch.float64)
        if not torch.isfinite(value).all():
            raise ResultInvalid(f"{what} contains NaN or infinite values.")
    return value
