"""The evaluation part's feedback is true for the value measured: each hint branch of each check, driven
with the answers of a real (wrong or honest) implementation, and the `Suspects` rule that picks a branch.

The checks run in this process (tests/checks_in_process.py): the submission's functions answer the
grader's queries directly; the sandbox path is covered by calibration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.checklib.mistakes import Suspects
from grader.parts import build_known_wrong, load_part
from tests.checks_in_process import Answering, import_submission, recorder

PART = load_part("evaluation")


def _checks():
    spec = importlib.util.spec_from_file_location("evaluation_checks_under_test", PART.path / "checks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CHECKS = _checks()


@pytest.fixture(scope="module")
def setup():
    return CHECKS.Setup.draw(np.random.default_rng(11))


def run_check(name: str, folder: Path, setup, seed: int = 11):
    """The outcome of check `name` for the submission in `folder`."""
    check = next(c for c in CHECKS.CHECKS if c.name == name)
    setup.rng = np.random.default_rng(seed)  # every check draws its own cases from here
    cases = check.ask(Answering(PART, import_submission(folder, PART.module)), setup)
    g = recorder(PART)
    check.judge(g, setup, cases)
    return g.outcomes[name]


def patched(tmp_path: Path, old: str, new: str) -> Path:
    """The reference with one line changed: a mistake without a known-wrong folder of its own."""
    folder = tmp_path / "submission"
    folder.mkdir()
    for source in PART.solution_dir.glob("*.py"):
        text = source.read_text()
        if source.name == PART.module:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        (folder / source.name).write_text(text)
    return folder


# The known-wrong folders and the hint each must be given: the mistake the values show.
KNOWN = {
    "biased_mmd": ("mmd_unbiased", CHECKS.MMD_HINTS["biased"]),
    "frechet_elementwise_sqrt": ("frechet_gaussian", CHECKS.FRECHET_HINTS["elementwise_sqrt"]),
    "frechet_product_of_roots": ("frechet_gaussian", CHECKS.FRECHET_HINTS["product_of_roots"]),
    "frechet_biased_covariance": ("frechet_features", CHECKS.FRECHET_HINTS["biased_covariance"]),
    "mos_normal_quantile": ("mos_interval", CHECKS.MOS_HINTS["normal_quantile"]),
    "precision_recall_swapped": ("precision_recall", CHECKS.KNN_HINTS["swapped"]),
    "knn_radius_counts_self": ("precision_recall", CHECKS.KNN_HINTS["radius_counts_self"]),
    "unpaired_t_test": ("paired_test", CHECKS.PAIRED_HINTS["unpaired"]),
    "paired_p_without_abs": ("paired_test", CHECKS.PAIRED_HINTS["sign_not_folded"]),
    "memorisation_squared_distances": ("memorisation", CHECKS.MEMO_HINTS["squared_distances"]),
    "sliced_mean_of_roots": ("sliced_wasserstein", CHECKS.SLICED_HINTS["mean_of_roots"]),
    "raters_one_sided": ("raters_needed", CHECKS.RATERS_HINTS["one_sided"]),
}


def test_every_known_wrong_has_its_hint_here():
    assert set(KNOWN) == {bug for bug, _, _ in PART.known_wrong()}


@pytest.mark.parametrize("bug", sorted(KNOWN))
def test_a_known_wrong_is_told_the_mistake_it_made(bug, tmp_path, setup):
    check, hint = KNOWN[bug]
    outcome = run_check(check, build_known_wrong(PART.path / "wrong" / bug, tmp_path / bug), setup)
    assert not outcome.passed
    assert hint in outcome.feedback, outcome.feedback


# Mistakes without a known-wrong folder: the line that makes each, and the hint it must get.
BRANCHES = {
    "frechet no factor two": ("frechet_gaussian", "- 2 * trace_sqrt", "- trace_sqrt",
                              CHECKS.FRECHET_HINTS["no_factor_two"]),
    "mmd kernel without the 2": ("mmd_unbiased", "gamma = 1.0 / (2.0 * float(bandwidth) ** 2)",
                                 "gamma = 1.0 / float(bandwidth) ** 2", CHECKS.MMD_HINTS["kernel_without_two"]),
    "mmd bandwidth not squared": ("mmd_unbiased", "gamma = 1.0 / (2.0 * float(bandwidth) ** 2)",
                                  "gamma = 1.0 / (2.0 * float(bandwidth))",
                                  CHECKS.MMD_HINTS["bandwidth_squared_missing"]),
    "sliced without the root": ("sliced_wasserstein", "return float((px - py).pow(2).mean().sqrt())",
                                "return float((px - py).pow(2).mean())", CHECKS.SLICED_HINTS["no_root"]),
    "sliced unsorted": ("sliced_wasserstein", "px, _ = torch.sort(x @ theta.T, dim=0)  # [N, P], each column sorted\n"
                        "    py, _ = torch.sort(y @ theta.T, dim=0)", "px, py = x @ theta.T, y @ theta.T",
                        CHECKS.SLICED_HINTS["unsorted"]),
    "memorisation ignores ratio": ("memorisation", "return float((two[:, 0] < ratio * two[:, 1]).double().mean())",
                                   "return float((two[:, 0] < two[:, 1] / 3).double().mean())",
                                   CHECKS.MEMO_HINTS["ratio_ignored"]),
    "memorisation inverted": ("memorisation", "return float((two[:, 0] < ratio * two[:, 1]).double().mean())",
                              "return float((two[:, 0] >= ratio * two[:, 1]).double().mean())",
                              CHECKS.MEMO_HINTS["inverted"]),
    "density not over k": ("density_coverage", "density = inside.double().sum() / (k * fake.shape[0])",
                           "density = inside.double().sum() / fake.shape[0]", CHECKS.KNN_HINTS["density_not_over_k"]),
    "coverage with generated balls": ("density_coverage",
                                      "inside = torch.cdist(real, fake) <= _kth_radius(real, k)[:, None]  # [N, M]",
                                      "inside = torch.cdist(real, fake) <= _kth_radius(fake, k)[None, :]",
                                      CHECKS.KNN_HINTS["generated_balls"]),
    "mos population sd": ("mos_interval", "float(s.std(correction=1))", "float(s.std(correction=0))",
                          CHECKS.MOS_HINTS["population_sd"]),
    "mos df n": ("mos_interval", "t_ppf(0.5 + confidence / 2, n - 1)", "t_ppf(0.5 + confidence / 2, n)",
                 CHECKS.MOS_HINTS["df_n"]),
    "paired one-sided": ("paired_test", "return t, 2.0 * t_sf(abs(t), n - 1)", "return t, t_sf(abs(t), n - 1)",
                         CHECKS.PAIRED_HINTS["one_sided"]),
    "paired df n": ("paired_test", "return t, 2.0 * t_sf(abs(t), n - 1)", "return t, 2.0 * t_sf(abs(t), n)",
                    CHECKS.PAIRED_HINTS["df_n"]),
    "raters rounded": ("raters_needed", "return math.ceil(n)", "return round(n)", CHECKS.RATERS_HINTS["rounded"]),
    "raters two-sample": ("raters_needed", "return math.ceil(n)", "return math.ceil(2 * n)",
                          CHECKS.RATERS_HINTS["two_sample"]),
}


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_each_mistake_gets_its_own_hint(branch, tmp_path, setup):
    check, old, new, hint = BRANCHES[branch]
    outcome = run_check(check, patched(tmp_path, old, new), setup)
    assert not outcome.passed
    assert hint in outcome.feedback, outcome.feedback


def test_a_value_no_known_mistake_explains_gets_the_general_hint(tmp_path, setup):
    """Off by a constant: none of the named mistakes fits, so the feedback says what the formula is."""
    outcome = run_check("mmd_unbiased", patched(tmp_path, "return float(xx + yy - 2 * kxy.mean())",
                                                "return float(xx + yy - 2 * kxy.mean()) + 0.01"), setup)
    assert not outcome.passed
    assert not any(hint in outcome.feedback for hint in CHECKS.MMD_HINTS.values())
    assert "Leave out the diagonal terms" in outcome.feedback


@pytest.mark.parametrize("name", [c.name for c in CHECKS.CHECKS])
def test_the_reference_passes_each_check_in_process(name, setup):
    assert run_check(name, PART.solution_dir, setup).passed


def test_diagnose_feedback_branches():
    kinds = ["good", "blurred", "memorised", "mode_dropped"]
    assert CHECKS.diagnose_feedback(kinds, kinds, "T").startswith("All 4 sample sets labelled correctly")
    same = CHECKS.diagnose_feedback(["good"] * 4, kinds, "T")
    assert "returned 'good' for every set" in same and "1 of 4" in same
    unknown = CHECKS.diagnose_feedback(["good", "blurry", "memorised", "mode_dropped"], kinds, "T")
    assert "'blurry', which is none of the four labels" in unknown
    one_wrong = CHECKS.diagnose_feedback(["good", "blurred", "memorised", "good"], kinds, "T")
    assert "a 'mode_dropped' set was labelled 'good'" in one_wrong and "Check each decision rule" in one_wrong


def test_suspects_name_a_mistake_only_when_it_explains_every_wrong_answer():
    hints = {"biased": "B", "halved": "H"}
    suspects = Suspects(hints, 1e-3)
    suspects.see(1.0, 1.0, biased=2.0, halved=0.5)  # right: says nothing
    suspects.see(2.0, 1.0, biased=2.0, halved=0.5)
    assert suspects.hint("general") == "B"
    suspects.see(3.0, 1.0, biased=2.0, halved=0.5)  # a wrong answer the mistake does not explain
    assert suspects.hint("general") == "general"
    both = Suspects(hints, 1e-3)
    both.see(2.0, 1.0, biased=2.0, halved=2.0)  # two mistakes fit: name neither
    assert both.named() is None
    with pytest.raises(KeyError):
        Suspects(hints, 1e-3).see(1.0, 2.0, unknown=1.0)
