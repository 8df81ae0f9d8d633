"""The flows handout's data.py is the student's standalone copy of the grader's data family (the secret
area-preserving warp and the two curves); this keeps the copy and the grader's code (flows/checks.py) the
same, so a student's practice data come from exactly the family the grader draws from."""

from __future__ import annotations

import numpy as np
import torch

from tests.test_digit_styles import LAB1, load


def test_the_handouts_warp_and_curves_are_the_graders():
    checks = load(LAB1 / "flows" / "checks.py", "flows_checks_for_copy_test")
    handout = load(LAB1 / "flows" / "handout" / "data.py", "flows_handout_data_for_copy_test")
    rng = np.random.default_rng(5)
    t, arm = rng.uniform(size=500), rng.integers(0, 2, size=500)
    assert np.array_equal(checks.moons_centres(t, arm), handout.moons_centres(t, arm))
    assert np.array_equal(checks.spiral_centres(t, arm), handout.spiral_centres(t, arm))
    for seed in (0, 11):
        ours = checks.Warp.draw(np.random.default_rng(seed), (0.5, 0.25), (0.1, 0.4), (0.5, 2.0))
        theirs = handout.Warp(ours.centre, ours.angle, ours.shears)
        x = torch.randn(400, 2, dtype=torch.float64)
        assert torch.equal(ours.apply(x), theirs.apply(x))
        assert torch.allclose(theirs.undo(ours.apply(x)), x, atol=1e-12)
        assert torch.equal(ours.undo(x), theirs.undo(x))
