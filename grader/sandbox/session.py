"""The grader's side of the protocol, independent of how the sandbox is isolated.

A backend supplies a `Transport` (write to the harness's stdin, kill, report how the process ended) and
feeds the session what the sandbox writes: stdout carries protocol frames, stderr carries everything the
student's code printed. Output is attributed to the audience of the call in progress: once a hidden
query has started, everything printed goes to the staff log only, so hidden inputs can't be echoed back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from grader.harness.wire import FrameDecoder, WireError, encode_frame, pack_value, unpack_value


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpus: float = 2.0
    pids: int = 64
    tmpfs_mb: int = 64
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
    """The student's code raised an exception; the sandbox is still alive."""

    kind = "exception"


class LimitExceeded(SandboxError):
    """Time, memory or output limit: the sandbox has been stopped."""

    kind = "limit"


class SandboxCrashed(SandboxError):
    """The process ended on its own (os._exit, a crash, a signal)."""

    kind = "crash"


class ProtocolViolation(SandboxError):
    """Something other than the harness wrote to the protocol stream, or a result broke the format."""

    kind = "protocol"


class InfrastructureError(Exception):
    """The platform failed (Docker down, image missing): not the student's fault, retry the run."""


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def kill(self) -> None: ...
    def exit_status(self) -> tuple[int | None, bool]:
        """(exit code or None if unknown, whether the memory limit killed it)."""
        ...


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


class Session:
    """Drives one harness. Not reusable: one session per run, closed in `finally`."""

    def __init__(self, transport: Transport, limits: Limits, *, run_deadline: float):
        self.transport = transport
        self.limits = limits
        self.run_deadline = run_deadline
        self.log = OutputLog(limits.log_keep_bytes)
        self.audience = "student"
        self.decoder = FrameDecoder(max_payload=limits.result_max_bytes)
        self.frames: list[tuple[dict, bytes]] = []
        self.cond = threading.Condition()
        self.eof = False
        self.violation: str | None = None
        self.output_flood = False
        self.next_id = 1
        self.dead_reason: SandboxError | None = None
        self.hello_info: dict[str, Any] = {}

    # ---- fed by the backend's reader thread(s) ----
    def on_stdout(self, data: bytes) -> None:
        with self.cond:
            if self.violation:
                return
            try:
                self.frames.extend(self.decoder.feed(data))
            except WireError as exc:
                self.violation = str(exc)
            self.cond.notify_all()

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
                for i, (header, payload) in enumerate(self.frames):
                    if header.get("id") == want_id:
                        del self.frames[i]
                        return header, payload
                if self.violation:
                    self.transport.kill()
                    raise self._dead(ProtocolViolation(
                        f"The grader's channel was corrupted during {what}. Did your code write to file "
                        "descriptors it did not open?", self.violation))
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
        code, oom = self.transport.exit_status()
        if oom or code == 137 and self.limits.memory_mb:
            return LimitExceeded(
                f"Your code used more than the memory limit of {self.limits.memory_mb} MB during {what}; "
                "the sandbox was stopped.", f"exit code {code}, oom={oom}")
        return SandboxCrashed(
            f"The Python process running your code ended during {what} (exit code {code}). "
            "Don't call exit() or os._exit() in your module.", f"exit code {code}")

    def hello(self, *, module: str, entries: dict[str, dict], threads: int, seed: int, timeout: float) -> dict:
        self.transport.write(encode_frame({"op": "hello", "module": module, "entries": entries,
                                           "threads": threads, "seed": seed}))
        header, _ = self._wait_for(None, f"importing {module}", timeout)
        if header.get("op") != "hello":
            raise self._dead(ProtocolViolation("The harness did not answer as expected.", repr(header)[:500]))
        if not header.get("ok"):
            err = header.get("error") or {}
            # Import happens before any hidden input exists, so the whole traceback is safe to show.
            raise CallFailed(
                f"Your module {module} could not be imported: {err.get('type')}: {err.get('message')}",
                str(err.get("traceback", "")),
            )
        self.hello_info = header
        return header

    def call(self, entry: str, *args: Any, timeout: float, audience: str = "staff",
             stores_object: bool = False, **kwargs: Any) -> tuple[Any, float]:
        """Call an entry point; returns (result, seconds measured by the grader)."""
        self.audience = "staff" if self.audience == "staff" else audience  # never back to student
        call_id = self.next_id
        self.next_id += 1
        packed, payload = pack_value({"args": list(args), "kwargs": kwargs})
        started = time.monotonic()
        self.transport.write(encode_frame({"op": "call", "id": call_id, "entry": entry, "value": packed}, payload))
        header, payload = self._wait_for(call_id, entry, timeout)
        seconds = time.monotonic() - started
        if not header.get("ok"):
            raise self._call_failed(entry, header.get("error") or {})
        if stores_object:
            return None, seconds
        try:
            return unpack_value(header.get("result"), payload), seconds
        except WireError as exc:
            raise ProtocolViolation(f"The result of {entry} could not be read: {exc}", str(exc)) from None

    def _call_failed(self, entry: str, err: dict) -> CallFailed:
        """What a student may learn from an exception in their code. During hidden queries the message
        could carry hidden inputs, so they see only a built-in exception's type and their own line."""
        detail = str(err.get("traceback", ""))[-8000:]
        kind = str(err.get("type", "Exception"))[:60] if err.get("builtin") else "an exception"
        where = str(err.get("where", ""))[:120]
        if self.audience == "student":
            message = f"{entry} raised {kind}: {str(err.get('message', ''))[:500]}"
            if where:
                message += f" (at {where})"
            self.log.note("student", detail)
        else:
            message = f"{entry} raised {kind}" + (f" at {where}" if where else "") + \
                " while the grader tested it on hidden inputs. Run the public tests to reproduce it."
            self.log.note("staff", detail)
        return CallFailed(message, detail)

    def close(self) -> None:
        try:
            self.transport.write(encode_frame({"op": "bye"}))
        except OSError:
            pass
