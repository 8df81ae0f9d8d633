"""What a part's trusted `checks.py` works with: a `Grading` that calls the student's entry points
through the sandbox, validates every result against the manifest, and records check outcomes.

Every score is computed here or in the part's checks, outside the sandbox, from returned values.
Thresholds, points, tiers and visibility come from the manifest, so a check cannot drift from it.

The rules a check author relies on, each kept here once:
- a *section* (`with g.section("a", "b"):`) reports its own status: when a sandbox call inside it fails,
  each of its checks not yet recorded fails with the reason in the student's words; when the grader's
  own code raises, they are marked as grader errors (not the student's fault, regraded) and grading goes
  on with the next section. A section may name checks that a later section records (they fail with it
  when it fails); a check that nothing records by the end is a grader error.
- training goes through `g.train`, which passes the budget, times the call and scores the time; the
  handle it returns is what later calls depend on: a call on the object of a training that failed fails
  with "not checked", so no part keeps flags of its own;
- what no check can decide (a training far quicker than any, samples nearer the training set than fresh
  data) goes to the examiner through `g.flag`: staff-only, never a grade; `g.train` flags a training that
  returns within the part's `quick_fit_fraction` of its budget, for every part;
- a figure goes through `g.figure`, which never raises: a figure that cannot be drawn is reported to
  staff and never discards a run's results.
"""

from __future__ import annotations

import contextlib
import math
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from grader.checklib.numerics import rel_error
from grader.checklib.plots import render_png
from grader.lifetimes import FrozenObject, Sandboxes, StateInvalid, freeze
from grader.outcomes import Artifact, CheckOutcome, Status, format_number
from grader.parts import CheckSpec, EntryPoint, PartSpec, ValueSpec
from grader.sandbox.session import CallFailed, InfrastructureError, OutputLog, SandboxError, SavedState


class ResultInvalid(SandboxError):
    """A returned value does not have the declared type, shape or finiteness."""

    kind = "result"


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 1_000_000
GRADER_ERROR_FEEDBACK = ("This check could not be completed because of an error in the grader, not in your code. "
                         "Staff have been told; it does not count against you.")


class NotTrained(SandboxError):
    """A call on the object of a training entry point that did not succeed."""

    kind = "dependency"

    def __init__(self, student_message: str, detail: str = "", *, not_attempted: bool = False):
        super().__init__(student_message, detail)
        self.not_attempted = not_attempted


# A call asked of a trained object and of its rebuilt copy: (entry, args, kwargs), or a function of `ask`.
Probe = tuple[str, tuple, dict] | Callable[[Callable[..., Any]], tuple[str, tuple, dict]]

TRAINING_HINT = "Stop training when max_seconds is used up (check time.monotonic() in your loop)."
RESTORE_TOLERANCE = 1e-4  # a rebuilt model's answers may differ from the trained one's by float rounding only
TRAINING_GRACE_SECONDS = 2.0  # for moving the data in and the model's handle out


