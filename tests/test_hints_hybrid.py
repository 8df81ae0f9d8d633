"""Every feedback branch of the hybrid part's checks says what was measured (issue 17, item 3).

assignments/lab1/hybrid/checks.py writes its hints as branches on measured numbers. Each branch is driven
here by what selects it, and each test asserts the branch's own words and the absence of the other
branches' words (a test fails if the wrong branch fires):
- the hints that are functions of numbers (accuracy_hint, flow_hint, seed_hint, repeat_hint, mia_hint) are
  called with values on each side of each boundary;
- the judging functions run on a real `Grading` in this process (tests/checks_in_process): the queries of
  the grader's own rounds (`ask_round_one`, `ask_round_two`, `ask_round_three`, in grade()'s order, without
  the training) are answered at once by the reference's functions, by slips of them and by samplers written
  here over the run's own styled digits, and judged by the staff networks: guided_velocity (where the worst
  w is), the attack (mia_overfit_auc and mia_leak_gap), seed_changes and seed_repeats, the sample checks
  (accuracy, not_copies, the trade-off, guidance_effect, recall_c, and "not counted" / "not attempted"),
  sampler_uses_model and flow_heldout, the training budgets and the optional latent hybrid (A);
- where a query's error is what selects a branch, the query holds the error the grader gives it (the
  handout's "not attempted", a velocity that raised).
No training: a few seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from grader.checking import TRAINING_HINT, NotTrained, Pending, Trained
from grader.engine import load_checks_module
from grader.outcomes import Status
from grader.parts import build_known_wrong, load_part
from grader.sandbox.session import CallFailed
from tests.checks_in_process import AnsweredHere, answered, import_submission, recorder

PART = load_part("hybrid")


@functools.cache
def reference_module():
    """The reference solution's module, imported once."""
    return import_submission(PART.solution_dir, PART.module)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread while these tests run: their tensors are small, and on a busy machine the hand-offs
    between threads cost several times the work (the reference's sampler: 0.8 s instead of 0.03 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hybrid():
    return load_checks_module(PART)


@pytest.fixture(scope="module")
def reference():
    return reference_module()


def branch_words(text: str, words: dict[str, str]) -> set[str]:
    """The branches (keys) whose distinguishing words (values) the text contains."""
    return {name for name, phrase in words.items() if phrase in text}


# ---------------------------------------------------------------- hints that are functions of numbers

ACCURACY = {
    "no_labels": "the staff classifier rarely finds the requested digit",
    "convention": "Check the convention: this lab's w = 0 is unguided",
    "sign": "check the sign of guided_velocity",
    "train": "train longer (or with an average of the weights)",
}


@pytest.mark.parametrize("acc0, acc_mid, branch", [
    (0.10, 0.12, "no_labels"),    # neither value follows the labels (chance is 0.1)
    (0.29, 0.29, "no_labels"),
    (0.30, 0.29, "train"),        # not both under 0.3, no rise past 0.5, no drop of 0.1
    (0.10, 0.95, "convention"),   # the s = 1 + w sampler: the unconditional model at w = 0, right at w near 1
    (0.45, 0.50, "convention"),
    (0.50, 0.95, "train"),        # w = 0 already at 0.5: not the convention's pattern
    (0.85, 0.74, "sign"),         # guidance lowers the accuracy by more than 0.1
    (0.85, 0.76, "train"),
    (0.80, 0.85, "train"),
])
def test_the_accuracy_hint_follows_the_two_accuracies_measured(hybrid, acc0: float, acc_mid: float, branch: str):
    text = hybrid.accuracy_hint({0.0: acc0, 1.2: acc_mid}, 1.2)
    assert branch_words(text, ACCURACY) == {branch}, text


def test_the_convention_hint_states_the_two_accuracies_it_compares(hybrid):
    """An unguided accuracy of 0.45 is far above chance (0.1): the hint says how many samples show their
    label at each w, not that they ignore it."""
    text = hybrid.accuracy_hint({0.0: 0.45, 1.2: 0.93}, 1.2)
    assert "Without guidance (w = 0) 45% of your samples show the requested digit, at w = 1.20 93% do" in text
    assert "ignore their labels" not in text
    text = hybrid.accuracy_hint({0.0: 0.12, 1.2: 0.08}, 1.2)
    assert text.startswith("Without guidance and at w = 1.20 the staff classifier rarely finds"), text


FLOW = {
    "uncond": "the unconditional velocity was not learned",
    "memorises": "it memorises its training set",
    "not_learned": "Your velocity does not predict the flow of new digits",
}


@pytest.mark.parametrize("cond, uncond, train, branch", [
    (20.0, 300.0, 18.0, "uncond"),       # the label's velocity generalises, the null label's was never trained
    (40.0, 300.0, 5.0, "uncond"),        # at the limit (40) counts as learned
    (41.0, 300.0, 5.0, "memorises"),     # over it, and the training digits' loss far lower
    (60.0, 70.0, 29.9, "memorises"),
    (60.0, 70.0, 30.0, "not_learned"),   # training loss half the held-out one: not far better
    (95.0, 98.0, 90.0, "not_learned"),   # an untrained velocity: bad on every digit
    (45.0, 30.0, 40.0, "not_learned"),
])
def test_the_flow_hint_follows_the_held_out_and_training_losses(hybrid, cond: float, uncond: float, train: float,
                                                                 branch: str):
    text = hybrid.flow_hint(hybrid.Integrated(np.zeros((1, 64), np.float32), cond, uncond, train), 40.0)
    assert branch_words(text, FLOW) == {branch}, text
    if branch != "not_learned":
        assert f"({cond:.1f})" in text, text   # the number it explains


SEED = {"frozen": "hardly differ from one another even within one call", "fixed_seed": "two seeds gave (nearly) "
        "the same images"}


@pytest.mark.parametrize("within, branch", [(0.0, "frozen"), (0.029, "frozen"), (0.03, "fixed_seed"),
                                            (0.2, "fixed_seed")])
def test_the_seed_hint_tells_a_sampler_without_noise_from_one_with_a_fixed_seed(hybrid, within: float, branch: str):
    text = hybrid.seed_hint(within, 0.001)
    assert branch_words(text, SEED) == {branch}, text


REPEAT = {"nearly": "nearly, but not exactly, the same images", "other": "gave other images when asked again"}


@pytest.mark.parametrize("gap, branch", [(2e-4, "nearly"), (0.0099, "nearly"), (0.01, "other"), (0.8, "other")])
def test_the_repeat_hint_tells_a_near_repeat_from_other_images(hybrid, gap: float, branch: str):
    text = hybrid.repeat_hint(gap)
    assert branch_words(text, REPEAT) == {branch}, text
    if branch == "nearly":
        assert f"largest difference {gap:.2g}" in text


MIA = {"inverted": "Your scores are inverted", "guessing": "carry almost no information",
       "weak": "separates members from non-members only weakly"}


@pytest.mark.parametrize("auc, branch", [
    (0.02, "inverted"), (0.34, "inverted"),   # as far below 0.5 as 0.66 is above it: the order is informative
    (0.35, "guessing"), (0.48, "guessing"), (0.5, "guessing"), (0.64, "guessing"),
    (0.65, "weak"), (0.89, "weak"),
])
def test_the_attack_hint_calls_an_auc_inverted_only_well_below_a_half(hybrid, auc: float, branch: str):
    text = hybrid.mia_hint(auc)
    assert branch_words(text, MIA) == {branch}, text


# ---------------------------------------------------------------- the checks, run in this process on a real Grading

@dataclass
class Run:
    """What grade() has at hand before its first round (the training left out): the run's digits, the staff
    networks, the secret guidance values, the held-out labels asked and the real digits never sent."""

    g: AnsweredHere
    data: object
    cnn: object
    staff: dict
    guidance: object
    x_eval: np.ndarray
    y_eval: np.ndarray
    others: np.ndarray
    seeds: list[int]


def start(hybrid, seed: int = 1) -> Run:
    g = answered(PART, {}, seed=seed)
    data = hybrid.Digits(g.rng)
    cnn, staff = hybrid.load_staff()
    guidance = hybrid.Guidance.draw(g.rng)
    eval_idx = g.rng.choice(len(data.x_held), hybrid.N_EVAL, replace=False)
    others = data.x_held[np.setdiff1d(np.arange(len(data.x_held)), eval_idx)]
    seeds = [g.torch_seed() for _ in range(3)]
    return Run(g, data, cnn, staff, guidance, data.x_held[eval_idx], data.y_held[eval_idx], others, seeds)


def digits_from(images: np.ndarray, labels: np.ndarray, noise: float = 0.0) -> Callable[..., torch.Tensor]:
    """A sampler written here: for each requested label a digit of that label from `images`, drawn with
    `seed` (plus pixel noise)."""
    def sample(wanted: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        gen = np.random.default_rng(seed)
        rows = [gen.choice(np.flatnonzero(labels == c)) for c in wanted.tolist()]
        return torch.from_numpy(np.clip(images[rows] + noise * gen.standard_normal((len(rows), 64)), 0, 1))
    return sample


PROJECTION = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 8)) / 8)


