"""`dd2601 check PART DIR`: the handout's public tests, run in the grading sandbox on this machine.

What "the public checks" are for a student: the student has the handout, not the grader's checks (those
hold the hidden checks and draw secret data, and never leave the server). The handout's `test_public.py`
is the public part of the grading: the same kinds of checks on data the student can see. So `check` runs
the course's own copy of it (downloaded from the server, so an edited local copy changes nothing) against
the files `submit` would send, inside the sandbox image the grader uses, with the grader's isolation and
the part's own limits (memory, CPUs, processes, /tmp size, the seccomp policy: all from the server's
`/assignments/{id}/sandbox`, so they are the grader's numbers, not copies). A pass here means the code
imports, runs and behaves under the grader's conditions; the hidden checks can still fail it.

pytest is not in the sandbox image (the grader does not need it), so this client's own pytest (pure
Python) is mounted read-only beside the image's packages. The options below mirror
`grader.sandbox.docker_backend.DockerBackend.container_options`; tests/test_cli.py compares the two.
"""

from __future__ import annotations

import importlib.metadata
import io
import shutil
import subprocess
import tempfile
import uuid
import zipfile
from pathlib import Path

from dd2601.i18n import _

PYTEST_MOUNT = "/opt/dd2601-pytest"
SANDBOX_UID = "10001:10001"
LABEL = "org.dd2601.check"


class CheckProblem(Exception):
    pass


def docker_ready() -> str:
    """The docker command, or a CheckProblem that says what to do without it."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode != 0:
        raise CheckProblem(_("Docker is not available here: `dd2601 check` runs the public tests in the grading "
                             "sandbox, which needs a running Docker engine. Without it you can still run them "
                             "directly: python -m pytest test_public.py"))
    return docker


def image_present(docker: str, image: str) -> None:
    if subprocess.run([docker, "image", "inspect", image], capture_output=True, timeout=30).returncode != 0:
        raise CheckProblem(_("The grading sandbox image %(image)s is not on this machine. Ask the course for it "
                             "(staff build it with docker/sandbox/build.sh), or pass --image.") % {"image": image})


def pytest_packages() -> list[Path]:
    """The top-level modules of pytest and everything it needs on Linux CPython 3.11 (the sandbox's Python)."""
    try:
        from packaging.requirements import Requirement
    except ImportError as exc:
        raise CheckProblem(_("`dd2601 check` needs pytest: pip install 'dd2601[check]'")) from exc
    environment = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                   "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "extra": ""}
    wanted, seen, tops = ["pytest"], set(), {}
    while wanted:
        name = wanted.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise CheckProblem(_("`dd2601 check` needs pytest: pip install 'dd2601[check]'")) from exc
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate(environment):
                wanted.append(requirement.name)
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".egg-info", ".pth")) or top in {"..", "__pycache__"} or "/" in top:
                continue
            path = Path(dist.locate_file(top))
            if path.exists():
                tops[top] = path
    return sorted(tops.values())


def work_folder(folder: Path, files: list[Path], handout_zip: bytes, slug: str, into: Path) -> None:
    """The student's files, the course's test_public.py over any local copy, and the handout's other files
    where the student has none (e.g. data.py)."""
    for relative in files:
        (into / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / relative, into / relative)
    with zipfile.ZipFile(io.BytesIO(handout_zip)) as handout:
        for name in handout.namelist():
            relative = Path(name).relative_to(slug) if name.startswith(f"{slug}/") else None
            if relative is None or name.endswith("/") or ".." in relative.parts:
                continue
            target = into / relative
            if relative.name.startswith("test_") or not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(handout.read(name))
    for path in [into, *into.rglob("*")]:  # readable by the sandbox's user (uid 10001), never writable
        path.chmod(0o755 if path.is_dir() else 0o644)


def docker_run_args(docker: str, sandbox: dict, work: Path, seccomp_file: Path, packages: list[Path],
                    name: str) -> list[str]:
    limits = {k: sandbox[k] for k in ("memory_mb", "cpus", "pids", "tmpfs_mb", "tmpfs_inodes", "nofile", "fsize_mb")}
    threads = str(max(1, int(limits["cpus"])))
    args = [
        docker, "run", "--rm", "--name", name, "--label", f"{LABEL}=1",
        "--network", "none", "--read-only",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,noexec,size={limits['tmpfs_mb']}m,nr_inodes={limits['tmpfs_inodes']},mode=1777",
        "--shm-size", f"{limits['tmpfs_mb']}m", "--ipc", "private",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--security-opt", f"seccomp={seccomp_file}",
        "--user", SANDBOX_UID, "--pids-limit", str(limits["pids"]),
        "--memory", f"{limits['memory_mb']}m", "--memory-swap", f"{limits['memory_mb']}m",
        "--cpus", str(limits["cpus"]),
        "--ulimit", f"nofile={limits['nofile']}:{limits['nofile']}",
        "--ulimit", f"fsize={limits['fsize_mb'] * 2**20}:{limits['fsize_mb'] * 2**20}",
        "--ulimit", "core=0:0",
        "--init", "--log-driver", "none",
        "-v", f"{work}:/submission:ro",
    ]
    for package in packages:
        args += ["-v", f"{package}:{PYTEST_MOUNT}/{package.name}:ro"]
    for key, value in {"HOME": "/tmp", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                       "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                       "PYTHONPATH": f"/opt/site:{PYTEST_MOUNT}"}.items():
        args += ["-e", f"{key}={value}"]
    args += ["-w", "/submission", sandbox["image"],
             "python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", "test_public.py"]
    return args


def run_public_tests(docker: str, sandbox: dict, folder: Path, files: list[Path], handout_zip: bytes,
                     slug: str) -> int:
    """Run them, streaming pytest's output; returns pytest's exit status (0: every public test passed)."""
    packages = pytest_packages()
    with tempfile.TemporaryDirectory(prefix="dd2601-check-") as tmp:
        work = Path(tmp) / "submission"
        work.mkdir()
        work_folder(folder, files, handout_zip, slug, work)
        seccomp_file = Path(tmp) / "seccomp.json"
        seccomp_file.write_text(sandbox["seccomp_profile"])
        name = f"dd2601-check-{uuid.uuid4().hex[:12]}"
        args = docker_run_args(docker, sandbox, work, seccomp_file, packages, name)
        try:
            # Twice the grader's time for a whole run: the public tests train like the grader does, some twice.
            return subprocess.run(args, timeout=float(sandbox["run_seconds"]) * 2).returncode
        except subprocess.TimeoutExpired as exc:
            subprocess.run([docker, "kill", name], capture_output=True, timeout=60)
            raise CheckProblem(_("The public tests ran longer than %(seconds)d s and were stopped (the grader "
                                 "allows %(limit)d s for the whole run).")
                               % {"seconds": int(float(sandbox["run_seconds"]) * 2),
                                  "limit": int(float(sandbox["run_seconds"]))}) from exc
