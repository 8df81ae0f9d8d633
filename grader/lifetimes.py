"""Training and scoring are separate lifetimes (docs/architecture.md, the trust boundary).

A run's sandboxes come one after another. A *training* sandbox answers the training calls (`fit`); the
answer of each one carries the trained object's declared state — its `config` (plain data), its
`state_dict()` tensors and its train/eval modes, copied by the harness the moment the call returns, so
there is no moment between the return and the saving in which a thread could go on training — and it is
validated here. When scoring starts, the training
sandbox is removed with everything it started (threads, children, files). Every *scoring* sandbox is a
fresh process that imports the submitted source, rebuilds each object as `build(config)` plus its tensors,
and answers queries; a round (`Grading.round`) ends it, so nothing one round computed or wrote reaches
another. So code that keeps training after `fit` returns, memorises the grader's queries, or trains inside
a query, gains nothing that outlives its process.

The state is data only, and capped (`MAX_STATE_BYTES`): a limit that cannot stretch.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.harness.wire import pack_value
from grader.parts import PartSpec
from grader.sandbox.session import ImportFailed, LimitExceeded, ProtocolViolation, SandboxError, Session

MAX_STATE_BYTES = 256 * 2**20  # every tensor of every trained object of a run together
MAX_CONFIG_BYTES = 64 * 2**10
MAX_TENSORS = 10_000


class StateInvalid(SandboxError):
    """A trained object whose declared state cannot be kept (too large, not plain data)."""

    kind = "state"


@dataclass(frozen=True)
class FrozenObject:
    """A trained object as it survives its training process: what `build(config)` needs, and the tensors."""

    name: str
    build: str
    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    training: tuple[str, ...]
    threads: int = 1  # torch's thread count when training returned; scoring uses it (never above the part's)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.state.values())


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON data only: no tensors, nothing nested absurdly deep."""
    if depth > 12:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def freeze(name: str, build: str, raw: Any) -> FrozenObject:
    """Validate what a training sandbox exported for `name`; StateInvalid says why in the student's words."""
    if not isinstance(raw, dict) or set(raw) != {"config", "state", "training", "threads"}:
        raise ProtocolViolation(f"The state of {name} could not be read.", repr(raw)[:300])
    config, state, training = raw["config"], raw["state"], raw["training"]
    if not isinstance(config, dict) or not _plain(config):
        raise StateInvalid(f"{name}.config must be a dict of plain values (numbers, strings, lists, dicts): the "
                           "grader rebuilds your model from it. Keep tensors in the state_dict instead.")
    if len(json.dumps(config)) > MAX_CONFIG_BYTES:
        raise StateInvalid(f"{name}.config is larger than {MAX_CONFIG_BYTES // 1024} KB: keep only the settings "
                           "that build_model needs (sizes, flags), and tensors in the state_dict.")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise StateInvalid(f"{name}.state_dict() must map names to tensors.")
    if len(state) > MAX_TENSORS:
        raise StateInvalid(f"{name}.state_dict() has {len(state)} tensors; at most {MAX_TENSORS} are kept.")
    if not isinstance(training, list) or not all(isinstance(t, str) for t in training):
        raise ProtocolViolation(f"The state of {name} could not be read.", repr(training)[:300])
    threads = raw["threads"]
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ProtocolViolation(f"The state of {name} could not be read.", repr(threads)[:100])
    frozen = FrozenObject(name, build, config, state, tuple(training), threads)
    if frozen.nbytes > MAX_STATE_BYTES:
        raise StateInvalid(f"The state of {name} is {frozen.nbytes / 2**20:.0f} MB; at most "
                           f"{MAX_STATE_BYTES // 2**20} MB are kept. A model for this part needs far less.")
    return frozen


