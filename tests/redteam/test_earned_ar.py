"""Points only for earned work, the autoregressive part (issue 19, items 3 and 4): attacks that try to score
without doing the work, each graded against the same effort done honestly (its CHEAT switch off), on the docker
backend (conftest's one_backend).

- a reconstructed held-out set: fit_digits trains on its images plus scikit-learn's 1797 public digits (shipped
  with the submission, weighted four times). When the C tier held out a secret split of the public digits, the
  public set minus the training rows was the held-out set; now every image is a fresh draw of the run's secret
  source, and the public digits are not that source;
- a pool of KV outputs prepared in fit: a sampler without a cache, whose fit keeps a pool of generated sequences
  in the model's state and whose generate() and sample() return them at once (the old speed check timed
  model.sample, whose output it could not check; now the timed call is generate on the grader's own noise, and
  every token is checked afterwards against model.logits in a fresh process).

- logits that peek only on rows the causality check cannot see, and logits written from the copy source's
  formula (below): these two are patches against the reference (an ON_SOLUTION folder, conftest).

The first two attacks are the same two files with one switch each, so their honest twins are the same submission, graded
once: 3 sandbox runs with the fast variant's 2 s of training (measured: 130 s in all
on the 2-core machine under load, over the 90 s aimed at).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from grader.parts import load_part

from .conftest import HERE, Outcome, fast_variant, honest_twin, one_backend

pytestmark = [pytest.mark.sandbox]

backend = one_backend("docker")  # attacks on the checks: one backend (conftest)

_twins: dict[tuple[str, str], Outcome] = {}

# After 2 s of training an honest model lands near these thresholds, on either side depending on how many steps
# a loaded machine allowed (the pool attack also trains for less, to make its pool in time), so attack and twin
# are not compared on them; each test asserts instead what its cheat aims at.
TRAINING_LUCK = {"nll", "nll_tight", "copy_rate", "temperature", "digits_nll", "digits_beats_independent",
                 "digits_samples"}


# The transformer's checks: what the public copy source's formula could answer without training.
TRANSFORMER_CHECKS = frozenset({"causal", "copy_rate", "temperature", "samples_novel", "greedy", "top_k", "seed",
                                "nll", "nll_tight", "kv_cache", "kv_speed"})


@pytest.fixture
def ar_part():
    return fast_variant(load_part("autoregressive"), run_seconds=90.0, call_seconds=30.0)


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


def graded_with_twin(run, backend: str, ar_part, attack: str, tmp_path: Path, twin_of: str | None = None,
                     unlike: frozenset[str] = frozenset()) -> tuple[Outcome, Outcome]:
    """The attack and its honest twin; `twin_of` names another attack whose twin trains the same way (one
    honest grading saved), and `unlike` the checks in which the two submissions differ on purpose."""
    outcome: Outcome = run(HERE / attack, part_spec=ar_part)
    twin = honest_twin(HERE / (twin_of or attack), tmp_path)
    key = (backend, digest(twin))
    if key not in _twins:
        _twins[key] = run(twin, part_spec=ar_part)
    honest = _twins[key]
    ignored = TRAINING_LUCK | unlike
    gained = outcome.passed - honest.passed - ignored
    assert not gained, f"the attack passed {gained}, which the same effort done honestly does not\n{outcome.explain()}"
    earned = sum(c.points for c in outcome.report.checks if c.name not in ignored)
    assert earned <= sum(c.points for c in honest.report.checks if c.name not in ignored), outcome.explain()
    return outcome, honest


def test_the_public_digits_are_not_the_held_out_set(run, backend, ar_part, tmp_path):
    outcome, honest = graded_with_twin(run, backend, ar_part, "attacks_ar_public_digits", tmp_path)
    found = {c.name: c for c in outcome.report.checks}
    twin = {c.name: c for c in honest.report.checks}
    assert found["digits_causal"].passed, found["digits_causal"].feedback        # a valid likelihood, and a poor one
    assert not found["digits_nll"].passed, found["digits_nll"].feedback
    assert found["digits_nll"].value > twin["digits_nll"].value + 0.5, (found["digits_nll"].feedback,
                                                                         twin["digits_nll"].feedback)


def test_a_pool_of_sequences_made_in_fit_is_not_a_cache(run, backend, ar_part, tmp_path):
    outcome, honest = graded_with_twin(run, backend, ar_part, "attacks_ar_kv_pool", tmp_path)
    found = {c.name: c for c in outcome.report.checks}
    assert not found["kv_speed"].passed, found["kv_speed"].feedback
    # Its logits_cached is honest, so the pool is refused by the token check ("Not counted"). On bwrap the attack's
    # A-tier round has been seen killed (SIGKILL) while importing the module, which leaves both A checks "Not
    # checked": no gain either way, but not the mechanism this test is about (see the issue's notes).
    if found["kv_cache"].passed:
        assert found["kv_speed"].feedback.startswith("Not counted"), found["kv_speed"].feedback
    twin = {c.name: c for c in honest.report.checks}
    assert not twin["kv_speed"].passed and not twin["kv_speed"].feedback.startswith("Not counted"), \
        twin["kv_speed"].feedback                                                 # valid, and as slow as it is


def test_logits_that_peek_only_where_the_causality_check_cannot_see_are_not_counted(run, backend, ar_part,
                                                                                   tmp_path):
    """Issue 19, item 2: honest MADE logits on rows that have a one-pixel or suffix partner in the batch (the
    causality check's probe rows), a nudge towards each pixel's own value on every other row. The scored
    images' NLL drops by about 1.5 nats (before this check, seed 1 in-process: -0.33 nats below the source,
    3.7 standard errors, just above the floor: digits_nll and digits_beats_independent passed unearned); now a
    secret subset of the scored images, asked again in a fresh process with one pixel flipped, shows the peek.
    It is the reference with made.py patched; its honest twin is the public-digits attack's (the same MADE
    training, so that grading is shared), whose transformer has no KV cache: the transformer's checks are not
    compared. That the peek is what was caught is read from the grader's own measure, the change in a scored
    image's log-probabilities when one pixel flipped (the nudge moves a logit by 2 * PEEK = 0.6; honest logits
    asked again agree to float rounding), not from the NLL against the twin's: the two are separate 2 s
    trainings, and under CI's load their NLLs differed by more than the peek gained (1.61 vs 1.76)."""
    outcome, honest = graded_with_twin(run, backend, ar_part, "attacks_ar_peek_scored", tmp_path,
                                       twin_of="attacks_ar_public_digits", unlike=TRANSFORMER_CHECKS)
    found = {c.name: c for c in outcome.report.checks}
    twin = {c.name: c for c in honest.report.checks}
    assert found["digits_causal"].passed, found["digits_causal"].feedback            # the probe rows were fooled
    for name in ("digits_nll", "digits_beats_independent"):
        assert not found[name].passed and "on the scored images themselves" in found[name].feedback, \
            found[name].feedback
    [size] = re.findall(r"changed by ([0-9.e+-]+) when", found["digits_nll"].feedback)
    assert float(size) > 0.05, found["digits_nll"].feedback
    assert "on the scored images themselves" not in twin["digits_nll"].feedback, twin["digits_nll"].feedback



