"""Sandbox backends. Each starts the harness in isolation and gives the grader a `Session`.

- `docker` (production, CI): a fresh hardened container per run.
- `bwrap`: bubblewrap namespaces, seccomp, cgroups/rlimits, for hosts without Docker.
- `unsafe-local`: a plain subprocess, for staff validating their own reference solutions. It is never
  chosen implicitly: the name says what it is.
"""

from __future__ import annotations

from grader.sandbox.session import (
    CallFailed,
    InfrastructureError,
    LimitExceeded,
    Limits,
    ProtocolViolation,
    SandboxCrashed,
    SandboxError,
    Session,
)

BACKENDS = ("docker", "bwrap", "unsafe-local")


def open_backend(name: str):
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
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "CallFailed",
    "InfrastructureError",
    "LimitExceeded",
    "Limits",
    "ProtocolViolation",
    "SandboxCrashed",
    "SandboxError",
    "Session",
    "open_backend",
]
