"""The grade policy as a table: the shipped assignments/lab1/grading.toml and the pure propose_grade().

Each row is one student's facts over the seven parts of the two oral blocks, written compactly:
tiers  one letter per part: A, C, E = tier reached; "-" = submitted but E not passed; "x" = not submitted;
orals  one letter per part: p = passed, ~ = partly, f = failed, . = not held.
"""

from __future__ import annotations

import pytest

from courseware.settings import ASSIGNMENTS_DIR
from examination.policy import (
    Facts,
    PartFacts,
    PolicyError,
    load_policy,
    parse_policy,
    propose_grade,
    tier_reached,
)

POLICY = load_policy(ASSIGNMENTS_DIR / "lab1" / "grading.toml")
SLUGS = ("mdn", "autoregressive", "flows", "vae", "diffusion", "gan", "evaluation")
POINTS = {"A": 10.0, "C": 9.0, "E": 7.0, "-": 3.0, "x": 0.0}
ORALS = {"p": "passed", "~": "partly", "f": "failed", ".": None}
ALL_COMPONENTS = {"video": "passed", "seminar": "passed", "ethics": "passed"}


def facts(tiers: str, orals: str = "ppppppp", components: dict | None = None, points: dict | None = None) -> Facts:
    parts = []
    for slug, t, o in zip(SLUGS, tiers, orals, strict=True):
        parts.append(PartFacts(slug=slug, tier=None if t in "-x" else t, submitted=t != "x",
                               points=(points or {}).get(slug, POINTS[t]), max_points=10.0, oral=ORALS[o]))
    return Facts(parts=tuple(parts), components=ALL_COMPONENTS if components is None else components)


NO_VIDEO = {"video": "not_done", "seminar": "passed", "ethics": "passed"}
ONLY_ETHICS = {"ethics": "passed"}
NO_ETHICS = {"video": "passed", "seminar": "passed", "ethics": "not_done"}

TABLE = [
    # id, facts, grade, phrases the explanation must contain
    ("A", facts("AAAACCC"), "A",
     ["A: all 7 E parts passed with oral", "A tier in 4 of 7 parts (A needs 4)", "Presentation video passed"]),
    ("B", facts("AACCCEE"), "B", ["B: all 7 E parts", "A tier in 2 of 7 parts (B needs 2)",
                                  "A not reached: C tier in 5 of 7 parts (A needs 6); A tier in 2 of 7 parts (A needs 4)"]),
    ("A work without video is C", facts("AAAACCC", components=NO_VIDEO), "C",
     ["C: all 7 E parts passed with oral", "B not reached: Presentation video not done"]),
    ("C", facts("CCCCEEE", components=ONLY_ETHICS), "C", ["C tier in 4 of 7 parts (C needs 4)", "81% of points"]),
    ("C tiers but too few points is D", facts("CCCCEEE", components=ONLY_ETHICS,
                                               points={s: 4.0 for s in SLUGS[4:]}), "D",
     ["D: all 7 E parts", "C not reached: 69% of points (C needs 70%)"]),
    ("D", facts("CCEEEEE", components=ONLY_ETHICS), "D", ["C tier in 2 of 7 parts (D needs 2)"]),
    ("E", facts("EEEEEEE", components=ONLY_ETHICS), "E",
     ["E: all 7 E parts passed with oral; Ethics quiz passed", "D not reached: C tier in 0 of 7 parts (D needs 2)"]),
    ("FX: one E part not passed", facts("EEE-EEE"), "FX",
     ["FX: close to E", "1 requirement for E missing", "vae: E checks not passed"]),
    ("FX: one E part not submitted", facts("EEEEEEx"), "FX", ["evaluation: E checks not submitted"]),
    ("FX: one oral partly", facts("AAAAAAA", "ppp~ppp"), "FX", ["oral on vae partly", "does not count"]),
    ("FX: ethics quiz missing", facts("EEEEEEE", components=NO_ETHICS), "FX", ["Ethics quiz not done"]),
    ("F: two E parts missing", facts("EE--EEE"), "F",
     ["F: 2 requirement(s) for E missing", "flows: E checks not passed", "vae: E checks not passed"]),
    ("F: a part missing and an oral partly", facts("EEEEE-E", "p~ppppp"), "F", ["2 requirement(s)"]),
    ("F: failed oral blocks an A part", facts("AAAACCC", "fpppppp"), "F",
     ["oral on mdn failed: the part does not count", "not completable to E: FX does not apply",
      "mdn: tier A, 10/10 points, oral failed — failed oral: the part does not count"]),
    ("F: oral not held yet", facts("EEEEEEE", "pppppp."), "F", ["oral on evaluation not held yet"]),
    ("F: nothing done", facts("xxxxxxx", "......."), "F", ["F: 7 requirement(s)"]),
]