def encode(x: torch.Tensor) -> torch.Tensor:
    """A smooth stand-in for an autoencoder (8 latent numbers): a fixed projection, and back."""
    return (x.double() - 0.5) @ PROJECTION


def decode(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(4 * z.double() @ PROJECTION.T)


def answers(run: Run, **changed: Callable) -> dict[str, Callable]:
    """Every entry point the rounds ask: the reference's formula and attack, samples of the run's held-out
    digits (never its training digits), a smooth latent model, a velocity of zeros; `changed` replaces some."""
    reference = reference_module()
    fresh = digits_from(run.data.x_held, run.data.y_held)

    def latent_sample(labels: torch.Tensor, *, guidance: float, seed: int) -> torch.Tensor:
        return decode(torch.randn(len(labels), 8, generator=torch.Generator().manual_seed(seed)))

    return {"guided_velocity": reference.guided_velocity, "membership_scores": reference.membership_scores,
            "model.sample": fresh, "model.velocity": lambda x, t, labels: torch.zeros_like(x),
            "latent.sample": latent_sample, "latent.encode": encode, "latent.decode": decode} | changed


def round_one(hybrid, run: Run, **changed: Callable) -> dict:
    run.g.answering.submission = SimpleNamespace(**answers(run, **changed))
    with run.g.round() as r:
        return hybrid.ask_round_one(r, run.g, run.data, run.guidance, run.y_eval, run.x_eval, run.staff, run.seeds)


def rounds(hybrid, run: Run, **changed: Callable) -> tuple[dict, dict, dict]:
    """The three rounds of grade(), answered by `answers(run, **changed)`."""
    asked = round_one(hybrid, run, **changed)
    with run.g.round() as r:
        later = hybrid.ask_round_two(r, run.g, run.data, run.guidance, run.y_eval, run.others, run.cnn, asked,
                                     run.seeds)
    with run.g.round() as r:
        cycle = hybrid.ask_round_three(r, run.g, later)
    return asked, later, cycle


def done(entry: str, result=None, error=None) -> Pending:
    """A query as a round leaves it: its validated result, or the error it ended with."""
    return Pending(entry, (), {}, "staff", None, result=result, error=error, done=True)


@pytest.fixture(scope="module")
def wrong(tmp_path_factory) -> Callable[[str], object]:
    """A known-wrong submission's module (wrong/<bug>: the reference with one slip)."""
    def build(bug: str):
        folder = build_known_wrong(PART.path / "wrong" / bug, tmp_path_factory.mktemp(bug) / bug)
        return import_submission(folder, PART.module)
    return build


# ---- guided_velocity: the hint names the w where the answer was worst

def guided(hybrid, formula: Callable) -> tuple[object, list[float]]:
    run = start(hybrid)
    asked = round_one(hybrid, run, guided_velocity=formula)
    hybrid.judge_guided_velocity(run.g, asked)
    return run.g.outcomes["guided_velocity"], [w for w, _, _ in asked["velocity_cases"]]


def test_guided_velocity_passes_the_reference_and_names_the_w_where_a_slip_is_worst(hybrid, reference, wrong):
    outcome, ws = guided(hybrid, reference.guided_velocity)
    assert outcome.passed and "Worst at" not in outcome.feedback, outcome.feedback
    assert ws[:2] == [0.0, 1.0] and 1.5 <= ws[2] <= 5.0 and -1.0 <= ws[3] <= 0.0, ws

    outcome, ws = guided(hybrid, wrong("guidance_wrong_sign").guided_velocity)  # off by 2 w (v_c - v_u): right at 0
    assert not outcome.passed and "Worst at w = 0.00." not in outcome.feedback, outcome.feedback
    assert any(f"Worst at w = {w:.2f}." in outcome.feedback for w in ws[1:]), outcome.feedback

    def unguided_at_zero(v_cond, v_uncond, w):  # right for every w but 0, where it returns v_uncond
        return v_uncond if w == 0 else reference.guided_velocity(v_cond, v_uncond, w)

    def capped(v_cond, v_uncond, w):  # right up to w = 2, too weak above it
        return reference.guided_velocity(v_cond, v_uncond, min(w, 2.0))

    for formula, worst in ((unguided_at_zero, 0.0), (capped, ws[2])):
        outcome, _ = guided(hybrid, formula)
        assert not outcome.passed and f"Worst at w = {worst:.2f}." in outcome.feedback, outcome.feedback
        assert sum(f"w = {w:.2f}" in outcome.feedback for w in ws) == 1, outcome.feedback


# ---- the membership-inference attack

def attack(hybrid, scores: Callable) -> dict:
    run = start(hybrid)
    hybrid.judge_mia(run.g, round_one(hybrid, run, membership_scores=scores))
    return {name: run.g.outcomes[name] for name in ("mia_overfit_auc", "mia_leak_gap")}


WEAK_ATTACK = "Against the overfit model your attack is itself weak"


def test_the_loss_attack_passes_and_an_inverted_one_is_told_it_is_inverted(hybrid, reference, wrong):
    outcomes = attack(hybrid, reference.membership_scores)
    assert all(o.passed for o in outcomes.values()), outcomes
    outcomes = attack(hybrid, wrong("mia_inverted").membership_scores)       # the error itself: members score low
    auc, gap = outcomes["mia_overfit_auc"], outcomes["mia_leak_gap"]
    assert not auc.passed and auc.value < 0.1, auc
    assert branch_words(auc.feedback, MIA) == {"inverted"}, auc.feedback
    assert not gap.passed and WEAK_ATTACK in gap.feedback, gap.feedback


def test_an_attack_that_ignores_the_reconstruction_is_told_it_is_guessing(hybrid, wrong):
    outcomes = attack(hybrid, wrong("mia_ignores_reconstruction").membership_scores)  # -|x|²: no membership in it
    auc = outcomes["mia_overfit_auc"]
    assert not auc.passed and 0.35 <= auc.value < 0.65, auc
    assert branch_words(auc.feedback, MIA) == {"guessing"}, auc.feedback
    assert WEAK_ATTACK in outcomes["mia_leak_gap"].feedback


def test_a_strong_attack_that_leaks_alike_from_both_models_is_not_called_weak(hybrid):
    """Scores that separate the members of both staff models alike (AUC 1 against each): the gap fails,
    and its hint does not call the attack itself weak."""
    g = recorder(PART)
    is_member = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    scores = done("membership_scores", torch.from_numpy(is_member.astype(np.float64)))
    hybrid.judge_mia(g, {"mia": (is_member, {"early": scores, "overfit": scores})})
    auc, gap = g.outcomes["mia_overfit_auc"], g.outcomes["mia_leak_gap"]
    assert auc.passed and auc.value == 1.0 and not gap.passed and gap.value == 0.0, (auc, gap)
    assert "should leak clearly more than the early-stopped one" in gap.feedback and WEAK_ATTACK not in gap.feedback


# ---- seed_changes and seed_repeats

def test_a_sampler_that_ignores_its_seed_is_told_two_seeds_gave_the_same_images(hybrid):
    run = start(hybrid)
    fresh = digits_from(run.data.x_held, run.data.y_held)
    asked = round_one(hybrid, run, **{"model.sample": lambda labels, *, guidance, seed: fresh(labels, guidance=guidance,
                                                                                             seed=0)})
    hybrid.judge_seed_changes(run.g, asked, run.y_eval)
    outcome = run.g.outcomes["seed_changes"]
    assert not outcome.passed and outcome.value == 0.0, outcome
    assert branch_words(outcome.feedback, SEED) == {"fixed_seed"}, outcome.feedback


def test_a_sampler_without_noise_is_told_its_samples_hardly_differ_within_a_call(hybrid):
    run = start(hybrid)
    means = np.stack([run.data.x_train[run.data.y_train == c].mean(0) for c in range(10)])  # one image per label
    asked = round_one(hybrid, run, **{"model.sample": lambda labels, *, guidance, seed: torch.from_numpy(
        means[labels.numpy()])})
    hybrid.judge_seed_changes(run.g, asked, run.y_eval)
    outcome = run.g.outcomes["seed_changes"]
    assert not outcome.passed and outcome.value == 0.0, outcome
    assert branch_words(outcome.feedback, SEED) == {"frozen"}, outcome.feedback
    assert "between samples of one label 0.000" in outcome.feedback


def repeats(hybrid, sample: Callable) -> object:
    """seed_repeats for a sampler: seed_a as round one asks it, and again as round two does."""
    run = start(hybrid)
    run.g.answering.submission = SimpleNamespace(**{"model.sample": sample})
    asked, later = ({key: run.g.answering.call("model.sample", run.y_eval[:hybrid.N_SEED], guidance=run.guidance.mid,
                                               seed=run.seeds[1])} for key in ("seed_a", "seed_a_again"))
    hybrid.judge_seed_repeats(run.g, asked, later)
    return run.g.outcomes["seed_repeats"]


@pytest.fixture(scope="module")
def untrained(reference) -> object:
    """The reference's model, untrained: repeatability is its code's, not its training's."""
    torch.manual_seed(0)
    return reference.GuidedFlow(hidden=32).eval()


def test_seed_repeats_passes_the_reference_and_tells_the_global_generator_from_a_near_repeat(hybrid, untrained,
                                                                                            wrong):
    assert repeats(hybrid, untrained.sample).passed
    torch.manual_seed(0)
    careless = wrong("sampler_ignores_seed").GuidedFlow(hidden=32).eval()
    careless.load_state_dict(untrained.state_dict())
    outcome = repeats(hybrid, careless.sample)                      # its noise from the global generator
    assert not outcome.passed and outcome.value > 0.01, outcome
    assert branch_words(outcome.feedback, REPEAT) == {"other"}, outcome.feedback

    def jitters(labels, *, guidance, seed):  # the right noise, plus a little from the global generator
        return (untrained.sample(labels, guidance=guidance, seed=seed) + 1e-3 * torch.rand(len(labels), 64)).clamp(0, 1)

    outcome = repeats(hybrid, jitters)
    assert not outcome.passed and 1e-4 < outcome.value < 1e-2, outcome
    assert branch_words(outcome.feedback, REPEAT) == {"nearly"}, outcome.feedback


# ---- the sample checks: accuracy, not_copies, the trade-off, and when they count

QUALITY_PASSED = ("flow_heldout", "sampler_uses_model")


def judged_samples(hybrid, sampler: Callable[[Run], Callable], prerequisites: bool = True) -> tuple[Run, dict]:
    """judge_samples on the samples of `sampler(run)`, with the two checks they depend on recorded as passed
    (or as failed), as round two leaves them."""
    run = start(hybrid)
    asked = round_one(hybrid, run, **{"model.sample": sampler(run)})
    for name in QUALITY_PASSED:
        run.g.record(name, prerequisites, "measured", value=0.0)
    hybrid.judge_samples(run.g, run.data, run.cnn, run.guidance, run.x_eval, run.y_eval, asked)
    return run, {name: run.g.outcomes[name] for name in hybrid.QUALITY}


TRADEOFF = {"tradeoff_accuracy": "Accuracy should not drop as the guidance grows",
            "tradeoff_recall": "Recall (coverage of the real digits) should not grow with the guidance",
            "guidance_effect": "Does sample() use `guidance`?",
            "recall_c": "At w = 0 your samples cover too little of the real digits' variety",
            "not_copies": "the model reproduces its training set"}


def failed_with_own_hint(outcomes: dict, failing: set[str]) -> None:
    """Exactly the `failing` checks failed, each with its own hint and none with another's."""
    assert {name for name, o in outcomes.items() if not o.passed} == failing, {
        name: o.feedback for name, o in outcomes.items() if not o.passed}
    for name, outcome in outcomes.items():
        assert branch_words(outcome.feedback, TRADEOFF) == ({name} & failing & set(TRADEOFF)), (name, outcome.feedback)


def test_new_digits_that_ignore_the_guidance_fail_only_guidance_effect(hybrid):
    """Held-out digits of the requested labels at every w: accurate, new, diverse, but no trade-off."""
    run, outcomes = judged_samples(hybrid, lambda run: digits_from(run.data.x_held, run.data.y_held))
    failed_with_own_hint(outcomes, {"guidance_effect"})
    assert f"Guidance w = {run.guidance.high:.2f} should visibly change the samples" in outcomes["guidance_effect"].feedback
    assert outcomes["not_copies"].staff_note.startswith("median distance to training / to fresh digits")
    assert "nearer the training set" not in outcomes["not_copies"].staff_note


def test_training_digits_with_noise_are_told_they_reproduce_the_training_set(hybrid):
    """wrong/copies_training_images: a training digit of the label plus noise 0.03."""
    _, outcomes = judged_samples(hybrid, lambda run: digits_from(run.data.x_train, run.data.y_train, noise=0.03))
    failed_with_own_hint(outcomes, {"not_copies", "guidance_effect"})
    assert outcomes["not_copies"].value < 0.8, outcomes["not_copies"]
    assert outcomes["not_copies"].staff_note.endswith("(nearer the training set than fresh data)")


def shuffled_at(ws: Callable[[float], bool]) -> Callable[[Run], Callable]:
    """Held-out digits, of the requested labels, except at the w where `ws(w)`: of labels shifted by one."""
    def sampler(run: Run) -> Callable:
        fresh = digits_from(run.data.x_held, run.data.y_held)
        return lambda labels, *, guidance, seed: fresh((labels + 1) % 10 if ws(guidance) else labels,
                                                       guidance=guidance, seed=seed)
    return sampler


def test_a_sampler_unconditional_at_w_zero_gets_the_convention_hint_with_its_accuracies(hybrid):
    """The s = 1 + w convention's pattern, measured by the staff classifier: no label at w = 0, right near 1."""
    run, outcomes = judged_samples(hybrid, shuffled_at(lambda w: w == 0.0))
    unguided = outcomes["accuracy_unguided"]
    assert not unguided.passed and unguided.value < 0.1 and outcomes["accuracy"].passed, unguided
    assert branch_words(unguided.feedback, ACCURACY) == {"convention"}, unguided.feedback
    assert f"{unguided.value:.0%} of your samples show the requested digit, at w = {run.guidance.mid:.2f}" in \
        unguided.feedback


def test_the_trade_off_checks_each_name_only_the_rule_their_numbers_break(hybrid):
    """judge_tradeoff on accuracy and recall per w (prerequisites passed): each row of numbers breaks one rule."""
    cases = {  # accuracies and recalls at w = 0, mid, high -> the checks that fail
        ((0.85, 0.95, 0.97), (0.70, 0.62, 0.55)): set(),
        ((0.85, 0.95, 0.88), (0.70, 0.62, 0.55)): {"tradeoff_accuracy"},      # drops 0.07 from mid to high
        ((0.85, 0.95, 0.97), (0.60, 0.65, 0.50)): {"tradeoff_recall"},        # grows 0.05, then falls
        ((0.85, 0.95, 0.97), (0.70, 0.69, 0.68)): {"guidance_effect"},        # strong guidance changes nothing
        ((0.85, 0.95, 0.97), (0.45, 0.40, 0.30)): {"recall_c"},
    }
    for (accs, recalls), failing in cases.items():
        g = recorder(PART)
        for name in QUALITY_PASSED:
            g.record(name, True, "measured", value=0.0)
        guidance = hybrid.Guidance(1.2, 3.0)
        rows = {w: {"accuracy": a, "precision": 0.9, "recall": r} for w, a, r in zip(guidance.values, accs, recalls,
                                                                                    strict=True)}
        hybrid.judge_tradeoff(g, guidance, rows, "TABLE")
        names = ("tradeoff_accuracy", "tradeoff_recall", "guidance_effect", "recall_c")
        failed_with_own_hint({name: g.outcomes[name] for name in names}, failing)


NOT_COUNTED = "Not counted: samples are scored only when they come from your learned model"


def test_samples_are_not_counted_when_they_were_not_shown_to_come_from_the_learned_model(hybrid):
    run, outcomes = judged_samples(hybrid, lambda run: digits_from(run.data.x_held, run.data.y_held),
                                   prerequisites=False)
    for name, outcome in outcomes.items():
        assert outcome.status == Status.FAILED and outcome.feedback.startswith(NOT_COUNTED), (name, outcome)
        assert outcome.value is None
    assert "not_copies not counted; median distance to training / to fresh digits" in run.g.log.text("staff")


def test_a_sampler_not_yet_written_is_told_not_attempted_and_an_unchecked_one_keeps_its_reason(hybrid):
    g = recorder(PART)
    handout = NotTrained("Not attempted: fit() is not implemented yet.", not_attempted=True)
    asked = {"samples": {w: done("model.sample", error=handout) for w in (0.0, 1.2, 3.0)}}
    hybrid.judge_samples(g, None, None, hybrid.Guidance(1.2, 3.0), None, None, asked)
    for name in hybrid.QUALITY:
        outcome = g.outcomes[name]
        assert outcome.status == Status.NOT_ATTEMPTED, outcome
        assert outcome.feedback == "Not attempted: fit() is not implemented yet.", outcome.feedback

    g = recorder(PART)
    g.record("flow_heldout", True, "measured", value=0.0)
    with g.section("sampler_uses_model"):
        raise CallFailed("model.velocity raised ValueError: shapes", entry="model.velocity", exception_type="ValueError")
    hybrid.judge_tradeoff(g, hybrid.Guidance(1.2, 3.0), {w: {"accuracy": 0.9, "precision": 0.9, "recall": 0.6}
                                                         for w in (0.0, 1.2, 3.0)}, "TABLE")
    for name in ("tradeoff_accuracy", "tradeoff_recall", "guidance_effect", "recall_c"):
        outcome = g.outcomes[name]
        assert outcome.status == Status.NOT_CHECKED and "model.velocity raised ValueError" in outcome.feedback, outcome
        assert NOT_COUNTED not in outcome.feedback


# ---- sampler_uses_model and flow_heldout (judge_method: the grader's own integration against model.sample)

def method(hybrid, theirs: Callable[[np.ndarray], np.ndarray], losses: tuple[float, float, float]) -> dict:
    """judge_method with the grader's integration given (its samples: held-out digits of the labels asked;
    its held-out and training losses) and model.sample's answer `theirs(those digits)`."""
    run = start(hybrid)
    ours = digits_from(run.data.x_held, run.data.y_held)(torch.from_numpy(run.y_eval), guidance=0.0, seed=1).numpy()
    asked = {"samples": {run.guidance.mid: done("model.sample", torch.from_numpy(theirs(ours)))}}
    hybrid.judge_method(run.g, run.cnn, run.guidance, hybrid.Integrated(ours.astype(np.float32), *losses), asked,
                        run.y_eval)
    return {name: run.g.outcomes[name] for name in ("sampler_uses_model", "flow_heldout")}


SAMPLER = "model.sample should integrate the same velocity your model.velocity returns"


def test_a_sampler_that_follows_the_velocity_passes_and_one_that_skips_the_rescaling_is_told_so(hybrid):
    outcomes = method(hybrid, lambda ours: ours, (20.0, 25.0, 19.0))
    assert all(o.passed for o in outcomes.values()), outcomes
    assert SAMPLER not in outcomes["sampler_uses_model"].feedback
    outcomes = method(hybrid, lambda ours: np.clip(2 * ours - 1, 0, 1), (20.0, 25.0, 19.0))  # wrong/pixels_not_rescaled
    uses = outcomes["sampler_uses_model"]
    assert not uses.passed and SAMPLER in uses.feedback and "map the result from [-1, 1] back to pixels" in uses.feedback
    assert "your model.sample gives" in uses.feedback and outcomes["flow_heldout"].passed


def test_flow_heldout_says_which_loss_was_high(hybrid):
    """wrong/no_label_dropout's numbers (the null label's loss high) and a formula over stored digits (low on
    training digits only), through judge_method: the hint's branch and the detail's losses."""
    for losses, branch in (((20.0, 300.0, 18.0), "uncond"), ((90.0, 95.0, 10.0), "memorises")):
        outcome = method(hybrid, lambda ours: ours, losses)["flow_heldout"]
        assert not outcome.passed and outcome.value == max(losses[:2]), outcome
        assert branch_words(outcome.feedback, FLOW) == {branch}, outcome.feedback
        assert (f"conditional {losses[0]:.1f}, unconditional {losses[1]:.1f} (on training digits {losses[2]:.1f})"
                in outcome.feedback)


# ---- the training budgets

def test_the_budget_checks_report_the_time_the_quick_flag_and_a_latent_model_not_attempted(hybrid):
    g = recorder(PART)
    hybrid.record_budget(g, "fit_budget", Trained("fit", "model", seconds=30.0), 20.0)
    hybrid.record_budget(g, "latent_budget", Trained("fit_latent", "latent", seconds=0.4, quick=True), 15.0)
    slow, quick = g.outcomes["fit_budget"], g.outcomes["latent_budget"]
    assert not slow.passed and slow.threshold == 22.0 and slow.feedback.endswith(TRAINING_HINT), slow
    assert quick.passed and quick.staff_note == "flagged to the examiner: far sooner than any training", quick

    g = recorder(PART)
    handout = CallFailed("fit_latent raised NotImplementedError: fit_latent", entry="fit_latent",
                         exception_type="NotImplementedError")
    hybrid.record_budget(g, "latent_budget", Trained("fit_latent", "latent", error=handout), 15.0)
    hybrid.record_budget(g, "fit_budget", Trained("fit", "model", seconds=12.0), 20.0)
    outcome = g.outcomes["latent_budget"]
    assert outcome.status == Status.NOT_ATTEMPTED, outcome
    assert outcome.feedback == "Not attempted: fit_latent() is not implemented yet (it raises NotImplementedError)."
    assert g.outcomes["fit_budget"].passed and g.outcomes["fit_budget"].staff_note == ""


# ---- A: the latent hybrid

LATENT = ("latent_dim", "latent_recon", "latent_samples_decoded", "latent_accuracy", "latent_recall")
JAGGED = "Not counted: decode is not a smooth function of its latent"
COPIED = "Not counted: your latent model's samples lie nearer to training images than to new digits"


def velocity_failed(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """model.velocity as the sandbox reports a call that raised: round two's integration (64 calls, the
    E checks' business) stops at its first call, and the round goes on to the latent queries."""
    raise CallFailed("model.velocity raised RuntimeError: not asked in these tests", entry="model.velocity",
                     exception_type="RuntimeError")


def latent(hybrid, changed: Callable[[Run], dict] = lambda run: {}) -> tuple[Run, dict]:
    """The three rounds and judge_latent, answered by `answers(run)` with `changed(run)` laid over them."""
    run = start(hybrid)
    asked, later, cycle = rounds(hybrid, run, **{"model.velocity": velocity_failed} | changed(run))
    assert run.g.outcomes["sampler_uses_model"].status == Status.NOT_CHECKED
    hybrid.judge_latent(run.g, run.data, run.cnn, run.x_eval, run.y_eval, run.guidance, asked, later, cycle)
    return run, {name: run.g.outcomes[name] for name in LATENT}


def test_a_smooth_decoder_and_decoded_samples_are_scored(hybrid):
    """The stand-in latent model (a projection and a sigmoid of it, samples decoded from its latents): every
    A check is measured, none is set aside."""
    run, outcomes = latent(hybrid)
    for name, outcome in outcomes.items():
        assert not outcome.feedback.startswith("Not counted"), (name, outcome.feedback)
    assert outcomes["latent_dim"].passed and outcomes["latent_samples_decoded"].passed, outcomes
    assert float(outcomes["latent_recon"].staff_note.removeprefix("smoothness ratio ")) < 0.3
    assert "Train the autoencoder longer or wider" in outcomes["latent_recon"].feedback  # it reconstructs badly
    assert "Condition the latent flow on the label" in outcomes["latent_accuracy"].feedback  # its samples ignore it
    assert "Standardise the latents" in outcomes["latent_recall"].feedback
    assert not run.g.flags


def test_a_decoder_that_jumps_between_nearby_latents_is_not_counted(hybrid):
    def jagged(z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.sin(1000 * z.double()) @ PROJECTION.T * 4)

    _, outcomes = latent(hybrid, lambda run: {"latent.decode": jagged})
    recon = outcomes["latent_recon"]
    assert not recon.passed and recon.feedback.startswith(JAGGED), recon.feedback
    assert float(recon.staff_note.removeprefix("smoothness ratio ")) > 0.3
    assert "Train the autoencoder longer" not in recon.feedback


def test_latent_samples_that_are_training_digits_are_flagged_and_not_counted(hybrid):
    run, outcomes = latent(hybrid, lambda run: {"latent.sample": digits_from(run.data.x_train, run.data.y_train)})
    for name in ("latent_samples_decoded", "latent_accuracy", "latent_recall"):
        assert not outcomes[name].passed and outcomes[name].feedback.startswith(COPIED), outcomes[name]
    assert outcomes["latent_dim"].passed and not outcomes["latent_recon"].feedback.startswith(JAGGED)
    assert len(run.g.flags) == 1 and run.g.flags[0].startswith("latent.sample: samples lie nearer the training digits")


def test_latent_samples_that_are_not_decoder_outputs_are_told_to_decode_their_latents(hybrid):
    """New real digits as latent samples: not copies, but they re-encode as badly as real digits do."""
    _, outcomes = latent(hybrid, lambda run: {"latent.sample": digits_from(run.data.x_held, run.data.y_held)})
    decoded = outcomes["latent_samples_decoded"]
    assert not decoded.passed and decoded.value > 0.5, decoded
    assert "Samples should be decode(z) for latents z drawn by your latent flow." in decoded.feedback
    assert COPIED not in decoded.feedback and outcomes["latent_accuracy"].passed


def test_a_wide_latent_is_told_the_bottleneck(hybrid):
    wide = torch.from_numpy(np.random.default_rng(1).standard_normal((64, 20)) / 8)
    _, outcomes = latent(hybrid, lambda run: {"latent.encode": lambda x: (x.double() - 0.5) @ wide,
                                              "latent.decode": lambda z: torch.sigmoid(4 * z.double() @ wide.T)})
    assert not outcomes["latent_dim"].passed and outcomes["latent_dim"].value == 20
    assert "Use a bottleneck of at most 16 latent numbers." in outcomes["latent_dim"].feedback


def test_a_latent_model_not_yet_written_is_not_attempted_in_every_a_check(hybrid):
    """The handout's fit_latent raises NotImplementedError: every latent query ends with the grader's
    "not attempted" (round two and three skip the latent queries), and each A check says so."""
    run = start(hybrid)
    asked = round_one(hybrid, run, **{"model.velocity": velocity_failed})
    handout = NotTrained("Not attempted: fit_latent() is not implemented yet.", not_attempted=True)
    asked["latent_encode"] = done("latent.encode", error=handout)
    asked["latent_samples"] = {w: done("latent.sample", error=handout) for w in asked["latent_samples"]}
    with run.g.round() as r:
        later = hybrid.ask_round_two(r, run.g, run.data, run.guidance, run.y_eval, run.others, run.cnn, asked,
                                     run.seeds)
    with run.g.round() as r:
        cycle = hybrid.ask_round_three(r, run.g, later)
    assert "decode" not in later and cycle == {}
    hybrid.judge_latent(run.g, run.data, run.cnn, run.x_eval, run.y_eval, run.guidance, asked, later, cycle)
    for name in LATENT:
        outcome = run.g.outcomes[name]
        assert outcome.status == Status.NOT_ATTEMPTED, outcome
        assert outcome.feedback == "Not attempted: fit_latent() is not implemented yet.", outcome.feedback