@dataclass
class Trained:
    """What a training call left behind: the stored object's name, how long it took, and why it failed."""

    entry: str
    stores: str | None
    seconds: float = math.nan
    error: SandboxError | None = None
    probe: tuple[str, tuple, dict, Any] | None = None  # (entry, args, kwargs, the trained object's answer)
    probed: bool = False  # compared with the rebuilt object's answer
    unsteady: float = 0.0  # how far the trained object's answers to the probe, asked twice, were apart
    quick: bool = False  # returned far sooner than any training of this part (flagged to the examiner)
    frozen: FrozenObject | None = None  # what survives the training process

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Grading:
    """Handed to `grade(g)` in a part's checks.py."""

    part: PartSpec
    sandboxes: Sandboxes
    seed: int
    on_gpu: bool
    log: OutputLog
    progress_callback: Callable[[str], None] = field(default=lambda phase: None, repr=False)
    rng: np.random.Generator = field(init=False, repr=False)
    train_seconds: float = field(init=False)
    outcomes: dict[str, CheckOutcome] = field(default_factory=dict, init=False)
    artifacts: list[Artifact] = field(default_factory=list, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)
    slowest: dict[str, float] = field(default_factory=dict, init=False)  # the longest single call per entry point
    grader_errors: list[str] = field(default_factory=list, init=False)
    trainings: dict[str, Trained] = field(default_factory=dict, init=False)  # by stored object name
    flags: list[str] = field(default_factory=list, init=False)  # for the examiner: what no check can decide

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.train_seconds = self.part.resources.train_seconds(self.on_gpu)

    # ---- talking to the sandbox ----
    def progress(self, phase: str) -> None:
        self.progress_callback(phase)

    def torch_seed(self) -> int:
        """A fresh seed for the student's code, drawn from the secret run seed."""
        return int(self.rng.integers(0, 2**31 - 1))

    def call(self, entry: str, *args: Any, audience: str = "staff", timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Call an entry point declared in the manifest and return its validated result: a float64
        tensor (floating results), a dict name -> value for tuple results, or a JSON value.

        A method of a trained object runs in a scoring sandbox rebuilt from the object's frozen state; a
        module-level function with the student's audience runs in whichever sandbox is alive (its inputs
        are the student's to see), any other call in a scoring sandbox."""
        return self.timed_call(entry, *args, audience=audience, timeout=timeout, **kwargs)[0]

    def timed_call(self, entry: str, *args: Any, audience: str = "staff", timeout: float | None = None,
                   **kwargs: Any) -> tuple[Any, float]:
        """`call`, and the seconds the grader measured for it (sending, computing, returning)."""
        spec = self.part.entry_points[entry]
        if spec.stores_object:
            raise ValueError(f"{entry} is a training entry point: call it with g.train")
        owner = entry.rpartition(".")[0]
        if owner:
            self._require_trained(owner)
            session = self.sandboxes.scoring()
            self._require_restored(owner)
        else:
            session = self.sandboxes.current() if audience in ("student", "probe") else self.sandboxes.scoring()
        return self._call_on(session, spec, args, kwargs, audience=audience, timeout=timeout)

    def _call_on(self, session, spec: EntryPoint, args: tuple, kwargs: dict, *, audience: str,
                 timeout: float | None) -> tuple[Any, float]:
        args = tuple(_to_wire(a) for a in args)
        kwargs = {k: _to_wire(v) for k, v in kwargs.items()}
        limit = timeout or spec.seconds or self.part.resources.call_seconds
        result, seconds = session.call(spec.call, *args, timeout=limit, audience=audience,
                                       stores_object=spec.stores_object is not None, **kwargs)
        self.timings[spec.call] = self.timings.get(spec.call, 0.0) + seconds
        self.slowest[spec.call] = max(self.slowest.get(spec.call, 0.0), seconds)
        if spec.stores_object:
            return result, seconds  # a SavedState, read by _freeze
        return validate_result(spec, result, bind_args(spec, args)), seconds

    def _require_trained(self, owner: str) -> None:
        training = self.trainings.get(owner)
        if training is not None and training.error is not None:
            error = training.error
            if isinstance(error, CallFailed) and error.exception_type == "NotImplementedError":
                raise NotTrained(f"Not attempted: {training.entry}() is not implemented yet.", not_attempted=True)
            if isinstance(error, StateInvalid):
                raise NotTrained(f"Not checked: {error.student_message}", error.detail)
            raise NotTrained(f"Not checked: {training.entry}() did not return a model (see its training check).")

    def _require_restored(self, owner: str) -> None:
        """The object rebuilt in this scoring sandbox behaves as the trained one did (once per run)."""
        failed = self.sandboxes.restore_errors.get(owner)
        if failed is not None:
            raise NotTrained(f"Not checked: {failed.student_message}", failed.detail)
        training = self.trainings.get(owner)
        if training is None or training.probe is None or training.probed:
            return
        entry, args, kwargs, trained_answer = training.probe
        rebuilt_answer, _ = self._call_on(self.sandboxes.scoring(), self.part.entry_points[entry], args, kwargs,
                                          audience="staff", timeout=None)
        training.probed = True
        gap = answer_gap(trained_answer, rebuilt_answer)
        if gap <= RESTORE_TOLERANCE:
            return
        if training.unsteady > RESTORE_TOLERANCE:  # it answered one input two ways before it was ever rebuilt
            message = (
                f"Your {owner} gives different answers to the same input each time it is asked (twice the same "
                f"input to {entry}, right after {training.entry} returned, differed by "
                f"{format_number(training.unsteady)}), so the grader cannot score the model it rebuilt. Dropout "
                "or batch normalisation is probably still in training mode: put the model in eval mode "
                f"(model.eval()) before {training.entry} returns (the grader keeps that mode), and draw random "
                "numbers only from a generator seeded by the call's own seed argument.")
        else:
            message = (
                f"Your {owner} gives other answers after the grader rebuilt it from its saved state "
                f"({training.entry}'s model and the rebuilt one differ by {format_number(gap)} on the same "
                f"input to {entry}). The grader keeps only {owner}.config and {owner}.state_dict(): register "
                "every tensor your model needs (standardisation constants too) as a parameter or buffer, put "
                "every setting into config, and set train/eval mode before fit returns.")
        training.error = StateInvalid(message)
        self._require_trained(owner)

    def use(self, training: Trained) -> None:
        """Score this training's object from now on (a part that trains the same entry point several times,
        all in one training sandbox, scores each in turn): the next scoring call starts a fresh sandbox that
        rebuilds this state."""
        if training.stores is None:
            raise ValueError(f"{training.entry} stores no object")
        self.trainings[training.stores] = training
        if training.frozen is not None and self.sandboxes.frozen.get(training.stores) is not training.frozen:
            self.sandboxes.end_round()
            self.sandboxes.keep(training.frozen)

    def round(self) -> contextlib.AbstractContextManager[Round]:
        """A scoring round: one fresh sandbox rebuilt from the frozen state, which ends with the block.
        Nothing one round computed or wrote reaches another; put an output that must come back as an
        input (encode, then decode) into a later round.

        `r.call(...)` inside the block queues a query and returns a `Pending`; at the end of the block the
        queued queries go out in an order shuffled with the secret seed (mixed across checks, so that no
        position marks a query's purpose), and each Pending holds its validated result or its error
        (reading `.value` raises it, inside the section that needs it). `g.call` inside the block runs at
        once in the same sandbox."""
        return _round(self)

    def train(self, entry: str, *data: Any, check: str | None, budget: float | None = None,
              audience: str = "student", hint: str = TRAINING_HINT, probe: Probe | None = None) -> Trained:
        """Call a training entry point (`fit`-like: data, then seed= and max_seconds=) in a training sandbox
        with a fresh seed drawn from the secret one, and score the time it took in `check` against
        `training_limit`, once the trained object's state is saved (a call that returns in no time but
        leaves no model to score earns no budget check). The call may run to 1.5 x the budget + 10 s before
        it is stopped, so that an overrun is reported as a slow fit rather than a timeout. The trained object's state is then frozen:
        only its config and tensors reach the scoring sandboxes. `probe` (entry, args, kwargs) is asked of
        the trained object now and of the rebuilt one at the first scoring call: a model that does not
        restore is told so; a probe may also be a function that gets `ask(entry, *args, **kwargs)` (a call on
        the trained object) and returns that triple. Never raises for the student's failures: the returned handle keeps the error,
        and calls on the object then fail with "not checked". With `check=None` (several trainings scored
        together) the caller records the budget check itself."""
        budget = self.train_seconds if budget is None else float(budget)
        spec = self.part.entry_points[entry]
        training = Trained(entry, spec.stores_object)
        if spec.stores_object:
            self.trainings[spec.stores_object] = training
        try:
            session = self.sandboxes.training()
            saved, training.seconds = self._call_on(session, spec, data, {"seed": self.torch_seed(),
                                                                          "max_seconds": budget},
                                                    audience=audience, timeout=budget * 1.5 + 10)
        except SandboxError as exc:
            training.error = exc
            if check is not None:
                self._record_not_checked(check, exc)
            return training
        self._freeze(session, spec, training, saved, probe)
        if training.ok and training.seconds < self.part.resources.quick_fit_fraction * budget:
            training.quick = True
            self.flag(f"{spec.call}() returned after {training.seconds:.2f} s of its {budget:g} s budget, far sooner "
                      "than any training of this part: was a model trained, or its answers written down from the data?")
        if check is None:
            return training
        if training.error is not None:  # a fast call that left no model to score is no training
            self._record_not_checked(check, training.error)
        else:
            self.metric(check, training.seconds, threshold=self.training_limit(budget), hint=hint)
        return training

    def _freeze(self, session, spec: EntryPoint, training: Trained, saved: SavedState, probe: Probe | None) -> None:
        def ask(entry: str, *args: Any, **kwargs: Any) -> Any:
            # Public inputs, but the answer is the grader's business: what the code prints while answering
            # goes to staff, and the training sandbox stays the student's for the next training.
            return self._call_on(session, self.part.entry_points[entry], args, kwargs, audience="probe",
                                 timeout=None)[0]

        try:
            raw = session.saved_state(spec.stores_object, saved)
            training.frozen = freeze(spec.stores_object, spec.build, raw)
            self.sandboxes.keep(training.frozen)
        except SandboxError as exc:
            training.error = exc if isinstance(exc, StateInvalid) else StateInvalid(
                f"the model {spec.call}() returned could not be saved for scoring: {exc.student_message}", exc.detail)
            return
        if probe is None:
            return
        try:
            entry, args, kwargs = probe(ask) if callable(probe) else probe
            training.probe = (entry, args, kwargs, ask(entry, *args, **kwargs))
            # asked again: a model that answers one input two ways (dropout left on) is told that, not that
            # its state went missing
            training.unsteady = answer_gap(training.probe[3], ask(entry, *args, **kwargs))
        except SandboxError as exc:  # a model that fails the probe fails the checks that ask it the same
            self.log.note("staff", f"restore probe of {spec.stores_object} not asked: {exc.student_message}")

    def flag(self, text: str) -> None:
        """Tell the examiner what no check can decide (and the oral may): staff-only, never a grade. Every
        part's flags come here, so that staff find them in one list on the run, under the same words."""
        self.flags.append(text)
        self.log.note("staff", f"EXAMINER FLAG: {text}")

    def training_limit(self, budget: float | None = None) -> float:
        """The time a training call may take before its budget check fails."""
        return (self.train_seconds if budget is None else float(budget)) + TRAINING_GRACE_SECONDS

    # ---- figures ----
    def figure(self, name: str, caption: str, draw: Callable[[Figure], None], *,
               size: tuple[float, float] = (6.0, 3.0), dpi: int = 80, layout: str | None = "constrained",
               audience: str = "student") -> bool:
        """Draw a PNG with trusted code (`draw(fig)` on a matplotlib Figure, from validated tensors) and show
        it with the results. Never raises: a figure that fails is reported to staff, the results stand."""
        try:
            png = render_png(draw, size=size, dpi=dpi, layout=layout)
            self._attach(name, png, caption, audience)
            return True
        except Exception:  # noqa: BLE001 - a figure is feedback, never a reason to lose a run's results
            self.log.note("staff", f"figure {name!r} was not drawn:\n{traceback.format_exc()[-3000:]}")
            return False

    def _attach(self, name: str, png: bytes, caption: str, audience: str) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            raise ValueError(f"artifact name {name!r} must be a short slug")
        if audience not in ("student", "staff"):
            raise ValueError("audience must be 'student' or 'staff'")
        if not png.startswith(PNG_MAGIC) or len(png) > MAX_IMAGE_BYTES:
            raise ValueError("a figure must be a PNG of at most 1 MB")
        if any(a.name == name for a in self.artifacts):
            raise ValueError(f"artifact {name} attached twice")
        self.artifacts.append(Artifact(name, caption[:300], audience, png))

    # ---- recording outcomes ----
    def _spec(self, name: str) -> CheckSpec:
        try:
            return self.part.checks[name]
        except KeyError:
            raise KeyError(f"check {name!r} is not declared in {self.part.slug}/part.toml") from None

    def _store(self, name: str, status: Status, feedback: str, *, value: float | None = None,
               threshold: float | None = None, note: str = "") -> bool:
        spec = self._spec(name)
        if name in self.outcomes:
            raise RuntimeError(f"check {name} recorded twice")
        self.outcomes[name] = CheckOutcome(
            name=name, title=spec.title, tier=spec.tier, visibility=spec.visibility, status=status,
            points=spec.points if status == Status.PASSED else 0.0, max_points=spec.points,
            value=None if value is None else float(value),
            threshold=spec.threshold if threshold is None else threshold, direction=spec.direction,
            unit=spec.unit, feedback=feedback, staff_note=note, order=list(self.part.checks).index(name))
        return status == Status.PASSED

    def record(self, name: str, passed: bool, feedback: str = "", *, value: float | None = None,
               note: str = "") -> bool:
        """A pass/fail property, with the words that explain it."""
        return self._store(name, Status.PASSED if passed else Status.FAILED, feedback, value=value, note=note)

    def metric(self, name: str, value: float, *, hint: str = "", detail: str = "", note: str = "",
               threshold: float | None = None) -> bool:
        """Compare a trusted measurement with the manifest's threshold (or one derived from it, such as
        a budget that differs on GPU; the threshold used is what gets stored). NaN never passes. `hint`
        is shown when it fails, `detail` always."""
        spec = self._spec(name)
        if spec.threshold is None:
            raise RuntimeError(f"check {name} has no threshold in part.toml")
        limit = spec.threshold if threshold is None else float(threshold)
        value = float(value)
        ok = math.isfinite(value) and (value <= limit if spec.direction == "max" else value >= limit)
        relation = "at most" if spec.direction == "max" else "at least"
        unit = f" {spec.unit}" if spec.unit else ""
        feedback = (f"{spec.measure[:1].upper() + spec.measure[1:]}: {format_number(value)}{unit}; "
                    f"needs to be {relation} {format_number(limit)}{unit}.")
        if not ok and hint:
            feedback += " " + hint
        if detail:
            feedback += " " + detail
        return self._store(name, Status.PASSED if ok else Status.FAILED, feedback, value=value, threshold=limit,
                           note=note)

    def requires(self, name: str, prerequisite: str, *, failed: str) -> bool:
        """Whether `prerequisite` (a check recorded earlier) passed. If not, `name` is recorded at once:
        not attempted or not checked as the prerequisite was, or failed with the words `failed` when the
        prerequisite was measured and failed (a cache that is fast but wrong earns nothing)."""
        before = self.outcomes[prerequisite]
        if before.passed:
            return True
        if before.status == Status.FAILED:
            self._store(name, Status.FAILED, failed)
        else:
            self._store(name, before.status, before.feedback, note=f"as {prerequisite}")
        return False

    def _record_not_checked(self, name: str, exc: SandboxError) -> None:
        if isinstance(exc, NotTrained):
            status, message = (Status.NOT_ATTEMPTED if exc.not_attempted else Status.NOT_CHECKED), exc.student_message
        elif isinstance(exc, CallFailed) and exc.exception_type == "NotImplementedError":
            status = Status.NOT_ATTEMPTED
            message = f"Not attempted: {exc.entry}() is not implemented yet (it raises NotImplementedError)."
        else:
            status, message = Status.NOT_CHECKED, f"Not checked: {exc.student_message}"
        self._store(name, status, message, note=exc.detail[-2000:])

    @contextlib.contextmanager
    def section(self, *names: str) -> Iterator[None]:
        """Checks that share sandbox calls. Each section reports its own status: if a call inside fails
        (exception, limit, bad result, an object whose training failed), each of these checks not yet
        recorded is not checked, with the reason; if the grader's own code raises, they are grader errors.
        Either way grading continues with the next section. Checks it names but does not record stay open
        for a later section (they fail with this one if it fails)."""
        for name in names:
            self._spec(name)
        try:
            yield
        except SandboxError as exc:
            for name in names:
                if name not in self.outcomes:
                    self._record_not_checked(name, exc)
        except InfrastructureError:
            raise  # the platform failed, not the checks: the whole run is retried, nothing is recorded
        except Exception:  # noqa: BLE001 - a bug in checks.py must not cost the other sections
            self.grader_error(names, traceback.format_exc())

    def grader_error(self, names: tuple[str, ...] | list[str], detail: str) -> None:
        """Mark checks as not completed because of the grader, with the detail for staff."""
        self.grader_errors.append(detail)
        self.log.note("staff", f"grader error in checks {list(names)}:\n{detail[-4000:]}")
        for name in names:
            if name not in self.outcomes:
                self._store(name, Status.GRADER_ERROR, GRADER_ERROR_FEEDBACK, note=detail[-2000:])

    def finish(self, reason: str = "") -> list[CheckOutcome]:
        """Every check has an outcome, in the manifest's order. `reason`: why grading stopped early."""
        for name in self.part.checks:
            if name not in self.outcomes:
                if reason:
                    self._store(name, Status.NOT_CHECKED, reason)
                else:
                    self.grader_error([name], "grade() returned without recording this check")
        return sorted(self.outcomes.values(), key=lambda o: o.order)


@dataclass
class Pending:
    """A query of a round: its validated result once the round has run, or the error it ended with."""

    entry: str
    args: tuple
    kwargs: dict
    audience: str
    timeout: float | None
    result: Any = None
    seconds: float = math.nan
    error: SandboxError | None = None
    done: bool = False

    @property
    def value(self) -> Any:
        if not self.done:
            raise RuntimeError(f"the result of {self.entry} is read before its round ran (read it after the block)")
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class Round:
    """The queries of one scoring round (see `Grading.round`)."""

    grading: Grading
    queued: list[Pending] = field(default_factory=list)

    def call(self, entry: str, *args: Any, audience: str = "staff", timeout: float | None = None,
             **kwargs: Any) -> Pending:
        pending = Pending(entry, args, kwargs, audience, timeout)
        self.queued.append(pending)
        return pending

    def run(self) -> None:
        """Send the queued queries in a shuffled order; a failure is kept by its Pending (a sandbox that dies
        is replaced by a fresh one for the remaining queries)."""
        for i in self.grading.rng.permutation(len(self.queued)):
            pending = self.queued[int(i)]
            try:
                pending.result, pending.seconds = self.grading.timed_call(
                    pending.entry, *pending.args, audience=pending.audience, timeout=pending.timeout,
                    **pending.kwargs)
            except SandboxError as exc:
                pending.error = exc
            pending.done = True


@contextlib.contextmanager
def _round(grading: Grading) -> Iterator[Round]:
    grading.sandboxes.end_round()
    batch = Round(grading)
    try:
        yield batch
        batch.run()
    finally:
        grading.sandboxes.end_round()


def answer_gap(a: Any, b: Any) -> float:
    """How far two validated answers of the same call are apart: 0 when equal, inf when not comparable."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max((answer_gap(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return math.inf
        return rel_error(b, a) if a.is_floating_point() else float((a != b).any())
    if isinstance(a, float) and isinstance(b, float):
        return rel_error(b, a)
    return 0.0 if a == b else math.inf


# ---- result validation ----

def _to_wire(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
        return value.to(torch.float32)  # students' models work in float32
    return value


def bind_args(spec: EntryPoint, args: tuple) -> dict[str, int]:
    """The sizes of the named dimensions (B, N, ...) that this call's arguments fix."""
    bound: dict[str, int] = {}
    for arg_spec, arg in zip(spec.args, args, strict=False):
        if arg_spec.shape and isinstance(arg, torch.Tensor) and arg.dim() == len(arg_spec.shape):
            for dim, size in zip(arg_spec.shape, arg.shape, strict=True):
                if not dim.isdigit():
                    bound.setdefault(dim, int(size))
    return bound


def validate_result(spec: EntryPoint, result: Any, bound: dict[str, int]) -> Any:
    """The result as the checks may use it, or ResultInvalid saying what is wrong in the student's words."""
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
                    f"{spec.call} must return a tuple of {len(names)} values ({', '.join(names)}); "
                    f"it returned {len(result)}.")
            items = result
        else:
            raise ResultInvalid(f"{spec.call} must return a tuple ({', '.join(names)}); it returned a single value.")
        return {s.name: _validate_value(spec.call, s, v, bound) for s, v in zip(spec.returns, items, strict=True)}
    return _validate_value(spec.call, spec.returns[0], result, bound)