@dataclass
class Spare:
    """A sandbox being started in a background thread; `wait` gives it (None if it failed to start)."""

    thread: threading.Thread
    started: list[tuple[contextlib.ExitStack, Session]]

    @classmethod
    def begin(cls, launch: Callable[[], tuple[contextlib.ExitStack, Session]], *, background: bool) -> Spare:
        started: list[tuple[contextlib.ExitStack, Session]] = []

        def start() -> None:
            with contextlib.suppress(Exception):  # a spare that fails to start is simply not there
                stack, session = launch()
                started.append((stack, session))
                if background:
                    session.set_background(True)

        thread = threading.Thread(target=start, daemon=True, name="sandbox-prewarm")
        thread.start()
        return cls(thread, started)

    def wait(self) -> tuple[contextlib.ExitStack, Session] | None:
        self.thread.join()
        return self.started[0] if self.started else None


@dataclass
class Sandboxes:
    """The sandboxes of one run, started on demand by `launch` (a fresh, isolated process each time)."""

    part: PartSpec
    launch: Callable[[], contextlib.AbstractContextManager[Session]]
    hello: Callable[[Session, tuple[Any, bytes] | None, int | None], dict]  # import (and restore), with threads
    run_deadline: float = float("inf")  # time.monotonic() by which the whole run must end
    frozen: dict[str, FrozenObject] = field(default_factory=dict)
    restore_errors: dict[str, SandboxError] = field(default_factory=dict)  # of the latest scoring sandbox
    started: dict[str, int] = field(default_factory=lambda: {"train": 0, "score": 0})
    # What the run waited for that is not its own work: sandbox starts and teardowns (its fixed cost)
    seconds: dict[str, float] = field(default_factory=lambda: {"start": 0.0, "restore": 0.0, "teardown": 0.0})
    import_error: ImportFailed | None = None
    stops: list[str] = field(default_factory=list)  # why sandboxes were stopped, in the student's words
    prewarm: bool = True  # start the next sandboxes while this one works (never reused: fresh for its round)
    # How many spares are kept starting ahead. More than one only where a spare can wait at the lowest CPU
    # weight (`Session.set_background`), so that spares boot on idle CPU and never take the student's.
    spares_ahead: int = 1
    # Remove a closed sandbox in the background once it is killed (its processes are gone at once; only
    # the engine's clean-up is left): only where killing ends every process the sandbox started.
    background_teardown: bool = False
    _current: Session | None = None
    _kind: str = ""
    _stack: contextlib.ExitStack | None = None
    _spares: list[Spare] = field(default_factory=list)  # oldest first; each serves one sandbox
    _teardowns: list[threading.Thread] = field(default_factory=list)

    def _launch_now(self) -> tuple[contextlib.ExitStack, Session]:
        stack = contextlib.ExitStack()
        try:
            return stack, stack.enter_context(self.launch())
        except BaseException:
            stack.close()
            raise

    def _prewarm(self) -> None:
        """Start sandboxes in the background (each harness imports torch and waits for its hello) until
        `spares_ahead` are on their way, so that the fixed cost of the next rounds overlaps with this one.
        A spare is never shared: it serves one sandbox and is removed with it, or at the end of the run if
        no round needs it."""
        while self.prewarm and len(self._spares) < self.spares_ahead:
            self._spares.append(Spare.begin(self._launch_now, background=self.spares_ahead > 1))

    def _take(self) -> tuple[contextlib.ExitStack, Session]:
        while self._spares:
            spare = self._spares.pop(0).wait()
            if spare is not None and spare[1].dead_reason is None and not spare[1].eof:
                spare[1].set_background(False)
                return spare
            if spare is not None:
                self._dispose(*spare)
        return self._launch_now()

    def _start(self, kind: str) -> Session:
        self.close()
        if self.import_error is not None:
            raise self.import_error  # the source does not change between sandboxes: don't try again
        if time.monotonic() >= self.run_deadline:
            raise LimitExceeded("The whole run exceeded its time limit; the remaining checks were not run.")
        started = time.monotonic()
        stack, session = self._take()
        self._current, self._kind, self._stack = session, kind, stack
        self.started[kind] += 1
        restore = self._packed_states() if kind == "score" else None
        threads = min((f.threads for f in self.frozen.values()), default=None) if kind == "score" else None
        try:
            answer = self.hello(session, restore, threads)
        except ImportFailed as exc:
            self.import_error = exc
            self.close()
            raise
        self.seconds["start"] += time.monotonic() - started
        self.seconds["restore"] += float(answer.get("restore_seconds", 0.0))
        if kind == "score":
            self.restore_errors = {name: StateInvalid(_restore_message(name, self.frozen[name].build, err),
                                                      str(err.get("traceback", "")))
                                   for name, err in (answer.get("restore_errors") or {}).items()}
        else:
            self._prewarm()  # scoring follows training
        return session

    def _packed_states(self) -> tuple[Any, bytes] | None:
        if not self.frozen:
            return None
        return pack_value({name: {"build": f.build, "config": f.config, "state": f.state,
                                  "training": list(f.training)} for name, f in self.frozen.items()})

    def _alive(self, kind: str) -> bool:
        return self._current is not None and self._kind == kind and self._current.dead_reason is None

    def training(self) -> Session:
        """The training sandbox: the current one, or a fresh one (never a scoring sandbox)."""
        return self._current if self._alive("train") else self._start("train")

    def scoring(self) -> Session:
        """The current scoring sandbox, or a fresh one that rebuilds every object trained so far."""
        return self._current if self._alive("score") else self._start("score")

    def current(self) -> Session:
        """Whichever sandbox is alive (for module-level calls whose inputs the student may see)."""
        if self._current is not None and self._current.dead_reason is None:
            return self._current
        return self.scoring()

    def end_round(self) -> None:
        """The current scoring sandbox (if any) ends; the next scoring call starts a fresh one."""
        if self._kind == "score":
            self.close()
        self._prewarm()

    def keep(self, frozen: FrozenObject) -> None:
        self.frozen[frozen.name] = frozen

    def close(self) -> None:
        """End the current sandbox: its container (or process tree) is removed, with all it started."""
        session, stack = self._current, self._stack
        self._stack, self._current, self._kind = None, None, ""
        if session is not None and session.dead_reason is not None:
            self.stops.append(session.dead_reason.student_message)
        if stack is not None and session is not None:
            started = time.monotonic()
            self._dispose(stack, session)
            self.seconds["teardown"] += time.monotonic() - started

    def _dispose(self, stack: contextlib.ExitStack, session: Session) -> None:
        """Remove a sandbox: at once, or killed now and removed in the background (`background_teardown`)."""
        if not self.background_teardown:
            stack.close()
            return
        session.transport.kill()  # every process of the sandbox ends now; the engine's clean-up follows
        teardown = threading.Thread(target=stack.close, daemon=True, name="sandbox-teardown")
        teardown.start()
        self._teardowns.append(teardown)

    def shutdown(self) -> None:
        """The end of the run: the current sandbox and any spare are removed — together, in the background
        where the backend allows — and waited for, so that a run leaves nothing behind."""
        self.close()
        started = time.monotonic()
        spares, self._spares = self._spares, []
        for spare in spares:
            if (made := spare.wait()) is not None:
                self._dispose(*made)
        teardowns, self._teardowns = self._teardowns, []
        for teardown in teardowns:
            teardown.join()
        self.seconds["teardown"] += time.monotonic() - started


def _restore_message(name: str, build: str, err: dict) -> str:
    where = f" (at {err['where']})" if err.get("where") else ""
    return (f"Your {name} could not be rebuilt from its saved state: {build}(config) and load_state_dict raised "
            f"{err.get('type', 'an exception')}: {str(err.get('message', ''))[:300]}{where}. The grader keeps only "
            f"{name}.config and {name}.state_dict(): register every tensor your model needs as a parameter or "
            "buffer, and put every setting build_model needs into config.")
