"""The unsafe in-process backend: no Docker, no subprocess, no isolation at all.

The harness's own `Dispatcher` answers the requests, in a thread of the grader's process, over the real
wire format and the real `Session`: everything the engine and the checks see is what a real backend gives,
except isolation. It is for the grading API's fast tests and for check authors iterating on their own
reference (`grade_local <part> <dir> --backend unsafe-inprocess`: an answer in seconds). Like unsafe-local,
it is never chosen implicitly: the name says what it is.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from grader.harness import wire
from grader.harness.harness import Dispatcher
from grader.sandbox.session import Limits, OutputLog, Session


class LoopbackTransport:
    """Frames written by the session go to a dispatcher thread; its answers come back through on_stdout."""

    def __init__(self, submission: Path, session_ref: list[Session]):
        self.submission = submission
        self.dispatcher = Dispatcher(submission)
        self.session_ref = session_ref
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.decoder = wire.FrameDecoder()
        self.killed = False
        self.thread = threading.Thread(target=self._serve, daemon=True, name="fake-harness")

    def _serve(self) -> None:
        session = self.session_ref[0]
        while (data := self.inbox.get()) is not None and not self.killed:
            for request, payload in self.decoder.feed(data):
                if request.get("op") == "bye":
                    session.on_eof()
                    return
                if request.get("op") == "hello":
                    session.on_stdout(wire.encode_frame(self.dispatcher.hello(request, payload)))
                else:
                    session.on_stdout(wire.encode_frame(*self.dispatcher.call(request, payload)))
        session.on_eof()

    def write(self, data: bytes) -> None:
        if not self.killed:
            self.inbox.put(data)

    def kill(self) -> None:
        self.killed = True
        self.inbox.put(None)

    def drain(self) -> None:
        """Output is not captured here: nothing to wait for."""

    def exit_status(self) -> tuple[int | None, bool | None]:
        return (137 if self.killed else 0), False


class InProcessBackend:
    """Implements grader.sandbox.Backend in-process. Each sandbox is a fresh `Dispatcher`, which imports
    the student's files anew: module globals do not survive from one sandbox to the next."""

    name = "unsafe-inprocess"
    gpus: list[str] = []

    def __init__(self) -> None:
        self.started = 0

    def image_digest(self) -> str:
        return f"in-process-python-{sys.version.split()[0]}"

    @contextlib.contextmanager
    def start(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool,
              run_deadline: float, log: OutputLog | None = None) -> Iterator[Session]:
        self.started += 1
        ref: list[Session] = []
        transport = LoopbackTransport(submission_dir, ref)
        sys.path.append(str(submission_dir))  # as the harness does: the student's helper modules, last
        session = Session(transport, limits, run_deadline=run_deadline, submission_dir=submission_dir, log=log)
        ref.append(session)
        transport.thread.start()
        try:
            yield session
        finally:
            transport.kill()
            transport.thread.join(timeout=5)
            sys.path.remove(str(submission_dir))
            for name, module in list(sys.modules.items()):  # the next sandbox imports the student's files anew
                if str(getattr(module, "__file__", "") or "").startswith(str(submission_dir)):
                    del sys.modules[name]
