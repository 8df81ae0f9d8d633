"""Sandbox backends. Each starts the harness in isolation and gives the grader a `Session`.

- `docker` (production, CI): a fresh hardened container per run.
- `bwrap`: bubblewrap namespaces, seccomp, cgroups/rlimits, for hosts without Docker.
- `unsafe-local`: a plain subprocess, for staff validating their own reference solutions;
- `unsafe-inprocess`: the harness in a thread of the grader itself, for the grading API's fast tests and
  check authors' quick iterations. Neither is ever chosen implicitly: the name says what it is.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol

from grader.sandbox.session import (
    CallFailed,
    ImportFailed,
    InfrastructureError,
    LimitExceeded,
    Limits,
    OutputLog,
    ProtocolViolation,
    SandboxCrashed,
    SandboxError,
    Session,
)

BACKENDS = ("docker", "bwrap", "unsafe-local", "unsafe-inprocess")


class Backend(Protocol):
    """What the engine needs of a way to isolate a run. Docker, bubblewrap and the unsafe local
    subprocess implement it; a backend that cannot do something says so by raising InfrastructureError."""

    name: str
    gpus: list[str]  # GPUs (UUIDs) this worker may hand to a sandbox; empty when it has none

    def image_digest(self) -> str:
        """What the sandbox runs (image id, or a hash of interpreter, site and harness): stored with the run."""
        ...

    def start(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool,
              run_deadline: float, log: OutputLog | None = None) -> contextlib.AbstractContextManager[Session]:
        """A fresh sandbox running the harness over `submission_dir` (read-only); removed on exit, with
        everything it started. Its output goes to `log` (one log for all the sandboxes of a run)."""
        ...


def open_backend(name: str) -> Backend:
    """The backend object for a name; importing lazily keeps the docker SDK off paths that don't need it."""
    if name == "docker":
        from grader.sandbox.docker_backend import DockerBackend

        return DockerBackend.from_settings()
    if name == "bwrap":
        from grader.sandbox.bwrap_backend import BwrapBackend

        return BwrapBackend.from_settings()
    if name == "unsafe-local":
        from grader.sandbox.local_backend import UnsafeLocalBackend

        return UnsafeLocalBackend()
    if name == "unsafe-inprocess":
        from grader.sandbox.inprocess_backend import InProcessBackend

        return InProcessBackend()
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Backend",
    "CallFailed",
    "ImportFailed",
    "InfrastructureError",
    "LimitExceeded",
    "Limits",
    "OutputLog",
    "ProtocolViolation",
    "SandboxCrashed",
    "SandboxError",
    "Session",
    "open_backend",
]
