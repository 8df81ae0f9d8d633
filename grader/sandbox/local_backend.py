"""The unsafe local backend: the harness as a plain subprocess of the grader, no isolation at all.

Only for staff validating their own reference solutions (`grade_local --backend unsafe-local`) and for
measuring the sandbox's overhead. It is never picked silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from grader.sandbox.session import Limits, OutputLog, Session

HARNESS = Path(__file__).resolve().parent.parent / "harness" / "harness.py"


class ProcessTransport:
    """Two pipes: protocol frames on stdout, the student's output on stderr.

    Unlike Docker's attach stream, two pipes carry no order between them: an answer can be read before
    the output printed just ahead of it. `drain()` closes that gap, so that output printed during a call
    whose output the student may see is never filed under the next (hidden) call."""

    def __init__(self, proc: subprocess.Popen, session_ref: list[Session]):
        self.proc = proc
        self.session_ref = session_ref
        self.lock = threading.Lock()
        self.busy = {"stdout": False, "stderr": False}
        self.readers = [
            threading.Thread(target=self._pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        self.open_streams = 2

    def _pump(self, stream, which: str) -> None:
        session = self.session_ref[0]
        deliver = session.on_stdout if which == "stdout" else session.on_stderr
        fd = stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while True:
                poller.poll()
                with self.lock:
                    self.busy[which] = True  # before reading: drain() must not see an empty pipe and idle reader
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                deliver(chunk)
                with self.lock:
                    self.busy[which] = False
        finally:
            with self.lock:
                self.busy[which] = False
                self.open_streams -= 1
                last = self.open_streams == 0
            if last:
                session.on_eof()

    def drain(self, timeout: float = 2.0) -> None:
        """Return once everything already written to stderr has been handed to the session."""
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pending = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
            except OSError:
                return
            with self.lock:  # checked after the pipe: a reader that took the bytes is still busy
                busy = self.busy["stderr"]
            if not pending and not busy:
                return
            time.sleep(0.002)

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def exit_status(self) -> tuple[int | None, bool | None]:
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            return None, None
        return (128 - code if code < 0 else code), None  # no memory limit here to tell about


@contextlib.contextmanager
def serve_process(proc: subprocess.Popen, transport_class: type[ProcessTransport], limits: Limits, *,
                  run_deadline: float, submission_dir: Path, log: OutputLog | None = None,
                  **transport_kwargs) -> Iterator[Session]:
    """A Session over a started harness process's pipes. However the `with` ends, the process is killed
    and reaped, its reader threads joined and its pipes closed: nothing outlives the run."""
    session_ref: list[Session] = []
    transport = transport_class(proc, session_ref, **transport_kwargs)
    session = Session(transport, limits, run_deadline=run_deadline, submission_dir=submission_dir, log=log)
    session_ref.append(session)
    for reader in transport.readers:
        reader.start()
    try:
        yield session
        session.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    finally:
        transport.kill()
        proc.wait()
        for reader in transport.readers:
            reader.join(timeout=5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()


class UnsafeLocalBackend:
    name = "unsafe-local"

    @property
    def cores(self) -> int:
        """The cores its sandboxes can run on: a child process inherits this process's CPU affinity."""
        return len(os.sched_getaffinity(0))
    gpus: list[str] = []  # never hands out a GPU

    def image_digest(self) -> str:
        return f"local-python-{sys.version.split()[0]}"

    @contextlib.contextmanager
    def start(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool,
              run_deadline: float, log: OutputLog | None = None) -> Iterator[Session]:
        threads = str(max(1, int(limits.cpus)))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(submission_dir.parent),
               "OMP_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-I", str(HARNESS), "--submission", str(submission_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=submission_dir.parent, env=env, start_new_session=True,
        )
        with serve_process(proc, ProcessTransport, limits, run_deadline=run_deadline,
                           submission_dir=submission_dir, log=log) as session:
            yield session
