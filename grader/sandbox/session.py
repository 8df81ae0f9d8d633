"""The grader's side of the protocol, independent of how the sandbox is isolated.

A backend supplies a `Transport` (write to the harness's stdin, kill, report how the process ended) and
feeds the session what the sandbox writes: stdout carries protocol frames, stderr carries everything the
student's code printed. Output is attributed to the audience of the call in progress: once a hidden
query has started, everything printed goes to the staff log only, so hidden inputs can't be echoed back.
"""

from __future__ import annotations

import builtins
import re
import signal
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from grader.harness.wire import FrameDecoder, FrameTooLarge, WireError, encode_frame, pack_value, unpack_value


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpus: float = 2.0
    pids: int = 64
    tmpfs_mb: int = 64
    tmpfs_inodes: int = 16384  # a million empty files would otherwise cost ~1 GB of kernel memory
    nofile: int = 256
    fsize_mb: int = 64
    log_keep_bytes: int = 256 * 1024  # kept per audience; the rest is counted, not stored
    output_kill_bytes: int = 16 * 2**20  # printing more than this stops the run
    result_max_bytes: int = 256 * 2**20


class SandboxError(Exception):
    """Something the submission did. `student_message` is safe to show; `detail` is for staff."""

    kind = "error"

    def __init__(self, student_message: str, detail: str = ""):
        super().__init__(student_message)
        self.student_message = student_message
        self.detail = detail


class CallFailed(SandboxError):
    """The student's code raised an exception; the sandbox is still alive. `exception_type` is a real
    built-in exception's name (or "" when the student's own class, or a forged report, raised it)."""

    kind = "exception"

    def __init__(self, student_message: str, detail: str = "", *, entry: str = "", exception_type: str = ""):
        super().__init__(student_message, detail)
        self.entry = entry
        self.exception_type = exception_type


class ImportFailed(CallFailed):
    """The student's module could not be imported: nothing hidden exists yet, so the traceback is theirs."""


class LimitExceeded(SandboxError):
    """Time, memory or output limit: the sandbox has been stopped."""

    kind = "limit"


class SandboxCrashed(SandboxError):
    """The process ended on its own (os._exit, a crash, a signal)."""

    kind = "crash"


class ProtocolViolation(SandboxError):
    """Something other than the harness wrote to the protocol stream, or a result broke the format."""

    kind = "protocol"


class Violation(StrEnum):
    """Why the protocol stream can no longer be trusted."""

    FLOOD = "flood"  # far more bytes than any answer could need
    UNASKED = "unasked"  # an answer to no outstanding request: forged frames
    MALFORMED = "malformed"  # bytes that are not frames
    TOO_LARGE = "too_large"  # a frame over the result size limit


class InfrastructureError(Exception):
    """The platform failed (Docker down, image missing): not the student's fault, retry the run."""


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def kill(self) -> None: ...
    def drain(self) -> None:
        """Return once everything the sandbox already printed has reached the session (output printed
        before an answer belongs to the call it answers)."""
        ...
    def exit_status(self) -> tuple[int | None, bool | None]:
        """(exit code or None if unknown, whether the memory limit killed it: None if the backend
        cannot tell). Raises InfrastructureError when the engine that ran the sandbox is gone."""
        ...


# Exception names a student may see even for hidden queries: real built-in exception classes only, so a
# forged error report cannot smuggle text (hidden inputs) through the "type" field.
BUILTIN_EXCEPTIONS = frozenset(
    name for name, obj in vars(builtins).items() if isinstance(obj, type) and issubclass(obj, BaseException)
) | {"ResultError"}  # the harness's name for a result that cannot be sent
WHERE_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_./-]{0,100}\.py):([0-9]{1,6})")


def source_lines(submission_dir: Path | None) -> dict[str, int]:
    """Line counts of the submission's Python files: a reported location must be one of these lines."""
    if submission_dir is None:
        return {}
    found: dict[str, int] = {}
    for path in sorted(submission_dir.rglob("*.py"))[:500]:
        if path.is_file() and not path.is_symlink():
            try:
                found[path.relative_to(submission_dir).as_posix()] = path.read_bytes().count(b"\n") + 1
            except OSError:
                continue
    return found


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code > 128:
        try:
            return f"killed by signal {code - 128} ({signal.Signals(code - 128).name})"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


