"""The red-team corpus: malicious submissions graded in the real sandboxes (docker and bwrap).

Each test grades one attack (tests/redteam/attacks/<name>/) and asserts the outcome: no check passes
that an honest failing submission does not pass, the student gets a clear message, and nothing is left
behind (the `run` fixture checks containers, cgroups, processes, files and the worker's canary secret).
Where bwrap cannot do what docker does, the bwrap case is marked xfail with the reason; it still runs.
See README.md for the table.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from grader import archives
from grader.parts import load_part
from grader.workspace import check_source

from .conftest import ATTACKS, BASELINES, DAEMON_TOKEN, _host_processes_with, assert_no_gain, fast_variant

pytestmark = [pytest.mark.sandbox]


def xfail_on_bwrap(request, backend: str, reason: str) -> None:
    if backend == "bwrap":
        request.applymarker(pytest.mark.xfail(reason=f"bwrap cannot defend this: {reason}", strict=True))


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line[len(prefix):].strip() for line in text.splitlines() if line.startswith(prefix)]


# ---- the baselines -----------------------------------------------------------------------------------

def test_honest_training_passes_under_the_sandbox_filter(run, backend):
    """Not an attack: PyTorch imports and trains (DataLoader workers: fork, pipes, /dev/shm, AF_UNIX) under
    the seccomp filter and the limits of both backends."""
    generous = fast_variant(load_part("mdn"), train_seconds_cpu=20.0, run_seconds=90.0)  # a loaded machine is slow
    outcome = run(BASELINES / "honest_training", part_spec=generous)
    assert outcome.report.error == "", outcome.explain()
    assert "TRAINED" in outcome.report.student_log, outcome.explain()
    assert {"weights_simplex", "density_integrates", "mixture_log_prob"} <= outcome.passed, outcome.explain()


def test_honest_failing_baseline(baseline):
    assert baseline.report.error == "" and baseline.report.points <= 1
    assert "not implemented yet" in baseline.feedback


# ---- resource exhaustion -----------------------------------------------------------------------------

def test_fork_bomb_stops_at_the_pids_limit(run, baseline, part):
    outcome = run(ATTACKS / "fork_bomb")
    assert_no_gain(outcome, baseline)
    stopped = int(re.search(r"fork bomb stopped after (\d+) children", outcome.report.student_log).group(1))
    assert stopped < part.resources.pids
    assert "fit raised BlockingIOError" in outcome.feedback, outcome.explain()


def test_memory_beyond_the_limit_is_stopped(run, baseline):
    outcome = run(ATTACKS / "memory_hog")
    assert_no_gain(outcome, baseline)
    assert "more than the memory limit of 2048 MB" in outcome.report.error, outcome.explain()


def test_filling_tmp_ends_with_a_clear_disk_full_message(run, baseline):
    outcome = run(ATTACKS / "fill_tmp")
    assert_no_gain(outcome, baseline)
    assert "FILLED" not in outcome.report.student_log
    assert "fit raised OSError" in outcome.feedback, outcome.explain()
    assert "/tmp holds 64 MB" in outcome.feedback  # the grader says what the limit is


def test_filling_dev_shm_stops_at_its_size(run, baseline):
    outcome = run(ATTACKS / "fill_shm")
    assert_no_gain(outcome, baseline)
    assert "SHM FILLED" not in outcome.report.student_log
    written = int(re.search(r"SHM wrote (\d+) MB", outcome.report.student_log).group(1))
    assert written <= 64
    assert "No space left on device" in outcome.feedback, outcome.explain()


def test_a_million_files_hit_the_inode_limit(run, baseline, backend, request):
    xfail_on_bwrap(request, backend, "bubblewrap 0.8 cannot limit a tmpfs's inodes; the files are bounded only "
                                     "by the memory cgroup (kernel memory) and the call's time limit")
    outcome = run(ATTACKS / "million_files")
    assert_no_gain(outcome, baseline)
    made = lines_starting(outcome.report.student_log, "MILLION made")
    assert made and int(made[0].split()[0]) <= 16384, outcome.explain()
    assert "No space left on device" in outcome.feedback


def test_printing_100_mb_is_cut_off(run, baseline):
    outcome = run(ATTACKS / "print_flood")
    assert_no_gain(outcome, baseline)
    assert "printed more than 16 MB" in outcome.report.error, outcome.explain()
    assert len(outcome.report.student_log) < 300 * 1024 and len(outcome.report.staff_log) < 300 * 1024


def test_a_64_mb_line_without_newline_is_cut_off(run, baseline):
    outcome = run(ATTACKS / "flood_no_newline")
    assert_no_gain(outcome, baseline)
    assert "printed more than 16 MB" in outcome.report.error, outcome.explain()
    assert len(outcome.report.student_log) < 300 * 1024


def test_binary_output_is_stored_as_safe_text(run, baseline):
    outcome = run(ATTACKS / "invalid_utf8")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "\x00" not in log and "\ufffd" in log and "invalid" in log
    log.encode("utf-8")  # valid text: it can be stored and rendered
    assert "fit raised RuntimeError: binary output done" in outcome.feedback


def test_busy_loop_ignoring_sigterm_is_killed_at_the_call_limit(run, baseline):
    outcome = run(ATTACKS / "ignore_sigterm_busy")
    assert_no_gain(outcome, baseline)
    assert re.search(r"fit did not finish within its limit of \d+ s", outcome.report.error), outcome.explain()
    assert outcome.seconds < 45


@pytest.mark.parametrize("attack", ["sleep_at_import", "loop_at_import"])
def test_never_finishing_the_import_hits_the_import_limit(run, baseline, settings, attack):
    settings.GRADER_IMPORT_SECONDS = 12
    outcome = run(ATTACKS / attack)
    assert_no_gain(outcome, baseline)
    assert "importing mdn.py did not finish within its limit of 12 s" in outcome.report.error, outcome.explain()
    assert outcome.seconds < 40


def test_sleeping_forever_in_a_call_hits_the_call_limit(run, baseline, part):
    outcome = run(ATTACKS / "sleep_in_call")
    assert_no_gain(outcome, baseline)
    limit = part.entry_points["model.forward"].seconds or part.resources.call_seconds  # the manifest's own limit
    assert f"model.forward did not finish within its limit of {limit:.0f} s" in outcome.report.error, outcome.explain()


def test_slow_calls_hit_the_limit_of_the_whole_run(run, baseline, part):
    """Every call stays under its own limit (7 s of 10: the manifest's per-entry limits are lifted to the
    variant's 10 s here, so that only the whole run's limit can stop it)."""
    mdn = load_part("mdn")
    entries = {name: dataclasses.replace(entry, seconds=None) for name, entry in mdn.entry_points.items()}
    short = fast_variant(dataclasses.replace(mdn, entry_points=entries), run_seconds=25.0)
    outcome = run(ATTACKS / "slow_everything", part_spec=short)
    assert_no_gain(outcome, baseline)
    assert "The whole run exceeded its time limit" in outcome.report.error, outcome.explain()
    assert outcome.seconds < 25 + 20


def test_a_daemonised_child_does_not_outlive_the_run(run, baseline):
    outcome = run(ATTACKS / "daemon_child")
    assert_no_gain(outcome, baseline)
    assert "DAEMON started" in outcome.report.student_log, outcome.explain()
    assert "fit raised RuntimeError" in outcome.feedback
    from .conftest import _wait_until_gone

    assert not _wait_until_gone(lambda: _host_processes_with(DAEMON_TOKEN)), "the daemon survived the run"


def test_a_harness_that_stops_reading_cannot_hang_the_worker(run, baseline):
    outcome = run(ATTACKS / "stall_reader")
    assert_no_gain(outcome, baseline)
    # The first call after fit stalls (fit_arm, the A tier's training, which comes before any query).
    assert re.search(r"[\w.]+ did not (finish|read its input) within its (time )?limit", outcome.report.error), \
        outcome.explain()
    assert outcome.seconds < 45


def test_a_260_mb_result_is_refused_by_its_size(run, baseline):
    outcome = run(ATTACKS / "huge_result")
    assert_no_gain(outcome, baseline)
    assert "The result of model.forward is larger than the limit of 256 MB" in outcome.report.error, \
        outcome.explain()


# ---- escape and disclosure -----------------------------------------------------------------------------

def test_no_network_no_dns_no_host_services(run, baseline):
    outcome = run(ATTACKS / "network_dns")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "REACHED" not in log and "RESOLVED" not in log, outcome.explain()
    assert log.count("blocked ") >= 9 and "dns blocked" in log and "udp blocked" in log
    assert lines_starting(log, "INTERFACES") == ["['lo']"]


ALLOWED_ENV = {"PATH", "HOSTNAME", "HOME", "LANG", "PWD", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
               "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPATH"}


def test_proc_shows_no_secret_and_no_grader_files(run, baseline, canary):
    outcome = run(ATTACKS / "proc_environ_mountinfo")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    environs = [line for line in log.splitlines() if line.startswith("PROC /proc/") and "/environ:" in line]
    assert environs, outcome.explain()
    for line in environs:
        names = set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", line.split(":", 1)[1]))
        assert names <= ALLOWED_ENV, f"unexpected variables in the sandbox: {names - ALLOWED_ENV}"
    mountinfo = lines_starting(log, "PROC /proc/self/mountinfo:")[0]
    assert "assignments" not in mountinfo and "courseware" not in mountinfo and "docker.sock" not in mountinfo
    assert canary not in log


def test_no_container_engine_socket_is_reachable(run, baseline):
    outcome = run(ATTACKS / "docker_socket")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert lines_starting(log, "SOCKETS FOUND") == ["[]"], outcome.explain()
    assert "CONNECTED" not in log


def test_checks_solution_database_and_archives_are_not_in_the_sandbox(run, baseline):
    outcome = run(ATTACKS / "find_hidden")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert lines_starting(log, "READABLE") == ["[]"], outcome.explain()
    found = lines_starting(log, "FOUND")[0]
    for name in ("checks.py", "part.toml", "oral.toml", "grading.toml", "db.sqlite3", "manage.py", "docker.sock",
                 "courseware", "assignments", "solution"):
        assert f"/{name}'" not in found, found


def test_nothing_outside_tmp_is_writable(run, baseline):
    outcome = run(ATTACKS / "write_outside_tmpfs")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "WROTE" not in log, outcome.explain()
    assert "CHMOD /submission" not in log and "CHMOD /opt/harness" not in log
    assert "TMP OK" in log and log.count("denied ") >= 18


PROBES = ["setuid", "setgid", "setgroups", "unshare", "mount", "ptrace", "process_vm_readv", "kcmp", "keyctl",
          "add_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "chroot", "setns", "pivot_root",
          "name_to_handle_at", "open_by_handle_at", "personality", "init_module", "kexec_load", "acct", "swapon",
          "reboot", "modify_ldt", "mknod", "socket-netlink", "socket-packet", "socket-vsock", "socket-alg",
          "socket-raw-inet"]


def test_privilege_probes_are_all_denied(run, baseline):
    outcome = run(ATTACKS / "privilege_probes")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    results = dict(line.split(": ", 1) for line in lines_starting(log, "PROBE"))
    assert set(results) == set(PROBES), outcome.explain()
    assert not [line for line in lines_starting(log, "PROBE") if "ALLOWED" in line], outcome.explain()
    # The seccomp filter (not only a missing capability) is what says no to these:
    for name in ("unshare", "mount", "ptrace", "keyctl", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
                 "setns", "kcmp", "socket-netlink", "socket-vsock"):
        assert results[name] == "DENIED EPERM", (name, results[name])
    status = dict(item.split("=", 1) for item in lines_starting(log, "STATUS")[0].split())
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status
    assert status["CapEff"] == "0000000000000000" and status["CapPrm"] == "0000000000000000", status
    assert not status["Uid"].startswith("0"), status


def test_setuid_programs_give_no_root(run, baseline):
    outcome = run(ATTACKS / "setuid_binaries")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert lines_starting(log, "EUID") == ["10001"], outcome.explain()
    assert "out='0'" not in log


def test_the_environment_holds_no_worker_secret(run, baseline, canary):
    outcome = run(ATTACKS / "env_dump")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "ENVIRON" in log and canary not in log, outcome.explain()
    names = set(re.findall(r"'([A-Z_][A-Z0-9_]*)'", lines_starting(log, "ENVIRON AT IMPORT")[0]))
    assert names <= ALLOWED_ENV, names - ALLOWED_ENV
    for secret in ("DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "AWS_SECRET_ACCESS_KEY", "GRADER_SECRET_SEED"):
        assert secret not in log


def test_resource_limits_cannot_be_raised(run, baseline, part):
    outcome = run(ATTACKS / "raise_limits")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "RAISED" not in log, outcome.explain()
    limits = {line.split()[0]: line.split(" ", 1)[1] for line in lines_starting(log, "LIMIT")}
    assert limits["RLIMIT_NOFILE"] == "(256, 256)" and limits["RLIMIT_CORE"] == "(0, 0)"
    assert limits["RLIMIT_FSIZE"] == f"({64 * 2**20}, {64 * 2**20})"
    stopped = int(re.search(r"FDS stopped after (\d+)", log).group(1))
    assert stopped < 256


def test_the_ipc_namespace_is_private(run, baseline):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x2601_0000 + os.getpid() % 0xFFFF
    segment = libc.shmget(key, 4096, 0o1000 | 0o600)  # a shared memory segment on the worker's host
    assert segment >= 0 and str(key) in Path("/proc/sysvipc/shm").read_text()
    try:
        outcome = run(ATTACKS / "ipc_namespace")
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    assert_no_gain(outcome, baseline)
    shm = lines_starting(outcome.report.student_log, "IPC shm keys")
    assert shm and str(key) not in shm[0] and str(hex(key)) not in shm[0], outcome.explain()
    assert int(lines_starting(outcome.report.student_log, "SHMGET own segment")[0]) >= 0


def test_detecting_the_grader_gains_nothing(run, baseline):
    outcome = run(ATTACKS / "detect_grader")
    assert "GRADER DETECTED=True" in outcome.report.student_log  # not defended: it can tell, see README
    assert_no_gain(outcome, baseline)


def test_a_dropped_program_cannot_be_executed(run, baseline, backend, request):
    xfail_on_bwrap(request, backend, "bubblewrap 0.8 mounts tmpfs without noexec (seccomp, namespaces and limits "
                                     "still apply to whatever runs)")
    outcome = run(ATTACKS / "exec_dropped_binary")
    assert_no_gain(outcome, baseline)
    log = outcome.report.student_log
    assert "EXEC OK" not in log and log.count("EXEC DENIED") == 2, outcome.explain()


# ---- grading integrity -----------------------------------------------------------------------------------

def test_exit_zero_at_import_is_a_failed_import(run, baseline):
    outcome = run(ATTACKS / "exit_at_import")
    assert_no_gain(outcome, baseline)
    assert "could not be imported: SystemExit" in outcome.report.error, outcome.explain()
    assert outcome.report.points == 0


def test_os_exit_at_import_is_a_crash(run, baseline):
    outcome = run(ATTACKS / "os_exit_at_import")
    assert_no_gain(outcome, baseline)
    assert "ended during importing mdn.py (exit code 0)" in outcome.report.error, outcome.explain()
    assert outcome.report.points == 0


def test_exit_zero_mid_call_is_an_exception(run, baseline):
    outcome = run(ATTACKS / "exit_mid_call")
    assert_no_gain(outcome, baseline)
    assert "fit raised SystemExit" in outcome.feedback, outcome.explain()


def test_os_exit_mid_call_is_a_crash(run, baseline):
    outcome = run(ATTACKS / "os_exit_mid_call")
    assert_no_gain(outcome, baseline)
    assert "ended during model.forward (exit code 0)" in outcome.report.error, outcome.explain()


def test_killing_itself_is_a_crash_not_a_memory_limit(run, baseline):
    outcome = run(ATTACKS / "kill_self")
    assert_no_gain(outcome, baseline)
    assert "killed by signal 9 (SIGKILL)" in outcome.report.error, outcome.explain()
    assert "memory" not in outcome.report.error


def test_lying_objects_cannot_be_sent(run, baseline):
    outcome = run(ATTACKS / "lying_objects")
    assert_no_gain(outcome, baseline)
    assert "model.forward raised ResultError" in outcome.feedback, outcome.explain()


def test_a_lying_tensor_subclass_arrives_as_plain_nan(run, baseline):
    outcome = run(ATTACKS / "tensor_subclass")
    assert_no_gain(outcome, baseline)
    assert "contains NaN or infinite values" in outcome.feedback, outcome.explain()


def test_nan_and_inf_results_fail_validation(run, baseline):
    outcome = run(ATTACKS / "nan_inf")
    assert_no_gain(outcome, baseline)
    assert outcome.feedback.count("contains NaN or infinite values") >= 3, outcome.explain()


def test_wrong_dtype_and_shape_are_named(run, baseline):
    outcome = run(ATTACKS / "wrong_dtype_shape")
    assert_no_gain(outcome, baseline)
    feedback = outcome.feedback
    assert "should be a floating-point tensor, not torch.int64" in feedback, outcome.explain()
    assert "has shape [256, 1]; expected 1 dimensions" in feedback or "expected 1 dimensions" in feedback
    assert "should be a tensor, not list" in feedback


def test_monkeypatching_torch_in_the_sandbox_does_not_reach_the_grader(run, baseline):
    outcome = run(ATTACKS / "monkeypatch_torch")
    assert "PATCHED" in outcome.report.student_log, outcome.explain()
    assert_no_gain(outcome, baseline)
    assert "contains NaN or infinite values" in outcome.feedback


def test_rewriting_the_wire_encoder_yields_unreadable_results(run, baseline):
    outcome = run(ATTACKS / "monkeypatch_wire")
    assert "PATCHED wire.pack_value" in outcome.report.student_log, outcome.explain()
    assert_no_gain(outcome, baseline)
    assert "could not be read: it is not in the grader's format" in outcome.feedback


def test_frames_forged_into_the_protocol_fd_corrupt_the_channel(run, baseline):
    outcome = run(ATTACKS / "forged_frames_fd")
    assert "FORGING into fds [" in outcome.report.student_log and "FORGING into fds []" not in outcome.report.student_log
    assert_no_gain(outcome, baseline)  # a forged early answer to fit() is no more than returning early
    assert "The grader's channel was corrupted" in outcome.report.error, outcome.explain()


def test_frames_printed_on_stdout_are_just_output(run, baseline):
    outcome = run(ATTACKS / "forged_frames_stdout")
    assert_no_gain(outcome, baseline)
    assert "FORGED frames" in outcome.report.student_log and "DDG1" in outcome.report.student_log
    assert "fit raised RuntimeError" in outcome.feedback, outcome.explain()
    assert outcome.report.points == 0


def test_a_fake_all_passed_verdict_stays_in_the_log(run, baseline):
    outcome = run(ATTACKS / "fake_all_passed")
    assert_no_gain(outcome, baseline)
    assert "POINTS 10/10" in outcome.report.student_log
    assert outcome.report.points == 0 and not outcome.report.all_passed
    assert "POINTS 10/10" not in outcome.feedback and "fit raised RuntimeError" in outcome.feedback


def test_shipped_torch_numpy_sitecustomize_conftest_are_never_imported(run, baseline, tmp_path):
    folder = tmp_path / "shadow_modules"
    shutil.copytree(ATTACKS / "shadow_modules", folder)
    # Written here, not kept in the repository: pytest itself would import a conftest.py it finds.
    (folder / "conftest.py").write_text((folder / "sitecustomize.py").read_text().replace("sitecustomize", "conftest"))
    outcome = run(folder)
    assert_no_gain(outcome, baseline)
    assert "SHADOW EXECUTED" not in outcome.logs, outcome.explain()
    check = lines_starting(outcome.report.student_log, "SHADOW CHECK")[0]
    assert "torch=/opt/site/torch/__init__.py" in check and "numpy=/opt/site/numpy/__init__.py" in check
    assert "json=/usr/lib/python3.11/json/__init__.py" in check


def test_pickles_are_never_unpickled_by_the_grader(run, baseline):
    marker = Path("/tmp/dd2601-redteam-pickle-pwned")
    marker.unlink(missing_ok=True)
    outcome = run(ATTACKS / "pickle_result")
    assert_no_gain(outcome, baseline)
    assert not marker.exists(), "something unpickled the payload on the grader's host"
    refused = ("raised ResultError", "should be a tensor, not dict", "could not be read")
    for check in outcome.report.checks:
        # Checks of entry points the attack does not define (the EM warm-up, the A tier) fail for that.
        missing = any(m in check.feedback for m in ("defines no callable", "raised AttributeError",
                                                    "fit_arm() did not return a model"))
        if check.name != "fit_budget" and not missing:
            assert any(r in check.feedback for r in refused), outcome.explain()
    # refused where it is read: by the harness (ResultError) or, in a round, by the grader's reader
    assert re.search(r"model\.forward (raised ResultError|could not be read)", outcome.feedback), outcome.explain()
    assert "gaussian_nll could not be read" in outcome.feedback


def _leaked_values(outcome, prefix: str = "LEAK") -> set[str]:
    return set(re.findall(r"-?\d+\.\d{6}", "\n".join(line for line in outcome.report.staff_log.splitlines() if prefix in line)))


def test_printed_hidden_inputs_reach_staff_only(run, baseline):
    outcome = run(ATTACKS / "print_hidden_inputs")
    assert_no_gain(outcome, baseline)
    values = _leaked_values(outcome)
    assert len(values) > 100, outcome.explain()  # the attack printed them: into the staff log
    visible = outcome.student_visible
    assert "LEAK" not in visible
    assert not [v for v in values if v in visible]


def test_hidden_inputs_in_exception_messages_reach_staff_only(run, baseline):
    outcome = run(ATTACKS / "leak_via_exception")
    assert_no_gain(outcome, baseline)
    values = _leaked_values(outcome)
    assert len(values) > 20, outcome.explain()
    visible = outcome.student_visible
    assert "LEAK" not in visible and not [v for v in values if v in visible]
    assert "model.forward raised ValueError at mdn.py:" in outcome.feedback  # still useful: type and line


def test_a_forged_error_report_cannot_carry_hidden_inputs(run, baseline):
    outcome = run(ATTACKS / "forged_error_report")
    assert_no_gain(outcome, baseline)
    values = _leaked_values(outcome)
    assert len(values) > 10, outcome.explain()
    visible = outcome.student_visible
    assert not [v for v in values if v in visible], outcome.explain()
    # A forged report during a call that saw no hidden input (fit_arm, before any query) reaches the
    # student, as any error message of theirs does; it has nothing hidden to carry.
    assert not [line for line in visible.splitlines() if "LEAK" in line and re.search(r"\d\.\d{6}", line)]
    assert "model.forward raised an exception while the grader tested it on hidden inputs" in outcome.feedback


@pytest.mark.xfail(reason="not defended: a hidden check's feedback shows one metric value (4 significant digits) "
                          "computed from the student's outputs, which can encode a hidden input; hidden data is "
                          "drawn fresh per run, so what leaks is useless for the next run", strict=False)
def test_metric_feedback_cannot_carry_a_hidden_input(run, baseline):
    from grader.outcomes import format_number

    outcome = run(ATTACKS / "metric_channel_leak")
    assert_no_gain(outcome, baseline)
    encoded = float(re.search(r"ENCODED ([0-9.e-]+)", outcome.report.staff_log).group(1))
    assert format_number(encoded) not in outcome.student_visible


# ---- uploads the archive rules refuse (no sandbox involved; backend-independent) -----------------------------

@pytest.mark.parametrize("name,content", [
    ("evil.pth", b"import os; os.system('touch /tmp/pwned')\n"),
    ("model.pt", b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94."),
    ("weights.pkl", b"\x80\x04K\x01."),
    ("state.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"),
    ("payload.so", b"\x7fELF\x02\x01\x01"),
])
def test_pickles_pth_and_binaries_are_rejected_at_upload(tmp_path, name, content):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "mdn.py").write_text("def fit(x, y, *, seed, max_seconds):\n    raise NotImplementedError\n")
    (folder / name).write_bytes(content)
    part = load_part("mdn")
    with pytest.raises(archives.ArchiveError) as caught:
        check_source(folder, part)
    assert name in str(caught.value)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("mdn.py", "x = 1\n")
        zf.writestr(name, content)
    with pytest.raises(archives.ArchiveError):
        archives.check_upload([("submission.zip", zipped.getvalue())],
                              archives.ArchivePolicy(allowed_patterns=part.allowed_patterns))