def _validate_value(call: str, spec: ValueSpec, value: Any, bound: dict[str, int]) -> Any:
    what = f"{call} returned {spec.name}" if spec.name not in ("result", "out0") else f"{call} returned a value that"
    if spec.shape is None:
        return _validate_scalar(what, spec, value)
    if not isinstance(value, torch.Tensor):
        raise ResultInvalid(f"{what} should be a tensor, not {type(value).__name__}.")
    if spec.kind == "floating" and not value.is_floating_point():
        raise ResultInvalid(f"{what} should be a floating-point tensor, not {value.dtype}.")
    if spec.kind == "integer" and (value.is_floating_point() or value.dtype == torch.bool):
        raise ResultInvalid(f"{what} should be an integer tensor, not {value.dtype}.")
    _check_shape(what, spec.shape, value, bound)
    if value.is_floating_point():
        value = value.to(torch.float64)
        if not torch.isfinite(value).all():
            raise ResultInvalid(f"{what} contains NaN or infinite values.")
    return value


def _validate_scalar(what: str, spec: ValueSpec, value: Any) -> Any:
    if spec.kind == "number":
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ResultInvalid(f"{what} should be a number.")
        return float(value)
    if spec.kind == "int_scalar" and (not isinstance(value, int) or isinstance(value, bool)):
        raise ResultInvalid(f"{what} should be an integer.")
    if spec.kind == "str" and not isinstance(value, str):
        raise ResultInvalid(f"{what} should be a string.")
    return value


def _check_shape(what: str, shape: tuple[str, ...], value: torch.Tensor, bound: dict[str, int]) -> None:
    if value.dim() != len(shape):
        raise ResultInvalid(f"{what} has shape {list(value.shape)}; expected {len(shape)} dimensions "
                            f"[{', '.join(shape)}].")
    for dim, size in zip(shape, value.shape, strict=True):
        expected = int(dim) if dim.isdigit() else bound.get(dim)
        if expected is None:
            bound[dim] = int(size)
        elif expected != size:
            raise ResultInvalid(f"{what} has shape {list(value.shape)}; expected [{', '.join(shape)}] "
                                f"with {dim} = {expected}.")