class OutputLog:
    """Captured output per audience, capped, thread-safe."""

    def __init__(self, keep: int):
        self.keep = keep
        self.parts: dict[str, bytearray] = {"student": bytearray(), "staff": bytearray()}
        self.dropped: dict[str, int] = {"student": 0, "staff": 0}
        self.total = 0
        self.lock = threading.Lock()

    def add(self, audience: str, data: bytes) -> int:
        with self.lock:
            self.total += len(data)
            buf = self.parts[audience]
            room = max(0, self.keep - len(buf))
            buf += data[:room]
            self.dropped[audience] += len(data) - min(room, len(data))
            return self.total

    def note(self, audience: str, text: str) -> None:
        with self.lock:
            self.parts[audience] += f"\n[grader] {text}\n".encode()

    def text(self, audience: str) -> str:
        with self.lock:
            body = bytes(self.parts[audience]).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
            if self.dropped[audience]:
                body += f"\n[grader] … {self.dropped[audience]} more bytes of output were not kept.\n"
            return body


@dataclass(frozen=True)
class SavedState:
    """What a training call's answer carried of the object it returned: the harness's header and bytes."""

    header: dict
    payload: bytes


class Session:
    """Drives one harness. Not reusable: one session per run, closed in `finally`."""

    def __init__(self, transport: Transport, limits: Limits, *, run_deadline: float,
                 submission_dir: Path | None = None, log: OutputLog | None = None):
        self.transport = transport
        self.limits = limits
        self.run_deadline = run_deadline
        self.log = log or OutputLog(limits.log_keep_bytes)  # shared by every sandbox of one run
        self.audience = "student"
        self.decoder = FrameDecoder(max_payload=limits.result_max_bytes)
        self.frames: list[tuple[dict, bytes]] = []
        self.protocol_bytes = 0
        self.cond = threading.Condition()
        self.eof = False
        self.violation: Violation | None = None
        self.violation_detail = ""
        self.output_flood = False
        self.next_id = 1
        self.dead_reason: SandboxError | None = None
        # Ids of requests sent and not yet answered ("hello" for the hello). An answer to anything else
        # (a forged frame for a call not made, a second answer to one call) corrupts the channel.
        self.outstanding: set[Any] = set()
        self.source_lines = source_lines(submission_dir)

    # ---- fed by the backend's reader thread(s) ----
    def on_stdout(self, data: bytes) -> None:
        with self.cond:
            if self.violation:
                return
            self.protocol_bytes += len(data)
            if self.protocol_bytes > 4 * self.limits.result_max_bytes:
                # Only the harness should write here; a flood of well-formed frames is still a flood.
                self._violate(Violation.FLOOD, f"more than {4 * self.limits.result_max_bytes} bytes on the "
                              "protocol stream")
                self.cond.notify_all()
                return
            try:
                for header, payload in self.decoder.feed(data):
                    key = "hello" if header.get("op") == "hello" else header.get("id")
                    if not isinstance(key, (str, int)) or isinstance(key, bool) or key not in self.outstanding:
                        self._violate(Violation.UNASKED, f"an answer nobody asked for: {repr(header)[:300]}")
                        break
                    self.outstanding.discard(key)
                    self.frames.append((header, payload))
            except FrameTooLarge as exc:
                self._violate(Violation.TOO_LARGE, str(exc))
            except WireError as exc:
                self._violate(Violation.MALFORMED, str(exc))
            self.cond.notify_all()

    def _violate(self, violation: Violation, detail: str) -> None:
        self.violation, self.violation_detail = violation, detail

    def on_stderr(self, data: bytes) -> None:
        total = self.log.add(self.audience, data)
        if total > self.limits.output_kill_bytes and not self.output_flood:
            self.output_flood = True
            self.transport.kill()
            with self.cond:
                self.cond.notify_all()

    def on_eof(self) -> None:
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    # ---- used by the grader ----
    def _wait_for(self, want_id: Any, what: str, timeout: float) -> tuple[dict, bytes]:
        if self.dead_reason:
            raise self.dead_reason
        deadline = min(time.monotonic() + timeout, self.run_deadline)
        with self.cond:
            while True:
                # A corrupted channel is checked first: once something forged frames, no frame is
                # trusted, not even one that arrived before the forgery was noticed.
                if self.violation:
                    self.transport.kill()
                    if self.violation == Violation.TOO_LARGE:
                        raise self._dead(LimitExceeded(
                            f"The result of {what} is larger than the limit of "
                            f"{self.limits.result_max_bytes // 2**20} MB; the run was stopped. Return smaller "
                            "tensors.", self.violation_detail))
                    raise self._dead(ProtocolViolation(
                        f"The grader's channel was corrupted during {what}. Did your code write to file "
                        "descriptors it did not open?", self.violation_detail))
                for i, (header, payload) in enumerate(self.frames):
                    key = "hello" if header.get("op") == "hello" else header.get("id")
                    if key == want_id:
                        del self.frames[i]
                        return header, payload
                if self.output_flood:
                    raise self._dead(LimitExceeded(
                        f"Your code printed more than {self.limits.output_kill_bytes // 2**20} MB during {what}; "
                        "the run was stopped. Remove debugging prints from loops."))
                if self.eof:
                    raise self._dead(self._ended_during(what))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(min(remaining, 0.5))
        self.transport.kill()
        if deadline >= self.run_deadline - 1e-3 and time.monotonic() >= self.run_deadline:
            raise self._dead(LimitExceeded(f"The whole run exceeded its time limit during {what}; it was stopped."))
        raise self._dead(LimitExceeded(f"{what} did not finish within its limit of {timeout:.0f} s; it was stopped."))

    def _dead(self, error: SandboxError) -> SandboxError:
        self.dead_reason = error
        self.log.note("staff", f"sandbox stopped: {error.student_message} {error.detail}")
        return error

    def _ended_during(self, what: str) -> SandboxError:
        code, oom = self.transport.exit_status()  # InfrastructureError if the engine itself is gone
        if oom:
            return LimitExceeded(
                f"Your code used more than the memory limit of {self.limits.memory_mb} MB during {what}; "
                "the sandbox was stopped.", f"exit code {code}, oom={oom}")
        if oom is None and code == 137:
            return LimitExceeded(
                f"The process running your code was killed during {what}, most likely because it used more "
                f"than the memory limit of {self.limits.memory_mb} MB.", f"exit code {code}, oom unknown")
        return SandboxCrashed(
            f"The Python process running your code ended during {what} ({describe_exit(code)}). "
            "Don't call exit() or os._exit() in your module, or kill its own process.", f"exit code {code}")

    def _drain(self) -> None:
        """Output printed before an answer belongs to the call it answers (see ProcessTransport.drain)."""
        self.transport.drain()

    def _send(self, data: bytes, what: str, deadline: float) -> None:
        """Write a request, but never wait on the sandbox longer than the call may take: code that stops
        reading its input must not hang the worker on a full pipe."""
        writer = threading.Thread(target=self.transport.write, args=(data,), daemon=True, name="sandbox-write")
        writer.start()
        writer.join(max(0.0, min(deadline, self.run_deadline) - time.monotonic()))
        if writer.is_alive():
            self.transport.kill()
            writer.join(10)
            raise self._dead(LimitExceeded(
                f"{what} did not read its input within its time limit; it was stopped."))

    def hello(self, *, module: str, entries: dict[str, dict], threads: int, seed: int, timeout: float,
              restore: tuple[Any, bytes] | None = None) -> dict:
        """Import the student's module and, in a scoring process, rebuild the frozen objects (`restore`:
        packed states and their payload). The answer's `restore_errors` names objects that did not rebuild."""
        if self.dead_reason:
            raise self.dead_reason
        with self.cond:
            self.outstanding.add("hello")
        packed, payload = restore or (None, b"")
        self._send(encode_frame({"op": "hello", "module": module, "entries": entries, "threads": threads,
                                 "seed": seed, "restore": packed}, payload),
                   f"importing {module}", time.monotonic() + timeout)
        header, _ = self._wait_for("hello", f"importing {module}", timeout)
        self._drain()
        if header.get("op") != "hello":
            raise self._dead(ProtocolViolation("The harness did not answer as expected.", repr(header)[:500]))
        if not header.get("ok"):
            err = header.get("error") or {}
            # Import happens before any hidden input exists, so the whole traceback is safe to show.
            raise ImportFailed(
                f"Your module {module} could not be imported: {err.get('type')}: {err.get('message')}",
                str(err.get("traceback", "")), entry=module)
        return header

    def saved_state(self, name: str, saved: SavedState) -> Any:
        """The declared state of the stored object `name` as its training call's answer carried it
        (unvalidated: see grader.lifetimes). The harness copies it the moment the call returns, inside the
        same answer, so nothing the student's code starts can change it afterwards."""
        what = f"saving the state of {name}"
        if not saved.header.get("ok"):
            raise self._call_failed(what, saved.header.get("error") or {})
        try:
            return unpack_value(saved.header.get("result"), saved.payload)
        except WireError as exc:
            raise ProtocolViolation(f"The state of {name} could not be read: it is not in the grader's format.",
                                    str(exc)) from None

    def call(self, entry: str, *args: Any, timeout: float, audience: str = "staff",
             stores_object: bool = False, **kwargs: Any) -> tuple[Any, float]:
        """Call an entry point; returns (result, seconds measured by the grader).

        `audience` says who may see what the code prints: "student" (nothing hidden has been sent),
        "staff" (hidden inputs: from now on, for good, nothing printed reaches the student), or "probe"
        (this call's output is staff's, but its inputs are public, so the sandbox stays the student's)."""
        if audience == "probe":
            before = self.audience
            try:
                return self.call(entry, *args, timeout=timeout, audience="staff", stores_object=stores_object,
                                 **kwargs)
            finally:
                self._drain()
                self.audience = before
        self.audience = "staff" if self.audience == "staff" else audience  # never back to student
        call_id = self.next_id
        self.next_id += 1
        packed, payload = pack_value({"args": list(args), "kwargs": kwargs})
        if self.dead_reason:
            raise self.dead_reason
        started = time.monotonic()
        with self.cond:
            self.outstanding.add(call_id)
        self._send(encode_frame({"op": "call", "id": call_id, "entry": entry, "value": packed}, payload),
                   entry, started + timeout)
        header, payload = self._wait_for(call_id, entry, timeout)
        seconds = time.monotonic() - started
        if self.audience == "student":
            self._drain()
        if not header.get("ok"):
            raise self._call_failed(entry, header.get("error") or {})
        if stores_object:  # the answer carries the object's state, read by saved_state
            state = header.get("state")
            return SavedState(state if isinstance(state, dict) else {}, payload), seconds
        try:
            return unpack_value(header.get("result"), payload), seconds
        except WireError as exc:
            # Not the decoder's words: they could echo bytes the sandbox chose.
            raise ProtocolViolation(f"The result of {entry} could not be read: it is not in the grader's format.",
                                    str(exc)) from None

    def _call_failed(self, entry: str, err: dict) -> CallFailed:
        """What a student may learn from an exception in their code. During hidden queries the message
        could carry hidden inputs, so they see only a built-in exception's type and their own line."""
        detail = str(err.get("traceback", ""))[-8000:]
        # The harness's report is the student's to forge: only a real built-in exception name and a real
        # line of a submitted file are repeated back, never free text, once hidden inputs may be in play.
        kind = str(err.get("type", ""))
        kind = kind if err.get("builtin") and kind in BUILTIN_EXCEPTIONS else "an exception"
        where = self._checked_where(str(err.get("where", "")))
        if self.audience == "student":
            text = str(err.get("message", ""))[:500]
            message = f"{entry} raised {kind}: {text}"
            if where:
                message += f" (at {where})"
            if "No space left on device" in text or "File too large" in text:
                message += (f". The sandbox's /tmp holds {self.limits.tmpfs_mb} MB and a file at most "
                            f"{self.limits.fsize_mb} MB: keep data in memory or write less.")
            self.log.note("student", detail)
        else:
            message = f"{entry} raised {kind}" + (f" at {where}" if where else "") + \
                " while the grader tested it on hidden inputs. Run the public tests to reproduce it."
            self.log.note("staff", detail)
        return CallFailed(message, detail, entry=entry,
                          exception_type=kind if kind in BUILTIN_EXCEPTIONS else "")

    def _checked_where(self, where: str) -> str:
        match = WHERE_RE.fullmatch(where)
        if not match:
            return ""
        path, line = match.group(1), int(match.group(2))
        if self.source_lines and not (path in self.source_lines and 1 <= line <= self.source_lines[path]):
            return ""
        return where

    def set_background(self, background: bool) -> None:
        """A spare waiting for its round runs at the lowest CPU weight, so that it boots on idle CPU only
        and never slows the sandbox at work; taken for a round, it gets its full share. A backend without
        CPU weights ignores it (and keeps a single spare ahead: see `Sandboxes.spares_ahead`)."""
        weigh = getattr(self.transport, "set_background", None)
        if weigh is not None:
            weigh(background)

    def close(self) -> None:
        try:
            self.transport.write(encode_frame({"op": "bye"}))
        except OSError:
            pass
