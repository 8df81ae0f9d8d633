"""Digits the student cannot hold (grader/checklib/digit_styles.py): no drawn image equals a public one,
nothing in them tells how a set was made, and the handouts' copies draw exactly what the grader draws."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.checklib.digit_styles import DigitStyle
from grader.checklib.digits import scaled_digits

LAB1 = Path(__file__).resolve().parent.parent / "assignments" / "lab1"
HANDOUT_COPIES = [LAB1 / "evaluation" / "handout" / "data.py", LAB1 / "hybrid" / "handout" / "data.py"]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("copy", HANDOUT_COPIES, ids=lambda p: p.parent.parent.name)
def test_the_handouts_draw_what_the_grader_draws(copy):
    handout = load(copy, f"handout_data_{copy.parent.parent.name}")
    x, _ = scaled_digits()
    for seed in (0, 7):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        drawn = DigitStyle.draw(ours).render(x[:300], ours)
        assert np.array_equal(drawn, handout.DigitStyle.draw(theirs).render(x[:300], theirs))


def test_no_drawn_digit_is_a_public_one_and_nothing_marks_its_history():
    x, _ = scaled_digits()
    rng = np.random.default_rng(3)
    drawn = DigitStyle.draw(rng).render(x, rng)
    assert drawn.min() >= 0 and drawn.max() <= 1
    # continuous values: no sixteenths, no exact zeros or ones left by clipping
    assert np.mean(np.isclose(drawn * 16, np.round(drawn * 16), atol=1e-6)) < 0.01
    assert np.mean((drawn == 0) | (drawn == 1)) < 0.001
    # every drawing is farther from its public source than public digits are from their nearest neighbour
    from scipy.spatial import cKDTree

    public_nn = np.median(cKDTree(x).query(x, k=2)[0][:, 1])
    assert np.median(np.linalg.norm(drawn - x, axis=1)) > public_nn
    assert cKDTree(x).query(drawn)[0].min() > 0.2


def test_a_copy_differs_from_its_source_only_by_the_noise_every_image_has():
    x, _ = scaled_digits()
    rng = np.random.default_rng(4)
    style = DigitStyle.draw(rng, noise=(0.01, 0.02))
    shapes = style.shape(x[:200], rng)
    first, again = style.finish(shapes, rng), style.finish(shapes, rng)
    other = style.render(x[200:400], rng)
    gap = np.linalg.norm(first - again, axis=1)
    assert np.median(gap) < 0.3 < np.median(np.linalg.norm(first - other, axis=1))
    # the noise level of a copy is that of any drawing: it does not mark the copy
    def noise_level(images):
        return float(np.median(np.abs(np.diff(images.reshape(-1, 8, 8), axis=2))))
    assert abs(noise_level(again) - noise_level(first)) < 0.05 * noise_level(first)


def test_the_evaluation_handout_builds_the_graders_sets():
    """data.DigitSplit is the grader's Digits with the student's seed: same split, same drawings."""
    pytest.importorskip("sklearn")
    handout = load(LAB1 / "evaluation" / "handout" / "data.py", "evaluation_handout_data")
    checks = load(LAB1 / "evaluation" / "checks.py", "evaluation_checks_for_styles")
    split, digits = handout.DigitSplit(5), checks.Digits(np.random.default_rng(5))
    assert np.array_equal(split.train.numpy(), digits.train.astype(np.float32))
    assert np.array_equal(split.reference.numpy(), digits.reference.astype(np.float32))
    for kind in handout.KINDS:
        ours, _ = digits.sample_set(kind, np.random.default_rng(9))
        split.rng = np.random.default_rng(9)  # the same draws from here on
        assert np.array_equal(split.make_sample_set(kind).numpy(), ours.astype(np.float32)), kind
