"""Points only for earned work, the VAE part (issue 19, items 1-3): attacks that try to score without a valid
model, each graded against the same effort done honestly (its CHEAT switch off), on bwrap (conftest's one_backend).

- a memo keyed on input hashes: a decoder with dropout left on answers every z it has seen before from memory,
  so that a z sent twice in one process gets the same logits (the scored rows come back in a later round, a
  fresh process with no memo, and the bounds count only when they agree);
- a pool of outputs prepared in fit: the training images kept in the model's state and replayed, a few pixels
  flipped, by sample() (the sampler is compared with the grader's own draws through the decoder, and its
  samples must not sit nearer the training images than fresh images of the run's secret source do).

A fast variant of the part (2 s of training). 4 sandbox runs, about 30 s in all (57 s was measured for both
backends together on the 2-core machine at load 1.5).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.parts import load_part

from .conftest import HERE, Outcome, fast_variant, honest_twin, one_backend

pytestmark = [pytest.mark.sandbox]

backend = one_backend("bwrap")  # attacks on the checks: one backend (conftest)

ATTACKS = HERE / "attacks_vae"


@pytest.fixture
def vae_part():
    return fast_variant(load_part("vae"), run_seconds=90.0, call_seconds=30.0)




def no_gain(run, vae_part, attack: str, tmp_path: Path) -> dict:
    outcome: Outcome = run(ATTACKS / attack, part_spec=vae_part)
    honest: Outcome = run(honest_twin(ATTACKS / attack, tmp_path), part_spec=vae_part)
    gained = outcome.passed - honest.passed
    assert not gained, f"the attack passed {gained}, which the same effort done honestly does not\n{outcome.explain()}"
    assert outcome.report.points <= honest.report.points, outcome.explain()
    return {c.name: c for c in outcome.report.checks}


def test_a_memo_does_not_make_a_random_decoder_count(run, vae_part, tmp_path):
    found = no_gain(run, vae_part, "memo_dropout", tmp_path)
    assert not found["deterministic"].passed, found["deterministic"].feedback
    for name in ("elbo", "elbo_c", "iwae_c"):   # not counted (round 3), or not checked (the rebuilt model differs)
        assert not found[name].passed and found[name].feedback.startswith("Not "), found[name].feedback


def test_replayed_training_images_are_not_samples(run, vae_part, tmp_path):
    found = no_gain(run, vae_part, "replay_pool", tmp_path)
    assert not found["not_copies"].passed, found["not_copies"].feedback
    assert not found["samples"].passed, found["samples"].feedback
