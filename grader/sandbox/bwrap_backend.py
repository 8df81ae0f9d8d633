"""The bubblewrap backend: a daemon-less sandbox for hosts without Docker, with the docker backend's
limits as far as the host allows.

One run = one `bwrap` process tree, started through `bwrap_launch.py`:

- namespaces: `--unshare-all` (user, pid, net, ipc, uts, cgroup), `--disable-userns` (no nested user
  namespaces), `--die-with-parent`, `--new-session` (no TIOCSTI into the worker's terminal); the network
  namespace holds only `lo`;
- identity: uid/gid 10001 inside (as in the image); outside, an unprivileged uid (GRADER_BWRAP_UID,
  default 10002) when the worker runs as root, else the worker's own uid;
- file system: a fresh tmpfs root holding read-only binds of /usr (the host's Python 3.11 and libraries),
  of a byte-compiled copy of the sandbox site-packages at /opt/site (the same wheels as the image, from
  GRADER_BWRAP_SITE), of the harness at /opt/harness and of the submission at /submission; a sized tmpfs
  at /tmp and at /dev/shm, a minimal read-only /dev, a private /proc, the root itself remounted read-only;
  nothing else of the host (no /etc but ld.so.cache, no /home, /var, /run, /sys, no Docker socket, no
  repository);
- environment: `--clearenv`, then only the variables the harness needs;
- seccomp: the policy of `grader.sandbox.seccomp`, compiled with libseccomp, via `--seccomp FD`;
- limits: per-run cgroups under GRADER_BWRAP_CGROUP (relative to each hierarchy's root; point it at a
  delegated subtree under systemd) when the worker may create them (cgroup v1 memory + pids + cpu here, or v2):
  memory (no swap), pids, CPU quota, and exact OOM detection; rlimits always: NOFILE, FSIZE, CORE=0, CPU
  seconds as a backstop; without cgroups, RLIMIT_AS and RLIMIT_NPROC stand in (weaker: address space is
  not resident memory, and NPROC counts every process of the uid);
- time: per call and per run, enforced by the grader's `Session` from outside, which kills the whole
  tree (the cgroup's processes and bwrap's process group; the pid namespace dies with its init).

What it does not do that the docker backend does: `noexec` on /tmp (bwrap 0.8 mounts tmpfs without
it), an inode limit on /tmp (a million empty files are bounded by the memory cgroup and by time
instead), and a runtime such as gVisor. See tests/redteam/README.md.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from grader.sandbox import seccomp
from grader.sandbox.local_backend import ProcessTransport, serve_process
from grader.sandbox.session import InfrastructureError, Limits, OutputLog, Session

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).resolve().with_name("bwrap_launch.py")
HARNESS_DIR = Path(__file__).resolve().parent.parent / "harness"
SANDBOX_UID = 10001
CGROUP_V1 = Path("/sys/fs/cgroup")
HARNESS_COMMAND = ["/usr/bin/python3", "-I", "/opt/harness/harness.py", "--submission", "/submission",
                   "--site", "/opt/site"]
# torch ships helpers for newer Pythons that do not compile on 3.11 (as in Dockerfile.offline).
COMPILE_EXCLUDE = r"/py3(1[2-9]|[2-9][0-9])_[^/]*\.py$"


# ---- cgroups --------------------------------------------------------------------------------------

class Cgroups:
    """The cgroups of one run: memory (without swap), pids and CPU. v1 keeps one directory per
    controller, v2 one directory. Created by the worker, joined by the launcher before bwrap starts."""

    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version = version
        self.dirs = dirs

    @classmethod
    def create(cls, parent: str, name: str, limits: Limits) -> Cgroups | None:
        if not parent:
            return None
        try:
            if (CGROUP_V1 / "memory" / "cgroup.procs").exists():
                return cls._create_v1(parent, name, limits)
            if (CGROUP_V1 / "cgroup.controllers").exists():
                return cls._create_v2(parent, name, limits)
        except OSError as exc:
            log.warning("bwrap: cannot create cgroups (%s); falling back to rlimits", exc)
        return None

    @classmethod
    def _create_v1(cls, parent: str, name: str, limits: Limits) -> Cgroups:
        dirs: dict[str, Path] = {}
        group = cls(1, dirs)
        try:
            for controller in ("memory", "pids", "cpu"):
                root = CGROUP_V1 / controller
                if not (root / "cgroup.procs").exists():
                    continue
                path = root / parent / name
                path.mkdir(parents=True)
                dirs[controller] = path
            if "memory" not in dirs or "pids" not in dirs:
                raise OSError(errno.ENOENT, "no memory or pids controller")
            memory = str(limits.memory_mb * 2**20)
            (dirs["memory"] / "memory.limit_in_bytes").write_text(memory)
            if (dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
                (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(memory)
            with contextlib.suppress(OSError):
                (dirs["memory"] / "memory.swappiness").write_text("0")
            (dirs["pids"] / "pids.max").write_text(str(limits.pids))
            if "cpu" in dirs:
                (dirs["cpu"] / "cpu.cfs_period_us").write_text("100000")
                (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * 100000)))
        except OSError:
            group.remove()
            raise
        return group

    @classmethod
    def _create_v2(cls, parent: str, name: str, limits: Limits) -> Cgroups:
        base = CGROUP_V1 / parent
        base.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (CGROUP_V1 / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        path = base / name
        path.mkdir()
        group = cls(2, {"unified": path})
        try:
            (path / "memory.max").write_text(str(limits.memory_mb * 2**20))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(limits.pids))
            with contextlib.suppress(OSError):
                (path / "cpu.max").write_text(f"{int(limits.cpus * 100000)} 100000")
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        return found

    def oom_killed(self) -> bool:
        try:
            if self.version == 1:
                text = (self.dirs["memory"] / "memory.oom_control").read_text()
                fields = dict(line.split() for line in text.splitlines() if line.strip())
                if "oom_kill" in fields:
                    return int(fields["oom_kill"]) > 0
                return int((self.dirs["memory"] / "memory.failcnt").read_text()) > 0
            text = (self.dirs["unified"] / "memory.events").read_text()
            fields = dict(line.split() for line in text.splitlines() if line.strip())
            return int(fields.get("oom_kill", "0")) > 0
        except (OSError, ValueError, KeyError):
            return False

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in the run's cgroups until none is left."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.dirs["unified"] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        return not self.pids()

    def remove(self) -> None:
        for d in self.dirs.values():
            for _ in range(100):  # a killed process leaves its cgroup only once it has been reaped
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                log.warning("bwrap: cgroup %s is still busy; the reaper will remove it", d)


def reap_cgroups(parent: str | None = None, older_than_seconds: float = 0, prefix: str = "run-") -> int:
    """Kill and remove per-run cgroups that a dead worker left behind (bwrap's analogue of the docker
    reaper; with --die-with-parent there should be none)."""
    parent = settings.GRADER_BWRAP_CGROUP if parent is None else parent
    if not parent:
        return 0
    removed = 0
    now = time.time()
    roots = [CGROUP_V1 / c / parent for c in ("memory", "pids", "cpu")] + [CGROUP_V1 / parent]
    for root in roots:
        if not root.is_dir():
            continue
        for d in root.iterdir():
            if not d.is_dir() or not d.name.startswith(prefix):
                continue
            with contextlib.suppress(OSError):
                if now - d.stat().st_mtime < older_than_seconds:
                    continue
                version = 2 if root.parent == CGROUP_V1 else 1
                group = Cgroups(version, {"unified" if version == 2 else root.parent.name: d})
                group.kill_all()
                group.remove()
                removed += not d.exists()
    return removed


# ---- the site-packages the sandbox imports --------------------------------------------------------

def _site_stamp(site: Path) -> str:
    stamp = site.parent / f"{site.name}.sha256"
    if stamp.is_file():
        text = stamp.read_text().strip()
    else:
        text = "\n".join(sorted(p.name for p in site.iterdir() if p.name.endswith(".dist-info")))
    return hashlib.sha256(f"{site.resolve()}\n{text}".encode()).hexdigest()[:16]


def prepared_site(source: Path, root: Path, python: str) -> Path:
    """A byte-compiled copy of `source` (hard links, no data copied), made once per site version.

    pip installed the site with --no-compile (build.sh); read-only and without .pyc, every sandbox would
    recompile torch in memory (10+ s). The copy's .pyc files come from the sandbox's own interpreter."""
    if not (source / "torch").is_dir():
        raise InfrastructureError(
            f"the bwrap backend needs the sandbox's site-packages at {source} (torch, numpy, safetensors for "
            "CPython 3.11): run docker/sandbox/build.sh, or `pip install --target` the wheels of "
            "docker/sandbox/requirements.txt there, and set GRADER_BWRAP_SITE")
    target = root / f"site-{_site_stamp(source)}"
    if (target / ".compiled").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    lock_path = root / ".lock"
    import fcntl

    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # workers starting together compile once
        if (target / ".compiled").exists():
            return target
        work = root / f"{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            subprocess.run(["cp", "-al", str(source), str(work)], check=True, capture_output=True)
            subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "-x", COMPILE_EXCLUDE, str(work)],
                           check=False, capture_output=True, timeout=1800)
            for path in [work, *work.rglob("__pycache__")]:
                os.chmod(path, 0o755)
            (work / ".compiled").write_text(f"compiled by {python}\n")
            shutil.rmtree(target, ignore_errors=True)
            os.rename(work, target)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise InfrastructureError(f"could not prepare the bwrap site at {target}: {exc}") from exc
    return target


@functools.cache
def _python_version(python: str) -> str:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfrastructureError(f"the sandbox Python {python} does not run: {exc}") from exc
    return out.stdout.strip()


@functools.cache
def _bwrap_version(bwrap: str) -> str:
    try:
        return subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfrastructureError(f"bubblewrap ({bwrap}) does not run: {exc}") from exc


def _harness_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(HARNESS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ---- the backend ----------------------------------------------------------------------------------

class BwrapTransport(ProcessTransport):
    """Pipes to the launcher/bwrap process; kill reaches the whole tree through the cgroup too."""

    def __init__(self, proc: subprocess.Popen, session_ref: list[Session], cgroups: Cgroups | None):
        super().__init__(proc, session_ref)
        self.cgroups = cgroups

    def kill(self) -> None:
        super().kill()
        if self.cgroups is not None:
            self.cgroups.kill_all()

    def exit_status(self) -> tuple[int | None, bool | None]:
        code, _ = super().exit_status()
        if self.cgroups is None:
            return code, None  # unknown: an address-space limit shows up as a MemoryError, not a kill
        return code, self.cgroups.oom_killed()


class BwrapBackend:
    name = "bwrap"

    @property
    def cores(self) -> int:
        """The cores its sandboxes can run on: a child process inherits this process's CPU affinity."""
        return len(os.sched_getaffinity(0))

    def __init__(self, *, bwrap: str, python: str, site: Path, host_uid: int | None, cgroup_parent: str,
                 use_seccomp: bool):
        self.bwrap = bwrap
        self.python = python
        self.site = site
        self.host_uid = host_uid
        self.cgroup_parent = cgroup_parent
        self.use_seccomp = use_seccomp
        self.gpus: list[str] = []

    @classmethod
    def from_settings(cls) -> BwrapBackend:
        bwrap = shutil.which(settings.GRADER_BWRAP)
        if bwrap is None:
            raise InfrastructureError(f"bubblewrap ({settings.GRADER_BWRAP}) is not installed: apt-get install bubblewrap")
        python = settings.GRADER_BWRAP_PYTHON
        if not _python_version(python).startswith("3.11."):
            raise InfrastructureError(f"the sandbox Python {python} is {_python_version(python)}; the site needs 3.11")
        site = prepared_site(Path(settings.GRADER_BWRAP_SITE), Path(settings.GRADER_BWRAP_ROOT), python)
        host_uid = int(settings.GRADER_BWRAP_UID) if os.geteuid() == 0 else None
        return cls(bwrap=bwrap, python=python, site=site, host_uid=host_uid,
                   cgroup_parent=settings.GRADER_BWRAP_CGROUP, use_seccomp=settings.GRADER_SECCOMP)

    def image_digest(self) -> str:
        parts = [_bwrap_version(self.bwrap), self.python, _python_version(self.python), self.site.name,
                 _harness_hash(), "seccomp" if self.use_seccomp else "no-seccomp"]
        return "bwrap:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _root_binds(self) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        if Path("/etc/ld.so.cache").is_file():
            args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        return args

    def command(self, submission_dir: Path, limits: Limits, seccomp_fd: int | None,
                status_fd: int | None = None) -> list[str]:
        threads = str(max(1, int(limits.cpus)))
        size = str(limits.tmpfs_mb * 2**20)
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
                *self._root_binds(),
                "--ro-bind", str(self.site), "/opt/site",
                "--ro-bind", str(HARNESS_DIR), "/opt/harness",
                "--ro-bind", str(submission_dir), "/submission",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
                "--remount-ro", "/dev", "--remount-ro", "/",  # only /tmp and /dev/shm stay writable
                "--chdir", "/tmp", "--clearenv",
                "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "OMP_NUM_THREADS", threads, "--setenv", "MKL_NUM_THREADS", threads,
                "--setenv", "OMP_WAIT_POLICY", "PASSIVE",  # as the docker backend: spinning threads starve a shared CPU
                "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONUNBUFFERED", "1"]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        return [*args, "--", *HARNESS_COMMAND[:1], *HARNESS_COMMAND[1:]]

    def rlimits(self, limits: Limits, cgroups: Cgroups | None, seconds: float) -> dict[str, int]:
        cpu_seconds = int(max(1.0, limits.cpus) * max(seconds, 1.0)) + 30
        out = {"RLIMIT_NOFILE": limits.nofile, "RLIMIT_FSIZE": limits.fsize_mb * 2**20, "RLIMIT_CORE": 0,
               "RLIMIT_CPU": cpu_seconds}
        if cgroups is None:
            # Stand-ins, weaker than cgroups: address space (torch reserves far more than it touches)
            # and processes of this uid host-wide.
            out["RLIMIT_AS"] = (limits.memory_mb + 6144) * 2**20
            out["RLIMIT_NPROC"] = limits.pids
        return out

    @contextlib.contextmanager
    def start(self, submission_dir: Path, limits: Limits, *, label: str, gpu: bool,
              run_deadline: float, log: OutputLog | None = None) -> Iterator[Session]:
        if gpu:
            raise InfrastructureError("the bwrap backend does not hand out GPUs; use the docker backend")
        name = f"run-{label}-{uuid.uuid4().hex[:8]}"[:120]
        cgroups = Cgroups.create(self.cgroup_parent, name, limits)
        fds: list[int] = []
        try:
            seccomp_fd = None
            if self.use_seccomp:
                try:
                    program = seccomp.bpf_program()
                except seccomp.SeccompUnavailable as exc:
                    raise InfrastructureError(f"cannot build the seccomp filter: {exc}") from exc
                seccomp_fd = os.memfd_create("dd2601-seccomp", 0)
                fds.append(seccomp_fd)
                os.write(seccomp_fd, program)
                os.lseek(seccomp_fd, 0, os.SEEK_SET)
            status_r, status_w = os.pipe()
            fds += [status_r, status_w]
            config = {"cgroup_procs": cgroups.procs_files if cgroups else [],
                      "rlimits": self.rlimits(limits, cgroups, run_deadline - time.monotonic()),
                      "uid": self.host_uid}
            argv = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config),
                    *self.command(submission_dir, limits, seccomp_fd, status_w)]
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True,
                    pass_fds=[fd for fd in (seccomp_fd, status_w) if fd is not None])
            except OSError as exc:
                raise InfrastructureError(f"could not start bubblewrap: {exc}") from exc
        except BaseException:
            for fd in fds:
                os.close(fd)
            if cgroups is not None:
                cgroups.remove()
            raise
        for fd in fds:
            if fd != status_r:
                os.close(fd)
        session: Session | None = None
        try:
            with serve_process(proc, BwrapTransport, limits, run_deadline=run_deadline, log=log,
                               submission_dir=submission_dir, cgroups=cgroups) as session:
                yield session
        finally:
            if cgroups is not None:
                cgroups.kill_all()
                cgroups.remove()
            status = _read_all(status_r)
            os.close(status_r)
            if b'"child-pid"' not in status:
                # bwrap never started the harness: a bind source missing, no user namespaces… the
                # platform's failure. (Student code runs only after child-pid was reported.)
                log = session.log.text("student") if session is not None else ""
                lines = [line for line in log.splitlines() if line.startswith("bwrap:")]
                raise InfrastructureError(
                    f"bubblewrap failed to start the sandbox (exit {proc.returncode}): {' '.join(lines)[:500]}")


def _read_all(fd: int) -> bytes:
    """What bwrap wrote to its status pipe; never blocks (everything in the sandbox is dead by now)."""
    os.set_blocking(fd, False)
    out = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            out += chunk
    return bytes(out)
