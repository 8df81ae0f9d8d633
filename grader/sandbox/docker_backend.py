"""The docker backend: one fresh, hardened, single-use container per run, through the docker SDK.

Facts this relies on (SANDBOX-NOTES.md): put_archive fails on a read-only root, so the submission is
extracted on the host and bind-mounted read-only; results come back over attach(), opened before
start() and drained to EOF (an attached client that stops reading can wedge the container); every
Docker call has a timeout; containers are labelled so a reaper can remove what a dead worker left.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from django.conf import settings
from docker.types import DeviceRequest, LogConfig, Ulimit

from grader.sandbox import seccomp
from grader.sandbox.session import InfrastructureError, Limits, OutputLog, Session
from grader.slots import Slot, caller_cores, format_cpus

log = logging.getLogger(__name__)

LABEL = "org.dd2601.sandbox"
HARNESS_COMMAND = ["python3", "-I", "/opt/harness/harness.py", "--submission", "/submission", "--site", "/opt/site"]
DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
# CPU weights (cgroup cpu.shares; Docker maps them onto cgroup v2's cpu.weight): every sandbox at work has the
# same, set explicitly; a spare waiting for its round has the lowest, so it boots on idle CPU only.
SANDBOX_CPU_SHARES, SPARE_CPU_SHARES = 1024, 2
# Containers this worker process could not remove (the engine was unreachable): removed at its next run,
# long before the periodic reaper would find them.
_unremoved: set[str] = set()


class DockerTransport:
    """Stdin writes and the demultiplexed attach stream of one container."""

    def __init__(self, container, sock, session_ref: list[Session]):
        self.container = container
        self.sock = sock
        self.raw = getattr(sock, "_sock", sock)
        self.raw.settimeout(None)
        self.session_ref = session_ref
        self.reader = threading.Thread(target=self._read_loop, name=f"attach-{container.short_id}", daemon=True)
        self.write_lock = threading.Lock()
        self.killed = False

    def _recv_exact(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                data = self.raw.recv(n - len(chunks))
            except OSError:
                return None
            if not data:
                return None
            chunks += data
        return bytes(chunks)

    def _read_loop(self) -> None:
        session = self.session_ref[0]
        try:
            while True:
                head = self._recv_exact(8)
                if head is None:
                    break
                stream, size = head[0], struct.unpack(">I", head[4:])[0]
                body = self._recv_exact(size) if size else b""
                if body is None:
                    break
                if stream == 1:
                    session.on_stdout(body)
                else:
                    session.on_stderr(body)
        finally:
            session.on_eof()

    def write(self, data: bytes) -> None:
        with self.write_lock:
            try:
                self.raw.sendall(data)
            except OSError:
                pass  # the container is gone; the reader reports EOF and the session explains why

    def drain(self) -> None:
        """Nothing to wait for: the attach stream carries stdout and stderr in the order they were written."""

    def kill(self) -> None:
        if self.killed:
            return
        self.killed = True
        with contextlib.suppress(*DOCKER_ERRORS):
            self.container.kill()

    def set_background(self, background: bool) -> None:
        """The container's CPU weight: the lowest for a spare, every sandbox's usual weight when taken."""
        with contextlib.suppress(*DOCKER_ERRORS):
            self.container.update(cpu_shares=SPARE_CPU_SHARES if background else SANDBOX_CPU_SHARES)

    def exit_status(self) -> tuple[int | None, bool | None]:
        """How the container ended. If the engine cannot say (it stopped, crashed, or the connection to
        it broke), the attach stream ended because of the platform, not the submission."""
        try:
            result = self.container.wait(timeout=15)
            self.container.reload()
            return result.get("StatusCode"), bool(self.container.attrs["State"].get("OOMKilled"))
        except DOCKER_ERRORS as exc:
            raise InfrastructureError(f"lost the Docker engine while the sandbox ran: {exc}") from exc


class DockerBackend:
    """With a `slot` (grader/slots.py), every container this backend starts — all the sandboxes of the run
    that holds the slot — gets exactly the slot: its cores, at most its memory, and its GPU only. Without one
    (`grade_local`, calibration, tests) the containers get the cores of the process that starts them, as a
    bwrap sandbox does: never a core its caller was not given."""

    name = "docker"
    spares_ahead = 2  # spares wait at the lowest CPU weight (DockerTransport.set_background)
    background_teardown = True  # a killed container's processes are gone (init=True: its PID 1 took them)

    def __init__(self, client: docker.DockerClient, image: str, runtime: str | None, gpus: list[str],
                 use_seccomp: bool = True, slot: Slot | None = None, cpu_set: tuple[int, ...] = ()):
        self.client = client
        self.image = image
        self.runtime = runtime  # e.g. "runsc" (gVisor), registered with dockerd; None: dockerd's default (runc)
        self.slot = slot
        self.cpu_set = slot.cpus if slot is not None else (cpu_set or caller_cores())
        self.gpus = ([slot.gpu] if slot.gpu else []) if slot is not None else gpus
        self.use_seccomp = use_seccomp

    @property
    def cores(self) -> int:
        """The cores its containers run on (`cpuset_cpus`)."""
        return len(self.cpu_set)

    @classmethod
    def from_settings(cls, slot: Slot | None = None) -> DockerBackend:
        try:
            client = docker.from_env(timeout=30)
            client.ping()
        except DOCKER_ERRORS as exc:
            raise InfrastructureError(f"cannot reach the Docker engine: {exc}") from exc
        gpus = [g for g in settings.GRADER_GPUS if g != "auto"]
        return cls(client, settings.GRADER_IMAGE, settings.GRADER_RUNTIME, gpus,
                   use_seccomp=settings.GRADER_SECCOMP, slot=slot)

    def image_digest(self) -> str:
        try:
            return self.client.images.get(self.image).id
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(
                f"sandbox image {self.image} is missing: build it with docker/sandbox/build.sh") from exc
        except DOCKER_ERRORS as exc:
            raise InfrastructureError(f"cannot inspect the sandbox image: {exc}") from exc

    def security_options(self) -> list[str]:
        options = ["no-new-privileges:true"]
        if self.use_seccomp:
            options.append(f"seccomp={seccomp.docker_profile()}")  # the API takes the JSON, not a path
        return options

    def container_options(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool) -> dict:
        # Never more than the part declares, never more than the slot (or the caller) holds.
        cpus, memory_mb = min(limits.cpus, self.cores), limits.memory_mb
        if self.slot is not None:
            memory_mb = min(memory_mb, self.slot.memory_mb)
        threads = str(max(1, int(cpus)))
        options = dict(
            image=self.image,
            command=HARNESS_COMMAND,
            stdin_open=True,
            tty=False,
            detach=True,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_mb}m,nr_inodes={limits.tmpfs_inodes},mode=1777"},
            shm_size=f"{limits.tmpfs_mb}m",
            ipc_mode="private",
            cap_drop=["ALL"],
            security_opt=self.security_options(),
            user="10001:10001",
            pids_limit=limits.pids,
            mem_limit=f"{memory_mb}m",
            memswap_limit=f"{memory_mb}m",
            nano_cpus=int(cpus * 1e9),
            cpu_shares=SANDBOX_CPU_SHARES,
            ulimits=[
                Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                Ulimit(name="fsize", soft=limits.fsize_mb * 2**20, hard=limits.fsize_mb * 2**20),
                Ulimit(name="core", soft=0, hard=0),
            ],
            init=True,
            volumes={str(submission_dir): {"bind": "/submission", "mode": "ro"}},
            working_dir="/tmp",
            environment={
                "HOME": "/tmp",
                "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads,
                # OpenMP threads that spin-wait collapse on a shared CPU (16 vs 422 training steps
                # measured under load); passive waiting costs nothing on an idle one.
                "OMP_WAIT_POLICY": "PASSIVE",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
            },
            labels={LABEL: "1", "org.dd2601.run": label, "org.dd2601.worker": socket.gethostname(),
                    "org.dd2601.created": str(int(time.time()))},
            log_config=LogConfig(type="none"),
        )
        if self.runtime:
            options["runtime"] = self.runtime
        options["cpuset_cpus"] = format_cpus(self.cpu_set)
        if self.slot is not None:
            options["labels"]["org.dd2601.slot"] = str(self.slot.index)
        if gpu:
            if not self.gpus:
                raise InfrastructureError("this part needs a GPU but the worker has none configured (GRADER_GPUS)")
            options["device_requests"] = [DeviceRequest(device_ids=[self.gpus[0]], capabilities=[["gpu"]])]
        return options

    def _remove_leftovers(self) -> None:
        for container_id in list(_unremoved):
            try:
                self.client.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
            except DOCKER_ERRORS:
                continue
            _unremoved.discard(container_id)
            log.warning("removed sandbox container %s left by an earlier engine failure", container_id[:12])

    @contextlib.contextmanager
    def start(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool,
              run_deadline: float, log: OutputLog | None = None) -> Iterator[Session]:
        self._remove_leftovers()
        container = None
        sock = None
        try:
            try:
                container = self.client.containers.create(
                    **self.container_options(submission_dir, limits, label=label, gpu=gpu))
                sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
                session_ref: list[Session] = []
                transport = DockerTransport(container, sock, session_ref)
                session = Session(transport, limits, run_deadline=run_deadline, submission_dir=submission_dir,
                                  log=log)
                session_ref.append(session)
                transport.reader.start()
                container.start()
            except docker.errors.ImageNotFound as exc:
                raise InfrastructureError(
                    f"sandbox image {self.image} is missing: build it with docker/sandbox/build.sh") from exc
            except DOCKER_ERRORS as exc:
                raise InfrastructureError(f"could not start a sandbox container: {exc}") from exc
            yield session
            session.close()
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except docker.errors.NotFound:
                    pass
                except DOCKER_ERRORS:
                    _unremoved.add(container.id)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def reap(client: docker.DockerClient | None = None, *, older_than_seconds: float = 0,
         worker: str | None = None) -> int:
    """Remove sandbox containers older than the given age (all of this worker's at its start)."""
    client = client or docker.from_env(timeout=30)
    removed = 0
    now = time.time()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels
        if worker and labels.get("org.dd2601.worker") != worker:
            continue
        age = now - float(labels.get("org.dd2601.created", "0") or 0)
        # A stopped container is garbage after a minute; a running one only past the longest run.
        if age < (older_than_seconds if container.status == "running" else 60):
            continue
        with contextlib.suppress(*DOCKER_ERRORS):
            container.remove(force=True)
            removed += 1
            log.warning("reaped orphan sandbox container %s (run %s)", container.short_id, labels.get("org.dd2601.run"))
    return removed
