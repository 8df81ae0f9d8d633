"""The `dd2601` command-line client (cli/, installed with pip by bin/test) as a real process against a live
server (pytest-django's live_server: the whole site over HTTP on a loopback port, on the test database).

A run's progress is written to the database by the test here, as the worker would (the run row is the
source of truth the API reads); tests/test_student_path.py grades with a real worker and sandbox."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import queue
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.utils import timezone

from api.models import AccessToken
from courseware.models import Assignment, CheckResult, GradingRun, Submission

from .conftest import MDN
from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("quiet_broker")


def dd2601_executable() -> str:
    found = shutil.which("dd2601")
    if found is None:
        pytest.fail("the dd2601 command is not installed: bin/test installs it with pip install -e cli")
    return found


class Cli:
    """Runs the installed `dd2601` with its own configuration folder, against one server."""

    def __init__(self, home: Path, server: str):
        self.home, self.server = home, server
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DD2601_")}
        self.env.update({"DD2601_CONFIG_DIR": str(home / "config"), "DD2601_POLL_SECONDS": "0.3",
                         "LANG": "C.UTF-8", "LANGUAGE": "", "LC_ALL": "", "PYTHONUNBUFFERED": "1"})

    def __call__(self, *args: str, stdin: str = "", timeout: float = 120, env: dict | None = None
                 ) -> subprocess.CompletedProcess:
        return subprocess.run([dd2601_executable(), *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env={**self.env, **(env or {})})

    def login(self, token: str) -> subprocess.CompletedProcess:
        return self("login", "--server", self.server + "/api/v1/", "--token-stdin", stdin=token + "\n")

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([dd2601_executable(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env)


@pytest.fixture
def cli(transactional_db, live_server, tmp_path, settings) -> Cli:
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return Cli(tmp_path, live_server.url)


def student_token(user) -> str:
    return AccessToken.issue(user, name="laptop", days=30)[1]


def solution_folder(tmp_path: Path, *, starter: bool = False) -> Path:
    """A student's working folder: the handout as downloaded, with their mdn.py (the reference's here)."""
    folder = tmp_path / ("starter" if starter else "work")
    shutil.copytree(MDN / "handout", folder, dirs_exist_ok=True)
    if not starter:
        shutil.copy(MDN / "solution" / "mdn.py", folder / "mdn.py")
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "mdn.cpython-311.pyc").write_bytes(b"\0")
    (folder / "weights.pt").write_bytes(b"\0" * 100)  # not a kind of file the part accepts: left out
    return folder


# ---- login ------------------------------------------------------------------------------------------------------

def test_login_stores_the_token_for_the_user_only_and_a_bad_token_is_refused(cli, people):
    refused = cli.login("dd2601_not-a-real-token")
    assert refused.returncode != 0 and "did not accept your token" in refused.stderr
    assert not (cli.home / "config" / "login.json").exists()

    done = cli.login(student_token(people["alice"]))
    assert done.returncode == 0, done.stderr
    assert "alice" in done.stdout and "laptop" in done.stdout
    stored = cli.home / "config" / "login.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert json.loads(stored.read_text())["server"] == cli.server  # the API address is taken back to the site

    assert cli("logout").returncode == 0 and not stored.exists()
    assert "not signed in" in cli("parts").stderr


# ---- parts ------------------------------------------------------------------------------------------------------

def test_parts_lists_the_students_deadline_and_whether_they_may_submit(cli, people, assignment):
    cli.login(student_token(people["alice"]))
    out = cli("parts")
    assert out.returncode == 0, out.stderr
    deadline = timezone.localtime(assignment.deadline).strftime("%Y-%m-%d %H:%M")
    line = next(line for line in out.stdout.splitlines() if line.startswith("mdn"))
    assert deadline in line and "yes" in line and "0/5" in line and "none yet" in line

    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=0)
    out = cli("parts")
    assert "no: daily limit" in out.stdout and "You have used all 0 submissions" in out.stdout


# ---- submit -----------------------------------------------------------------------------------------------------

def test_submit_zips_what_the_part_accepts_and_reads_the_declaration(cli, people, assignment, tmp_path):
    cli.login(student_token(people["alice"]))
    folder = solution_folder(tmp_path)
    out = cli("submit", "mdn", str(folder), "--declaration", "I used the course book only.")
    assert out.returncode == 0, out.stderr
    submission = Submission.objects.get()
    assert submission.files == ["README.md", "data.py", "mdn.py", "test_public.py"]
    assert submission.declaration == "I used the course book only."
    assert f"#{submission.pk}" in out.stdout and "number 1 in the queue" in out.stdout
    assert f"/submissions/{submission.pk}/" in out.stdout
    assert submission.runs.get().status == GradingRun.Status.QUEUED

    from_file = tmp_path / "declaration.txt"
    from_file.write_text("Discussed EM with Bob.")
    assert cli("submit", "mdn", str(folder), "--declaration-file", str(from_file)).returncode == 0
    assert Submission.objects.order_by("-pk").first().declaration == "Discussed EM with Bob."

    without = cli("submit", "mdn", str(folder))  # no terminal to ask on, no declaration given
    assert without.returncode == 2 and "--declaration" in without.stderr
    assert Submission.objects.count() == 2


def test_submit_asks_for_the_declaration_on_a_terminal(cli, people, assignment, tmp_path):
    cli.login(student_token(people["alice"]))
    folder = solution_folder(tmp_path)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([dd2601_executable(), "submit", "mdn", str(folder)], stdin=terminal,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env)
    os.close(terminal)
    os.write(controller, b"No help.\nSources: the lecture notes.\n\n")
    out, err = proc.communicate(timeout=60)
    os.close(controller)
    assert proc.returncode == 0, err
    assert "Declaration of help received" in out
    assert Submission.objects.get().declaration == "No help.\nSources: the lecture notes."


def test_submit_refusals_are_the_servers_words_and_nothing_is_stored(cli, people, assignment, tmp_path):
    cli.login(student_token(people["alice"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.py").write_text("x = 1\n")
    missing = cli("submit", "mdn", str(empty), "--declaration", "none")
    assert missing.returncode == 2 and "mdn.py is missing" in missing.stderr

    short = cli("submit", "mdn", str(solution_folder(tmp_path)), "--declaration", "ok")
    assert short.returncode == 1 and "Please write your declaration" in short.stderr
    blank = cli("submit", "mdn", str(solution_folder(tmp_path)), "--declaration", " ")
    assert blank.returncode == 1 and "Declaration of help received and sources used: This field is required" in blank.stderr

    Assignment.objects.filter(pk=assignment.pk).update(opens_at=timezone.now() + dt.timedelta(days=2))
    closed = cli("submit", "mdn", str(solution_folder(tmp_path)), "--declaration", "none")
    assert closed.returncode == 1 and "This part opens at" in closed.stderr
    assert not Submission.objects.exists()

    unknown = cli("submit", "vae", str(empty), "--declaration", "none")
    assert unknown.returncode == 2 and "Your parts: mdn" in unknown.stderr


# ---- status --watch and result -----------------------------------------------------------------------------------

def _lines(proc: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if text in line:
            return line
    raise AssertionError(f"the CLI never printed {text!r}")


def test_status_watch_follows_the_run_live_and_result_shows_what_the_student_may_see(cli, people, assignment):
    alice = people["alice"]
    cli.login(student_token(alice))
    submission = graded_submission(assignment, alice, failing=("nll",), status=GradingRun.Status.QUEUED)
    run = submission.latest_run

    watching = cli.popen("status", "--watch")
    lines = _lines(watching)
    _wait_for(lines, "number 1 in the queue")
    GradingRun.objects.filter(pk=run.pk).update(status=GradingRun.Status.RUNNING, phase="training your model",
                                                started_at=timezone.now())
    _wait_for(lines, "running — training your model")
    for i, (name, passed) in enumerate([("gaussian_nll", True), ("nll", False), ("secret_probe", True)]):
        CheckResult.objects.create(
            run=run, order=i, name=name, title=name.replace("_", " "), tier="E", passed=passed,
            status="passed" if passed else "failed", points=1 if passed else 0, max_points=1,
            value=-0.5 if name == "nll" else None, threshold=-0.9 if name == "nll" else None,
            direction="max" if name == "nll" else "",
            feedback="" if passed else "Your NLL is above the threshold: train longer or add components.",
            visibility="staff" if name == "secret_probe" else "hidden")
    GradingRun.objects.filter(pk=run.pk).update(status=GradingRun.Status.DONE, points=1, max_points=2,
                                                all_passed=False, finished_at=timezone.now())
    _wait_for(lines, "graded: 1 of 2 points")
    assert watching.wait(30) == 0

    result = cli("result")
    assert result.returncode == 1  # a check failed
    assert "✗ [E] nll" in result.stdout and "train longer or add components" in result.stdout
    assert "-0.5 (≤ -0.9)" in result.stdout and "✓ [E] gaussian nll" in result.stdout
    assert "secret" not in result.stdout  # staff-only: not for the student's token


def test_another_students_submission_is_not_found(cli, people, assignment):
    theirs = graded_submission(assignment, people["bob"])
    cli.login(student_token(people["alice"]))
    out = cli("result", str(theirs.pk))
    assert out.returncode == 1 and "Not found" in out.stderr


# ---- check: the public tests in the grading sandbox ------------------------------------------------------------

def test_check_says_what_to_do_without_docker(cli, people, assignment, tmp_path):
    cli.login(student_token(people["alice"]))
    no_docker = cli("check", "mdn", str(solution_folder(tmp_path)), env={"PATH": str(Path(sys.executable).parent)})
    assert no_docker.returncode == 2 and "Docker is not available here" in no_docker.stderr
    assert "python -m pytest test_public.py" in no_docker.stderr


def test_check_runs_with_the_graders_isolation_options(settings):
    """`dd2601 check` cannot import the grader (students do not have it): its `docker run` options must
    say what `DockerBackend.container_options` says, for the same limits. A new or changed isolation
    option in the grader fails this test until the client has it too."""
    from dd2601.check import docker_run_args

    from grader.sandbox.docker_backend import DockerBackend
    from grader.sandbox.session import Limits

    limits = Limits(memory_mb=1536, cpus=2, pids=48, tmpfs_mb=96)
    grader = DockerBackend(client=None, image="img", runtime=None, gpus=[], cpu_set=(0, 1)).container_options(
        Path("/work"), limits, label="x", gpu=False)
    sandbox = {"image": "img", "memory_mb": 1536, "cpus": 2.0, "pids": 48, "tmpfs_mb": 96,
               "tmpfs_inodes": limits.tmpfs_inodes, "nofile": limits.nofile, "fsize_mb": limits.fsize_mb}
    args = docker_run_args("docker", sandbox, Path("/work"), Path("/s.json"), [], "n")
    joined = " ".join(args)

    def flag(name: str) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == name]

    assert flag("--network") == [grader.pop("network_mode")]
    assert grader.pop("read_only") is True and "--read-only" in args
    assert flag("--tmpfs") == [f"/tmp:{grader.pop('tmpfs')['/tmp']}"]
    assert flag("--shm-size") == [grader.pop("shm_size")] and flag("--ipc") == [grader.pop("ipc_mode")]
    assert flag("--cap-drop") == grader.pop("cap_drop")
    assert [o for o in grader.pop("security_opt") if not o.startswith("seccomp=")] == [
        o for o in flag("--security-opt") if not o.startswith("seccomp=")]
    assert flag("--user") == [grader.pop("user")] and flag("--pids-limit") == [str(grader.pop("pids_limit"))]
    assert flag("--memory") == [grader.pop("mem_limit")] and flag("--memory-swap") == [grader.pop("memswap_limit")]
    assert float(flag("--cpus")[0]) * 1e9 == grader.pop("nano_cpus")
    grader.pop("cpuset_cpus")  # the grader's host cores (a slot's, or its caller's): a student's machine has its own
    grader.pop("cpu_shares")  # a weight among one worker's sandboxes (spares yield): nothing to mirror locally
    assert sorted(flag("--ulimit")) == sorted(f"{u['Name']}={u['Soft']}:{u['Hard']}" for u in grader.pop("ulimits"))
    assert grader.pop("init") is True and "--init" in args
    assert grader.pop("volumes") == {"/work": {"bind": "/submission", "mode": "ro"}} and "/work:/submission:ro" in joined
    env = dict(e.split("=", 1) for e in flag("-e"))
    assert {k: v for k, v in env.items() if k != "PYTHONPATH"} == grader.pop("environment")
    assert grader.pop("log_config").type == "none" and flag("--log-driver") == ["none"]
    # What remains is how the grader talks to its harness (stdin, attach), its labels and the image.
    assert set(grader) == {"image", "command", "stdin_open", "tty", "detach", "working_dir", "labels"}


@pytest.mark.sandbox
@pytest.mark.timeout(400)
def test_check_runs_the_public_tests_in_the_sandbox(cli, people, assignment, tmp_path, settings):
    cli.login(student_token(people["alice"]))
    starter = cli("check", "mdn", str(solution_folder(tmp_path, starter=True)), timeout=300)
    assert starter.returncode == 1, starter.stdout + starter.stderr
    assert "grading sandbox" in starter.stdout and "failed" in starter.stdout

    edited = solution_folder(tmp_path)
    (edited / "test_public.py").write_text("def test_nothing():\n    pass\n")  # the course's copy is run instead
    reference = cli("check", "mdn", str(edited), timeout=300)
    assert reference.returncode == 0, reference.stdout + reference.stderr
    assert "11 passed" in reference.stdout and "Every public test passed" in reference.stdout