def test_a_sampler_that_remembers_its_temperature_cannot_tailor_the_logits_that_judge_it(run):
    """Issue 19, item 2: the sampler checks compare samples with the model's own logits on them. When those
    logits were asked in the process that had just sampled, a memo could scale them for the sequences it had
    returned (by the temperature it had been asked for and ignored), and the temperature check matched. They
    are now asked in a later round, a fresh process, shuffled with decoys: the memo is empty there, and the
    sampler that ignores its temperature fails the check, as it does without a memo. One grading per backend:
    the reference with autoregressive.py patched; the rest of the sampler is honest and passes."""
    # trained as in a course round: an untrained model draws near-uniform tokens at any temperature
    spec = fast_variant(load_part("autoregressive"), run_seconds=180.0, call_seconds=30.0,
                        train_seconds_cpu=20.0, train_seconds_gpu=20.0)
    outcome = run(HERE / "attacks_ar_sample_memo", part_spec=spec)
    found = {c.name: c for c in outcome.report.checks}
    assert not found["temperature"].passed, outcome.explain()
    assert "temperature 2 without top-k" in found["temperature"].feedback, found["temperature"].feedback
    for name in ("copy_rate", "greedy", "top_k", "causal"):
        assert found[name].passed, (name, found[name].feedback)


def test_logits_written_from_the_public_copy_source_are_flagged(run, ar_part):
    """Issue 19, item 5, found by reading and shown here: the copy source is public and fixed, so logits
    written from its formula (data.py) need no training. Not defended: the examiner is flagged (fit returned
    at once), and the test xfails naming the checks the formula passes, so that a per-run source rich enough
    to need learning shows up here. One grading per backend, no twin (no training is no effort)."""
    outcome = run(HERE / "attacks_ar_formula", part_spec=ar_part)
    assert any(f.startswith("fit() returned after") for f in outcome.report.flags), outcome.explain()
    earned = {c.name for c in outcome.report.checks if c.passed} & TRANSFORMER_CHECKS
    if earned:
        pytest.xfail(f"not defended: the public copy source's exact conditionals pass {sorted(earned)} without "
                     "training")

