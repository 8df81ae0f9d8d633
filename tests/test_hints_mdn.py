"""Every feedback branch of the MDN part's checks says what was measured (issue 17, item 3).

The hint functions of assignments/lab1/mdn/checks.py are called directly with values made to hit each
branch, and one known-wrong is graded in-process (the unsafe-inprocess backend, a short training budget) to
show a branch end to end. Runs in a few seconds besides that grading (about 20 s on 2 cores).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from grader.engine import grade, load_checks_module
from grader.parts import build_known_wrong, load_part
from grader.workspace import submission_workspace


@pytest.fixture(scope="module")
def mdn():
    return load_checks_module(load_part("mdn"))


def test_each_function_slip_is_named_and_a_right_or_unrelated_answer_gets_the_general_hint(mdn):
    rng = np.random.default_rng(0)
    cases = {
        "gaussian": (mdn.gaussian_slips, mdn.function_inputs(rng)["gaussian_nll"], lambda *a: mdn.mixture_nll(
            torch.zeros(256, 1, dtype=torch.float64), *a)),
        "mixture": (mdn.mixture_slips, mdn.random_mixture_rows(rng, 4), lambda *a: -mdn.mixture_nll(*a)),
        "em": (mdn.em_slips, mdn.function_inputs(rng)["em_step"], lambda *a: torch.cat(mdn.em_step(*a))),
        "arm": (mdn.arm_slips, mdn.function_inputs(rng)["arm_log_prob"], lambda *a: -mdn.arm_nll(*a)),
    }
    for name, (slips_of, args, right) in cases.items():
        slips = slips_of(*args)
        assert len(slips) >= 3, name
        for slip, result in slips.items():
            assert rel(result, right(*args)) > 1e-3, f"{name}: the slip '{slip}' is indistinguishable from the right answer"
            hint = mdn.diagnose(result.float().double(), slips, "GENERAL")
            assert hint.startswith(f"Your answer is what {slip} gives") and hint.endswith("GENERAL"), (name, slip, hint)
        assert mdn.diagnose(right(*args), slips, "GENERAL") == "GENERAL", name
        assert mdn.diagnose(right(*args) + 1.0, slips, "GENERAL") == "GENERAL", name


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / (1 + b.abs())).max())


def test_the_integral_hint_names_the_slip_whose_mass_was_measured(mdn):
    pi, sigma = torch.tensor([0.5, 0.5]), torch.tensor([0.1, 0.3])
    assert "-log(sigma) term is missing" in mdn.integral_hint(0.2, pi, sigma)
    assert "-0.5 log(2 pi) term is missing" in mdn.integral_hint(math.sqrt(2 * math.pi), pi, sigma)
    assert "log_pi is not added" in mdn.integral_hint(2.0, pi, sigma)
    general = mdn.integral_hint(0.7, pi, sigma)
    assert general.startswith("Your density does not integrate to 1") and "as if" not in general


def mixtures(k: int, sigma: float, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    log_pi = torch.log(weights) if weights is not None else torch.full((100, k), -math.log(k))
    return {"log_pi": log_pi.expand(100, k), "mu": torch.rand(100, k), "log_sigma": torch.full((100, k), math.log(sigma))}


def test_the_nll_hint_follows_the_mixtures_it_measured(mdn):
    assert "all its weight on one component" in mdn.nll_hint(mixtures(1, 0.05), 0.8)
    one_used = mixtures(3, 0.05, torch.tensor([0.98, 0.01, 0.01]))
    assert "all its weight on one component" in mdn.nll_hint(one_used, 0.8)
    assert "components are wide" in mdn.nll_hint(mixtures(5, 0.4), 0.8)
    assert "barely beat a Gaussian regression" in mdn.nll_hint(mixtures(5, 0.05), 0.1)
    assert mdn.nll_hint(mixtures(5, 0.05), 0.8).startswith("Train longer")


def test_the_regression_hint_says_no_better_only_when_it_is_no_better(mdn):
    assert "yours is no better" in mdn.beats_hint(-0.3, 0.05)
    assert "do clearly better" in mdn.beats_hint(-0.3, 0.4)


def test_not_counted_says_why(mdn):
    assert "different mixtures in two processes" in mdn.not_counted_reason("up to 1e-2 apart", 0.1)
    below = mdn.not_counted_reason("", -0.3)
    assert "0.300 nats below the exact conditional" in below and "Staff have been told" in below


def test_the_simplex_hint_tells_positive_log_weights_from_unnormalised_ones(mdn):
    assert "positive" in mdn.simplex_hint(torch.tensor([[0.5, -1.0]]))
    assert "log_softmax" in mdn.simplex_hint(torch.tensor([[-0.1, -0.2]]))


def test_the_conditional_hint_tells_no_overlap_from_a_rough_shape(mdn):
    assert "barely overlap" in mdn.conditional_hint(0.97)
    assert "sharp edges" in mdn.conditional_hint(0.4)


def test_the_branch_and_arm_hints_quote_what_was_measured(mdn):
    assert "25%" in mdn.branches_hint(0.25)
    assert "median sigma 0.45" in mdn.arm_kl_hint(0.45)
    assert "sums the two coordinates" in mdn.arm_kl_hint(0.05)
    assert "80% of the targets" in mdn.arm_branches_hint(0.8)
    assert "off on average" in mdn.arm_branches_hint(0.1)


def test_answers_that_differ_between_processes_are_reported(mdn):
    first = {"log_pi": torch.zeros(10, 2), "mu": torch.arange(20.0).view(10, 2)}
    same = {k: v[[1, 3]] for k, v in first.items()}
    assert mdn.answers_differ(first, same, torch.tensor([1, 3])) == ""
    moved = {k: v + 0.01 for k, v in same.items()}
    assert mdn.answers_differ(first, moved, torch.tensor([1, 3])).startswith("up to")


def test_branches_counts_a_left_out_piece(mdn):
    """The measured share, on the grader's own conditional: a density that covers every piece misses none, one
    that leaves out the middle piece misses it."""
    curve = mdn.Curve(((0.3, 1.0, 0.0),), 0.05)  # Bishop's curve, narrower noise: three pieces in the middle
    found = [mdn.conditional_pieces(t) for t in curve.conditionals(torch.linspace(0.3, 0.7, 41))]
    pieces = next(p for p in found if len(p) == 3)
    assert abs(sum(m for _, _, m in pieces) - 1) < 0.01
    centres = [float(mdn.GRID[(a + b) // 2]) for a, b, _ in pieces]
    params = {"log_pi": torch.full((1, 3), -math.log(3)), "mu": torch.tensor([centres], dtype=torch.float64),
              "log_sigma": torch.full((1, 3), math.log(0.03))}
    density = mdn.mixture_densities(params, torch.tensor([0]))[0]
    assert all(float(torch.trapezoid(density[a:b], mdn.GRID[a:b])) > m / 3 for a, b, m in pieces)
    params["log_pi"] = torch.log(torch.tensor([[0.5, 1e-6, 0.5]]))
    density = mdn.mixture_densities(params, torch.tensor([0]))[0]
    a, b, m = pieces[1]
    assert float(torch.trapezoid(density[a:b], mdn.GRID[a:b])) < m / 3


def test_a_mixture_log_prob_without_log_sum_exp_is_told_so_end_to_end(tmp_path):
    """The known-wrong logsumexp_missing, graded in-process with 1 s of training: the underflow branch of
    mixture_log_prob, and density_integrates not counted because of it."""
    part = load_part("mdn")
    part = dataclasses.replace(part, resources=dataclasses.replace(part.resources, train_seconds_cpu=1.0))
    folder = build_known_wrong(part.path / "wrong" / "logsumexp_missing", tmp_path / "wrong")
    with submission_workspace(folder, part) as workspace:
        report = grade(part, workspace, backend_name="unsafe-inprocess", seed=3)
    checks = {c.name: c for c in report.checks}
    assert not checks["mixture_log_prob"].passed and "torch.logsumexp" in checks["mixture_log_prob"].feedback
    assert checks["density_integrates"].feedback.startswith("Not counted: your mixture_log_prob")
    assert checks["gaussian_nll"].passed and checks["em_step"].passed
