"""Points only for earned work, the flows part (issue 19, items 2-5): attacks that try to score without a valid
flow, each graded against the same effort done honestly (its CHEAT switch off), on bwrap (conftest's one_backend).

- a self-consistent wrong log-det: every log_det raised, and the finite-difference neighbours' latents made up
  to match where they arrive in one call (the checks send every scored point with its neighbours, shuffled
  across calls, and send neighbours' latents back through inverse in a fresh process);
- a probe trigger: honest only where a point looks finite-differenced (every scored point is);
- a memo keyed on input hashes: a broken inverse that answers from forward's memory (inverse runs in a later,
  fresh process);
- a pool of outputs prepared in fit: samples from training points kept in the state (sample must be inverse of
  the seed's standard draw, which the grader sends to inverse without the seed).

The fast variant of flows trains 2 s per model. Five sandbox runs (the four attacks and one honest flow, the
twin of every attack: the memo's broken flow is held to the honest flow's points, and to failing the checks that
its broken inverse must fail) on one backend: what is tested here is the checks, which are the same code on either backend (that
the sandboxes themselves hold on both is tests/redteam/test_redteam.py's and test_lifetimes.py's job), and one
backend keeps these tests within their 2-minute share of CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.parts import load_part

from .conftest import HERE, Outcome, fast_variant, honest_twin, one_backend

pytestmark = [pytest.mark.sandbox]

ATTACKS = HERE / "attacks_flows"
_honest: dict[str, Outcome] = {}


backend = one_backend("bwrap")


@pytest.fixture
def flows_part():
    return fast_variant(load_part("flows"), run_seconds=90.0)




# The fit-quality thresholds: after the fast variant's 2 s of training an honest flow lands near them, on
# either side depending on how many steps a loaded machine allowed, so attack and twin are not compared on
# them; each test asserts instead that the checks its cheat aims at are failed or not counted.
TRAINING_LUCK = {"nll", "c_nll", "samples", "c_samples"}


def earned(outcome: Outcome) -> float:
    return sum(c.points for c in outcome.report.checks if c.name not in TRAINING_LUCK)


def assert_no_gain_over(attack: Outcome, honest: Outcome) -> None:
    gained = attack.passed - honest.passed - TRAINING_LUCK
    assert not gained, f"the attack passed {gained}, which the same effort done honestly does not\n{attack.explain()}"
    assert earned(attack) <= earned(honest), attack.explain()


def graded(run, backend: str, flows_part, attack: str, tmp_path: Path) -> tuple[Outcome, Outcome]:
    """The attack, and the same effort done honestly: the twins of the attacks behave alike (an honest flow; the
    memo's twin is a broken one, which the honest flow bounds from above), so one of them is graded once per
    backend for all four."""
    outcome = run(ATTACKS / attack, part_spec=flows_part)
    if backend not in _honest:
        _honest[backend] = run(honest_twin(ATTACKS / "probe_trigger", tmp_path), part_spec=flows_part)
    return outcome, _honest[backend]


def checks(outcome: Outcome) -> dict:
    return {c.name: c for c in outcome.report.checks}


def test_a_self_consistent_wrong_log_det_earns_nothing(run, backend, flows_part, tmp_path):
    outcome, honest = graded(run, backend, flows_part, "self_consistent_log_det", tmp_path)
    assert_no_gain_over(outcome, honest)
    found = checks(outcome)
    assert not found["nll"].passed and found["nll"].feedback.startswith("Not counted"), outcome.explain()
    assert not found["c_nll"].passed, outcome.explain()


def test_a_probe_trigger_earns_nothing(run, backend, flows_part, tmp_path):
    outcome, honest = graded(run, backend, flows_part, "probe_trigger", tmp_path)
    assert_no_gain_over(outcome, honest)
    found = checks(outcome)
    # log_det is honest wherever a point has a close neighbour in its call, which (with the data this dense)
    # is over half of them, so the median may pass; but the same point then gets another log_det in another
    # batch, which round_trip's determinism catches, and the NLL is not counted.
    assert not (found["log_det"].passed and found["round_trip"].passed), outcome.explain()
    assert not found["nll"].passed and found["nll"].feedback.startswith("Not counted"), outcome.explain()


def test_a_memo_of_forward_does_not_mend_a_broken_inverse(run, backend, flows_part, tmp_path):
    outcome, honest = graded(run, backend, flows_part, "memo_inverse", tmp_path)
    assert_no_gain_over(outcome, honest)
    found = checks(outcome)
    if found["round_trip"].passed and found["nll"].value is not None and found["nll"].value > 1.9:
        # Open (stop 23): on this machine the attack's scored flow is the identity on standardised data (NLL
        # 1.965 whatever it trains, so the layers' wrong order does not show); the defence above holds.
        pytest.xfail("the attack's own flow did not train, so its wrong-order inverse is not broken")
    # The memo lives in one process; inverse runs in a later, fresh one, so the broken inverse shows. (sample_seed
    # may pass: the samples are this inverse of the seed's draw, and round_trip is what says it is broken.)
    assert not found["round_trip"].passed, outcome.explain()
    assert found["nll"].feedback.startswith("Not counted"), outcome.explain()


def test_a_pool_of_samples_prepared_in_fit_earns_nothing(run, backend, flows_part, tmp_path):
    outcome, honest = graded(run, backend, flows_part, "sample_pool", tmp_path)
    assert_no_gain_over(outcome, honest)
    found = checks(outcome)
    assert not found["sample_seed"].passed and found["samples"].feedback.startswith("Not counted"), outcome.explain()
    assert not found["c_sample_seed"].passed, outcome.explain()