@pytest.mark.parametrize("facts_, grade, phrases", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_policy_table(facts_, grade, phrases):
    proposal = propose_grade(POLICY, facts_)
    text = "\n".join(proposal.explanation)
    assert proposal.grade == grade, text
    assert proposal.explanation[0].startswith(f"{grade}:"), text
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in:\n{text}"
    above = 1 if grade in ("B", "C", "D", "E") else 0  # what the grade above lacks
    assert len(proposal.explanation) == 1 + above + len(SLUGS)


def test_every_grade_is_reachable():
    reached = {propose_grade(POLICY, row[1]).grade for row in TABLE}
    assert reached == {"A", "B", "C", "D", "E", "FX", "F"}


def test_a_failed_oral_takes_the_part_out_of_every_count():
    """An A-tier part with a failed oral counts for nothing: not for E, not for C or A tiers, no points."""
    passed = propose_grade(POLICY, facts("AAAACCC", "ppppppp"))
    failed_extension = propose_grade(POLICY, facts("AAAACCC", "ppppppf"))
    assert passed.grade == "A" and failed_extension.grade == "F"
    higher = parse_policy({**_minimal(), "blocks": [{"key": "b", "parts": ["core", "ext"]}]})
    extension_part = Facts(parts=(PartFacts("core", tier="C", oral="passed", points=9, max_points=10),
                                  PartFacts("ext", required=False, tier="C", oral="failed", points=9, max_points=10)),
                           components={})
    proposal = propose_grade(higher, extension_part)
    assert proposal.grade == "D", proposal.explanation  # C needs C tier in 2 parts; the failed one does not count
    assert "C not reached: C tier in 1 of 2 parts (C needs 2); 45% of points (C needs 50%)" in proposal.explanation


def _minimal() -> dict:
    return {"grades": {"A": {"parts_at_tier": {"A": 2}}, "B": {"parts_at_tier": {"A": 1}},
                       "C": {"parts_at_tier": {"C": 2}, "min_points": 0.5}, "D": {"parts_at_tier": {"C": 1}},
                       "E": {}}}


@pytest.mark.parametrize("checks, tier", [
    ([], None),
    ([("E", True), ("E", True)], "E"),
    ([("E", True), ("E", False)], None),
    ([("E", True), ("C", True), ("A", False)], "C"),
    ([("E", True), ("C", False), ("A", True)], "E"),  # A needs every lower tier too
    ([("E", True), ("A", True)], "A"),  # a tier without checks is stepped over
    ([("C", True)], "C"),  # an extension part with only C checks
])
def test_tier_reached(checks, tier):
    assert tier_reached(checks) == tier


def test_shipped_policy_has_the_course_memos_two_orals_and_components():
    assert [b.parts for b in POLICY.blocks] == [("mdn", "autoregressive", "flows"),
                                               ("vae", "diffusion", "gan", "evaluation", "hybrid")]
    assert {c.key for c in POLICY.components} == {"video", "seminar", "ethics"}
    assert POLICY.component("video").link
    for grade in "AB":
        assert {"video", "seminar"} <= set(POLICY.rule(grade).components)
    assert len(POLICY.digest) == 64


@pytest.mark.parametrize("change, message", [
    ({"grades": {"E": {}}}, "no rule for A"),
    ({"oral_counts": ["passed", "failed"]}, "failed oral never"),
    ({"blocks": [{"key": "1", "parts": ["mdn"]}, {"key": "2", "parts": ["mdn"]}]}, "two oral blocks"),
    ({"fx": {"completable": ["bribery"]}}, "unknown kinds"),
])
def test_malformed_policies_are_refused(change, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy({**_minimal(), **change})
