"""The grading API and the engine, driven in-process (grader/sandbox/inprocess_backend.py): no Docker, no
subprocess, so the whole file runs in a few seconds. Each test writes a toy part (manifest + checks.py)
and a toy submission, grades it with the real engine, and reads the outcomes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.engine import grade
from grader.outcomes import Status
from grader.parts import load_part_dir
from grader.sandbox import InfrastructureError

MANIFEST = """
slug = "toy"
title = "A toy part"
module = "toy.py"
[resources]
run_seconds = 60
call_seconds = 10
[training]
cpu_seconds = 5
[entry_points.fit]
args = ["x: float32[N,2]"]
kwargs = ["seed: int", "max_seconds: float"]
returns = "object model"
[entry_points."model.predict"]
args = ["x: float32[B,2]"]
returns = "float32[B]"
[entry_points.double]
args = ["x: float32[B]"]
returns = "float32[B]"
[checks.fit_budget]
title = "Training within budget"
threshold = 7.0
direction = "max"
unit = "s"
[checks.predict]
title = "Predictions"
threshold = 1e-6
direction = "max"
[checks.double]
title = "double doubles"
threshold = 1e-6
direction = "max"
measure = "largest error"
[checks.double_again]
title = "double, once more"
"""

GOOD = """
import torch
class Model(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.scale = torch.nn.Parameter(torch.ones(()))
    def predict(self, x):
        return self.scale * x.sum(1)
def build_model(config):
    return Model(config)
def fit(x, *, seed, max_seconds):
    return Model({"width": 1})
def double(x):
    return 2 * x
"""


def make_part(tmp_path: Path, checks: str, manifest: str = MANIFEST):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "part.toml").write_text(manifest)
    (folder / "checks.py").write_text(textwrap.dedent(checks))
    return load_part_dir(folder)


def run(tmp_path: Path, checks: str, student: str = GOOD, manifest: str = MANIFEST):
    part = make_part(tmp_path, checks, manifest)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "toy.py").write_text(textwrap.dedent(student))
    report = grade(part, submission, backend_name="unsafe-inprocess", seed=1)
    return report, {c.name: c for c in report.checks}


STANDARD_CHECKS = """
import torch
def grade(g):
    model = g.train("fit", torch.zeros(10, 2), check="fit_budget")
    with g.section("predict"):
        x = torch.randn(4, 2, dtype=torch.float64)
        g.metric("predict", float((g.call("model.predict", x) - x.float().double().sum(1)).abs().max()))
    with g.section("double", "double_again"):
        x = torch.arange(5, dtype=torch.float64)
        g.metric("double", float((g.call("double", x) - 2 * x).abs().max()))
        g.record("double_again", True, "fine")
"""


def test_an_honest_toy_submission_passes_every_check(tmp_path):
    report, checks = run(tmp_path, STANDARD_CHECKS)
    assert report.all_passed, [(c.name, c.status, c.feedback) for c in report.checks]
    assert report.grader_errors == []
    assert checks["fit_budget"].value < 7


def test_a_student_exception_fails_only_its_section_and_says_why(tmp_path):
    report, checks = run(tmp_path, STANDARD_CHECKS, GOOD.replace("return 2 * x", "raise ValueError('no')"))
    assert checks["predict"].passed
    for name in ("double", "double_again"):
        assert checks[name].status == Status.NOT_CHECKED
        assert "double raised ValueError" in checks[name].feedback
    assert report.grader_errors == []


def test_a_bug_in_the_checks_is_a_grader_error_of_its_section_only(tmp_path):
    buggy = STANDARD_CHECKS.replace('g.record("double_again", True, "fine")', "1 / 0")
    report, checks = run(tmp_path, buggy)
    assert checks["predict"].passed and checks["double"].passed
    assert checks["double_again"].status == Status.GRADER_ERROR
    assert checks["double_again"].points == 0
    assert "error in the grader, not in your code" in checks["double_again"].feedback
    assert "ZeroDivisionError" in checks["double_again"].staff_note
    assert len(report.grader_errors) == 1


def test_the_platform_failing_inside_a_section_stops_the_run_for_a_retry(tmp_path):
    """A lost Docker engine surfaces inside whatever section is calling the sandbox: it must reach the task
    (which queues the run again), not become that section's grader error in a finished run."""
    lost = STANDARD_CHECKS.replace('g.record("double_again", True, "fine")',
                                   'raise InfrastructureError("lost the Docker engine while the sandbox ran")')
    lost = "from grader.sandbox import InfrastructureError\n" + lost
    with pytest.raises(InfrastructureError, match="lost the Docker engine"):
        run(tmp_path, lost)


def test_a_check_that_nothing_records_is_a_grader_error(tmp_path):
    forgetful = STANDARD_CHECKS.replace('g.record("double_again", True, "fine")', "pass")
    report, checks = run(tmp_path, forgetful)
    assert checks["double"].passed
    assert checks["double_again"].status == Status.GRADER_ERROR
    assert report.grader_errors


def test_a_failed_training_marks_what_depends_on_it_without_flags(tmp_path):
    student = GOOD.replace("return Model({\"width\": 1})", "raise RuntimeError('diverged')")
    report, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert checks["fit_budget"].status == Status.NOT_CHECKED
    assert "fit raised RuntimeError" in checks["fit_budget"].feedback
    assert checks["predict"].status == Status.NOT_CHECKED
    assert checks["predict"].feedback == "Not checked: fit() did not return a model (see its training check)."
    assert checks["double"].passed  # independent of training


def test_an_unimplemented_entry_point_is_not_attempted(tmp_path):
    student = GOOD.replace("return Model({\"width\": 1})", "raise NotImplementedError")
    _, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert checks["fit_budget"].status == Status.NOT_ATTEMPTED
    assert checks["fit_budget"].feedback.startswith("Not attempted: fit() is not implemented yet")
    assert checks["predict"].status == Status.NOT_ATTEMPTED
    assert "public tests" not in checks["predict"].feedback


def test_a_figure_that_fails_to_draw_never_discards_the_results(tmp_path):
    figures = STANDARD_CHECKS + """
    def broken(fig):
        raise RuntimeError("matplotlib fell over")
    def fine(fig):
        fig.subplots().plot([0, 1], [1, 0])
    assert not g.figure("broken", "never shown", broken)
    assert g.figure("fine", "a line", fine)
"""
    report, _ = run(tmp_path, figures)
    assert report.all_passed
    assert [a.name for a in report.artifacts] == ["fine"]
    assert report.artifacts[0].data.startswith(b"\x89PNG")
    assert "figure 'broken' was not drawn" in report.staff_log and "matplotlib fell over" in report.staff_log


def test_a_wrong_shape_is_named_in_the_students_words(tmp_path):
    student = GOOD.replace("return self.scale * x.sum(1)", "return x")
    _, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert checks["predict"].status == Status.NOT_CHECKED
    assert "model.predict returned a value that has shape [4, 2]; expected 1 dimensions [B]" in checks["predict"].feedback


def test_an_import_error_stops_the_run_with_the_students_traceback(tmp_path):
    report, checks = run(tmp_path, STANDARD_CHECKS, "import torch\nraise ImportError('missing thing')\n")
    assert "could not be imported: ImportError: missing thing" in report.error
    assert all(c.status == Status.NOT_CHECKED for c in checks.values())
    assert "missing thing" in report.student_log


def test_an_error_outside_any_section_keeps_what_was_recorded(tmp_path):
    outside = STANDARD_CHECKS + "    raise KeyError('oops')\n"
    report, checks = run(tmp_path, outside)
    assert all(checks[n].passed for n in checks)  # everything was recorded before the bug
    assert report.grader_errors and "KeyError" in report.grader_errors[0]


def test_nan_never_passes_and_detail_is_always_shown(tmp_path):
    nan = STANDARD_CHECKS.replace(
        'g.metric("double", float((g.call("double", x) - 2 * x).abs().max()))',
        'g.metric("double", float("nan"), hint="HINT", detail="DETAIL")')
    _, checks = run(tmp_path, nan)
    assert checks["double"].status == Status.FAILED
    assert "HINT" in checks["double"].feedback and "DETAIL" in checks["double"].feedback


def test_a_slow_fit_fails_its_budget_check_with_the_hint(tmp_path):
    slow = GOOD.replace("return Model({", "import time; time.sleep(2.3); return Model({")
    quick_budget = MANIFEST.replace("cpu_seconds = 5", "cpu_seconds = 0.1").replace("threshold = 7.0", "threshold = 2.1")
    _, checks = run(tmp_path, STANDARD_CHECKS, slow, quick_budget)
    assert checks["fit_budget"].status == Status.FAILED
    assert "max_seconds" in checks["fit_budget"].feedback
    assert checks["predict"].passed  # a slow model is still a model


def test_a_training_that_returns_at_once_is_flagged_to_the_examiner_only(tmp_path):
    """GOOD's fit returns at once: the examiner is told, in the run's flags and the staff log, never the student,
    and no check changes (a flag is never a grade). The flag's share of the budget comes from part.toml."""
    report, checks = run(tmp_path, STANDARD_CHECKS)
    assert len(report.flags) == 1 and report.flags[0].startswith("fit() returned after"), report.flags
    assert "of its 5 s budget" in report.flags[0]
    assert "EXAMINER FLAG: fit() returned after" in report.staff_log
    assert "EXAMINER FLAG" not in report.student_log and "returned after" not in report.student_log
    assert all(c.passed for c in checks.values())


def test_a_training_that_takes_its_time_is_not_flagged(tmp_path):
    paced = GOOD.replace("return Model({", "import time; time.sleep(0.4); return Model({")
    # 0.4 s of a 5 s budget is 8 %: flagged under the default 5 %? no; under a part's 10 %, yes
    report, _ = run(tmp_path, STANDARD_CHECKS, paced)
    assert report.flags == []
    (tmp_path / "strict").mkdir()
    strict = MANIFEST.replace("cpu_seconds = 5", "cpu_seconds = 5\nquick_fit_fraction = 0.1")
    report, _ = run(tmp_path / "strict", STANDARD_CHECKS, paced, strict)
    assert len(report.flags) == 1, report.flags


def test_every_outcome_has_the_manifests_points_and_order(tmp_path):
    report, checks = run(tmp_path, STANDARD_CHECKS)
    assert [c.name for c in report.checks] == ["fit_budget", "predict", "double", "double_again"]
    assert {c.name: c.as_dict()["status"] for c in report.checks} == dict.fromkeys(checks, "passed")


@pytest.mark.parametrize("name", ["UPPER", "../x", "a" * 70])
def test_figure_names_are_slugs(tmp_path, name):
    checks = STANDARD_CHECKS + f"""
    assert not g.figure({name!r}, "x", lambda fig: None)
"""
    report, _ = run(tmp_path, checks)
    assert report.artifacts == [] and report.grader_errors == []


# ---- training and scoring are separate lifetimes ----

def test_what_training_leaves_outside_the_state_never_reaches_scoring(tmp_path):
    cheat = GOOD.replace("def fit(x, *, seed, max_seconds):", "SEEN = []\ndef fit(x, *, seed, max_seconds):\n    SEEN.append(x)")
    cheat = cheat.replace("return self.scale * x.sum(1)", "return self.scale * x.sum(1) + 100 * len(SEEN)")
    report, checks = run(tmp_path, STANDARD_CHECKS, cheat)
    assert checks["predict"].passed  # the scoring sandbox imported the module afresh: SEEN is empty there
    assert report.timings["sandboxes train"] == 1 and report.timings["sandboxes score"] >= 1


def test_each_round_is_a_fresh_sandbox(tmp_path):
    counting = GOOD.replace("def double(x):\n    return 2 * x",
                            "CALLS = []\ndef double(x):\n    CALLS.append(1)\n    return len(CALLS) * x")
    rounds = """
import torch
def grade(g):
    g.train("fit", torch.zeros(10, 2), check="fit_budget")
    x = torch.arange(5, dtype=torch.float64)
    with g.section("double", "double_again", "predict"):
        with g.round():
            first = g.call("double", x)
        with g.round():
            second = g.call("double", x)
        g.metric("double", float((first - 2 * x).abs().max()))
        g.record("double_again", bool(torch.equal(first, second)), "the same in every round")
        g.record("predict", True, "")
"""
    report, checks = run(tmp_path, rounds, counting)
    assert checks["double_again"].passed  # a memo (here a call counter) does not survive its round
    assert report.timings["sandboxes score"] == 3  # the two rounds, then the fingerprints' own


PROBED = STANDARD_CHECKS.replace('g.train("fit", torch.zeros(10, 2), check="fit_budget")',
                                 'g.train("fit", torch.zeros(10, 2), check="fit_budget", '
                                 'probe=("model.predict", (torch.ones(3, 2),), {}))')


def test_a_model_that_does_not_restore_from_its_state_is_told_so(tmp_path):
    lossy = GOOD.replace("return Model({\"width\": 1})",
                         "m = Model({\"width\": 1})\n    m.offset = 5.0\n    return m")
    lossy = lossy.replace("return self.scale * x.sum(1)", "return self.scale * x.sum(1) + getattr(self, 'offset', 0)")
    _, checks = run(tmp_path, PROBED, lossy)
    assert checks["fit_budget"].passed
    assert checks["predict"].status == Status.NOT_CHECKED
    assert "gives other answers after the grader rebuilt it from its saved state" in checks["predict"].feedback
    assert "register every tensor" in checks["predict"].feedback


def test_a_model_left_in_training_mode_is_told_to_call_eval(tmp_path):
    """Dropout left on: the trained object answers one input two ways, so the rebuilt one differs too; the
    student is sent to model.eval(), not to registering tensors (issue 17, item 3)."""
    noisy = GOOD.replace("self.scale = torch.nn.Parameter(torch.ones(()))",
                         "self.scale = torch.nn.Parameter(torch.ones(()))\n        self.drop = torch.nn.Dropout(0.5)")
    noisy = noisy.replace("return self.scale * x.sum(1)", "return self.drop(self.scale * x).sum(1)")
    _, checks = run(tmp_path, PROBED, noisy)
    assert checks["predict"].status == Status.NOT_CHECKED
    assert "different answers to the same input each time" in checks["predict"].feedback
    assert "model.eval()" in checks["predict"].feedback and "register every tensor" not in checks["predict"].feedback


def test_an_honest_model_passes_the_restore_probe(tmp_path):
    report, _ = run(tmp_path, PROBED)
    assert report.all_passed


def test_a_model_without_config_cannot_be_frozen(tmp_path):
    student = GOOD.replace("self.config = config", "pass")
    _, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert checks["predict"].status == Status.NOT_CHECKED
    assert "has no `config` dict" in checks["predict"].feedback
    # the budget check counts a training that left a model to score, and says why it does not here
    assert checks["fit_budget"].status == Status.NOT_CHECKED
    assert "has no `config` dict" in checks["fit_budget"].feedback


def test_a_training_answer_without_a_saved_state_earns_no_budget_check(tmp_path):
    """A forged or broken answer to fit (here: state_dict raises while the state is saved) returns in no
    time; the budget check must not count it as a fast training."""
    student = GOOD.replace("def predict(self, x):",
                           "def state_dict(self, *a, **k):\n        raise RuntimeError('no')\n    def predict(self, x):")
    _, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert checks["fit_budget"].status == Status.NOT_CHECKED, checks["fit_budget"]
    assert "could not be saved for scoring" in checks["fit_budget"].feedback


def test_a_missing_build_function_is_named(tmp_path):
    student = GOOD.replace("def build_model(config):", "def make_it(config):")
    _, checks = run(tmp_path, STANDARD_CHECKS, student)
    assert "defines no function build_model(config)" in checks["predict"].feedback
    assert checks["double"].passed


def test_a_round_that_times_out_costs_only_its_own_checks(tmp_path):
    sleepy = GOOD.replace("return self.scale * x.sum(1)", "import time; time.sleep(1.2); return self.scale * x.sum(1)")
    partial = STANDARD_CHECKS.replace('g.call("model.predict", x)', 'g.call("model.predict", x, timeout=0.3)')
    report, checks = run(tmp_path, partial, sleepy)
    assert checks["predict"].status == Status.NOT_CHECKED
    assert "model.predict did not finish within its limit" in checks["predict"].feedback
    assert checks["double"].passed and checks["double_again"].passed  # a fresh sandbox answered them
    assert "model.predict did not finish" in report.error


def test_a_stored_check_result_keeps_every_field_of_the_outcome(tmp_path):
    from courseware.models import CheckResult, GradingRun

    report, _ = run(tmp_path, STANDARD_CHECKS)
    for outcome in report.checks:
        row = CheckResult.from_outcome(GradingRun(), outcome)
        for name, value in outcome.as_dict().items():
            assert getattr(row, name) == value, name


def test_a_round_sends_its_queued_queries_shuffled_and_each_section_reads_its_own(tmp_path):
    positions = GOOD.replace("def double(x):\n    return 2 * x",
                             "SEEN = []\ndef double(x):\n    SEEN.append(1)\n    if float(x[0]) == 3:\n"
                             "        raise ValueError('three')\n    return torch.stack([2 * x[0], torch.tensor(float(len(SEEN)))])")
    batched = """
import torch
def grade(g):
    g.train("fit", torch.zeros(10, 2), check="fit_budget")
    with g.round() as r:
        queued = [r.call("double", torch.full((2,), float(i), dtype=torch.float64)) for i in range(8)]
        p = r.call("model.predict", torch.ones(3, 2, dtype=torch.float64))
    with g.section("predict"):
        g.metric("predict", float((p.value - 2).abs().max()))
    with g.section("double"):
        ok = [q for q in queued if float(q.args[0][0]) != 3]
        g.metric("double", max(abs(float(q.value[0]) - 2 * float(q.args[0][0])) for q in ok),
                 note=" ".join(str(int(q.value[1])) for q in ok))
    with g.section("double_again"):
        queued[3].value
        g.record("double_again", True, "never reached")
"""
    report, checks = run(tmp_path, batched, positions)
    assert checks["predict"].passed and checks["double"].passed
    assert checks["double_again"].status == "not_checked" and "double raised ValueError" in checks["double_again"].feedback
    sent_at = [int(v) for v in checks["double"].staff_note.split()]
    assert sorted(sent_at) != sent_at  # the queries went out in another order than the check queued them
    assert report.timings["sandboxes score"] == 2  # the round, then the fingerprints' own


def test_interleaved_groups_come_back_in_their_own_order():
    import numpy as np
    import torch

    from grader.checklib.batches import Interleaved

    a, b = torch.arange(5.0).view(5, 1), 100 + torch.arange(3.0).view(3, 1)
    mixed = Interleaved(np.random.default_rng(0), a, b)
    assert not torch.equal(mixed.rows[:5], a)
    back_a, back_b = mixed.split(2 * mixed.rows[:, 0])
    assert torch.equal(back_a, 2 * a[:, 0]) and torch.equal(back_b, 2 * b[:, 0])
    parts = mixed.split({"z": mixed.rows, "log_det": mixed.rows[:, 0]})
    assert torch.equal(parts[1]["z"], b) and torch.equal(parts[0]["log_det"], a[:, 0])


def test_the_same_code_has_the_same_fingerprint_whatever_the_run(tmp_path):
    reports = {}
    for name, student in (("a", GOOD), ("b", GOOD), ("c", GOOD.replace("return 2 * x", "return x + x + 0.001"))):
        (tmp_path / name).mkdir()
        reports[name], _ = run(tmp_path / name, STANDARD_CHECKS, student)
    assert reports["a"].fingerprints == reports["b"].fingerprints and set(reports["a"].fingerprints) == {"double"}
    assert reports["c"].fingerprints["double"] != reports["a"].fingerprints["double"]
