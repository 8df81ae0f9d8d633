"""The LAB1 grade policy: data in `assignments/lab1/grading.toml`, read here, applied by a pure function.

`propose_grade(policy, facts)` knows nothing about the database: the facts (tiers reached, points, oral
outcomes, components) are gathered elsewhere (examination.results) and handed in, so every rule can be
tested with a table and the examiner can read, next to the proposal, exactly why it came out that way.
The proposal is only a proposal: the examiner decides (examination.models.GradeDecision).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GRADES = ("A", "B", "C", "D", "E", "FX", "F")
PASSING = ("A", "B", "C", "D", "E")
ORAL_OUTCOMES = ("passed", "partly", "failed")
COMPONENT_STATUSES = ("not_done", "passed", "failed")

# The ways a student can fall short of E; the policy names which of them FX may be completed from.
DEFICIT_KINDS = ("part_not_passed", "oral_partly", "oral_missing", "oral_failed", "component_not_passed")


class PolicyError(ValueError):
    """A malformed grading.toml; the message names the field."""


@dataclass(frozen=True)
class Block:
    """One oral exam: it covers several parts at once (the course memo's first and second oral)."""

    key: str
    title: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class ComponentSpec:
    """Graded work that is not automated (presentation video, seminar, ethics quiz), recorded by staff."""

    key: str
    title: str
    link: bool = False  # whether staff record a link (the video's URL)


@dataclass(frozen=True)
class GradeRule:
    grade: str
    parts_at_tier: Mapping[str, int] = field(default_factory=dict)  # {"C": 4, "A": 2}: counting parts
    min_points: float = 0.0  # fraction of all offered points, counting only parts that count
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    tiers: tuple[str, ...]  # lowest first
    oral_counts: tuple[str, ...]  # oral outcomes with which a part counts
    blocks: tuple[Block, ...]
    components: tuple[ComponentSpec, ...]
    grades: tuple[GradeRule, ...]  # A first, E last
    fx_max_missing: int
    fx_completable: tuple[str, ...]
    digest: str = ""

    @property
    def part_order(self) -> tuple[str, ...]:
        """The course order of the parts: as the oral blocks list them (the course memo's order)."""
        return tuple(slug for block in self.blocks for slug in block.parts)

    def position(self, slug: str) -> int:
        """A part's place in the course order; parts the policy does not name come after all others."""
        order = self.part_order
        return order.index(slug) if slug in order else len(order)

    def block(self, key: str) -> Block | None:
        return next((b for b in self.blocks if b.key == key), None)

    def block_of(self, slug: str) -> Block | None:
        return next((b for b in self.blocks if slug in b.parts), None)

    def component(self, key: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.key == key), None)

    def component_title(self, key: str) -> str:
        spec = self.component(key)
        return spec.title if spec else key

    def rule(self, grade: str) -> GradeRule:
        return next(r for r in self.grades if r.grade == grade)


@dataclass(frozen=True)
class PartFacts:
    """What the platform knows about one part for one student."""

    slug: str
    required: bool = True  # an E-core part; False for a higher-grade extension part
    tier: str | None = None  # highest tier reached in the latest done run (None: not passed / not graded)
    points: float = 0.0
    max_points: float = 0.0
    oral: str | None = None  # passed | partly | failed | None (not examined yet)
    submitted: bool = False


@dataclass(frozen=True)
class Facts:
    parts: tuple[PartFacts, ...]
    components: Mapping[str, str] = field(default_factory=dict)  # key -> not_done | passed | failed


@dataclass(frozen=True)
class Proposal:
    grade: str
    explanation: tuple[str, ...]

    @property
    def headline(self) -> str:
        return self.explanation[0] if self.explanation else self.grade


def tier_reached(checks: list[tuple[str, bool]], tiers: tuple[str, ...] = ("E", "C", "A")) -> str | None:
    """The highest tier whose checks, and those of every lower tier, all passed. A tier with no checks
    is stepped over: a part with only E checks can reach E and nothing higher."""
    reached = None
    for tier in tiers:
        of_tier = [passed for t, passed in checks if t == tier]
        if not of_tier:
            continue
        if not all(of_tier):
            break
        reached = tier
    return reached


def load_policy(path: Path | None = None) -> Policy:
    if path is None:
        from django.conf import settings

        path = Path(settings.ASSIGNMENTS_DIR) / "lab1" / "grading.toml"
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    return parse_policy(data, digest=hashlib.sha256(raw).hexdigest())


def parse_policy(data: Mapping, digest: str = "") -> Policy:
    tiers = tuple(data.get("tiers", ("E", "C", "A")))
    blocks = tuple(Block(str(b["key"]), str(b.get("title", b["key"])), tuple(b["parts"]))
                   for b in data.get("blocks", []))
    seen: set[str] = set()
    for block in blocks:
        if seen & set(block.parts):
            raise PolicyError(f"blocks: a part is in two oral blocks: {sorted(seen & set(block.parts))}")
        seen |= set(block.parts)
    components = tuple(ComponentSpec(str(c["key"]), str(c.get("title", c["key"])), bool(c.get("link", False)))
                       for c in data.get("components", []))
    component_keys = {c.key for c in components}
    grades_table = data.get("grades", {})
    grades = []
    for grade in PASSING:
        if grade not in grades_table:
            raise PolicyError(f"grades: no rule for {grade}")
        table = grades_table[grade]
        rule = GradeRule(grade, dict(table.get("parts_at_tier", {})), float(table.get("min_points", 0.0)),
                         tuple(table.get("components", ())))
        if unknown := set(rule.parts_at_tier) - set(tiers):
            raise PolicyError(f"grades.{grade}.parts_at_tier: unknown tiers {sorted(unknown)}")
        if unknown := set(rule.components) - component_keys:
            raise PolicyError(f"grades.{grade}.components: unknown components {sorted(unknown)}")
        grades.append(rule)
    oral_counts = tuple(data.get("oral_counts", ("passed",)))
    if "failed" in oral_counts or set(oral_counts) - set(ORAL_OUTCOMES):
        raise PolicyError("oral_counts: a failed oral never lets a part count")
    fx = data.get("fx", {})
    completable = tuple(fx.get("completable", ("part_not_passed", "oral_partly")))
    if unknown := set(completable) - set(DEFICIT_KINDS):
        raise PolicyError(f"fx.completable: unknown kinds {sorted(unknown)}")
    return Policy(tiers=tiers, oral_counts=oral_counts, blocks=blocks, components=components, grades=tuple(grades),
                  fx_max_missing=int(fx.get("max_missing", 1)), fx_completable=completable, digest=digest)


# ---- the proposal ---------------------------------------------------------------------------------

def _at_least(tier: str | None, wanted: str, tiers: tuple[str, ...]) -> bool:
    return tier is not None and tiers.index(tier) >= tiers.index(wanted)


def _part_counts(policy: Policy, part: PartFacts) -> bool:
    """A part counts when its oral (if its block has one) ended in an outcome the policy accepts."""
    return policy.block_of(part.slug) is None or part.oral in policy.oral_counts


def _deficit(policy: Policy, part: PartFacts) -> tuple[str, str] | None:
    """Why a required part does not give E, as (kind, words); None when it does."""
    needs_oral = policy.block_of(part.slug) is not None
    if needs_oral and part.oral == "failed":
        return "oral_failed", f"oral on {part.slug} failed: the part does not count"
    if part.tier is None:
        what = "not passed" if part.submitted else "not submitted"
        return "part_not_passed", f"{part.slug}: E checks {what}"
    if needs_oral and part.oral is None:
        return "oral_missing", f"oral on {part.slug} not held yet"
    if needs_oral and part.oral not in policy.oral_counts:
        return "oral_partly", f"oral on {part.slug} {part.oral}"
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass(frozen=True)
class _Standing:
    """What every rule of a proposal reads: the parts that count and the fraction of points."""

    policy: Policy
    facts: Facts
    counting: tuple[PartFacts, ...]
    required: tuple[PartFacts, ...]
    fraction: float

    @classmethod
    def of(cls, policy: Policy, facts: Facts) -> _Standing:
        counting = tuple(p for p in facts.parts if _part_counts(policy, p))
        offered = sum(p.max_points for p in facts.parts)
        points = sum(p.points for p in counting)
        return cls(policy, facts, counting, tuple(p for p in facts.parts if p.required),
                   points / offered if offered else 0.0)

    def at_tier(self, tier: str) -> int:
        return sum(1 for p in self.counting if _at_least(p.tier, tier, self.policy.tiers))

    def component(self, key: str) -> str:
        return self.facts.components.get(key, "not_done")

    def deficits(self) -> list[tuple[str, str]]:
        """Why the student falls short of E, as (kind, words): required parts, then E's components."""
        found = [d for p in self.required if (d := _deficit(self.policy, p))]
        for key in self.policy.rule("E").components:
            if (status := self.component(key)) != "passed":
                found.append(("component_not_passed",
                              f"{self.policy.component_title(key)} {status.replace('_', ' ')}"))
        return found

    def shortfalls(self, rule: GradeRule) -> list[str]:
        lacks = []
        for tier, needed in rule.parts_at_tier.items():
            if (have := self.at_tier(tier)) < needed:
                lacks.append(f"{tier} tier in {have} of {len(self.facts.parts)} parts ({rule.grade} needs {needed})")
        if self.fraction + 1e-9 < rule.min_points:
            lacks.append(f"{_pct(self.fraction)} of points ({rule.grade} needs {_pct(rule.min_points)})")
        for key in rule.components:
            if (status := self.component(key)) != "passed":
                lacks.append(f"{self.policy.component_title(key)} {status.replace('_', ' ')}")
        return lacks

    def achieved(self, rule: GradeRule) -> list[str]:
        said = [f"all {len(self.required)} E parts passed with oral"]
        for tier, needed in rule.parts_at_tier.items():
            said.append(f"{tier} tier in {self.at_tier(tier)} of {len(self.facts.parts)} parts "
                        f"({rule.grade} needs {needed})")
        if rule.min_points:
            said.append(f"{_pct(self.fraction)} of points ({rule.grade} needs {_pct(rule.min_points)})")
        said += [f"{self.policy.component_title(k)} passed" for k in rule.components]
        return said


def _part_line(policy: Policy, p: PartFacts) -> str:
    """One part's line in the explanation: tier, points, oral, and whether it counts."""
    oral = p.oral or ("not held" if policy.block_of(p.slug) else "none in the policy")
    tier = f"tier {p.tier}" if p.tier else ("not passed" if p.submitted else "not submitted")
    note = "" if _part_counts(policy, p) or p.oral is None else " — does not count"
    if p.oral == "failed":
        note = " — failed oral: the part does not count"
    kind = "" if p.required else " (higher-grade part)"
    return f"{p.slug}{kind}: {tier}, {p.points:g}/{p.max_points:g} points, oral {oral}{note}"


def _passing(standing: _Standing, per_part: list[str]) -> Proposal:
    """The first grade from A down whose requirements all hold (E holds: no deficits), and what the grade
    above it lacks."""
    policy = standing.policy
    above: str | None = None
    for rule in policy.grades:
        if rule.grade == "E" or not standing.shortfalls(rule):
            lines = [f"{rule.grade}: " + "; ".join(standing.achieved(rule))]
            if above is not None:
                lines.append(f"{above} not reached: " + "; ".join(standing.shortfalls(policy.rule(above))))
            return Proposal(rule.grade, tuple(lines + per_part))
        above = rule.grade
    raise PolicyError("grades: no rule for E")  # parse_policy never lets this happen


def propose_grade(policy: Policy, facts: Facts) -> Proposal:
    """The first grade from A down whose every requirement holds; below E, FX when the student is at
    most `fx.max_missing` completable items from E, else F. The first explanation line says why the
    grade was proposed; the next says what the grade above it lacks; then one line per part."""
    standing = _Standing.of(policy, facts)
    per_part = [_part_line(policy, p) for p in facts.parts]
    deficits = standing.deficits()
    if not deficits:
        return _passing(standing, per_part)
    kinds = {kind for kind, _ in deficits}
    words = "; ".join(text for _, text in deficits)
    if len(deficits) <= policy.fx_max_missing and kinds <= set(policy.fx_completable):
        head = (f"FX: close to E — {len(deficits)} requirement for E missing, and it can be completed "
                f"(policy: at most {policy.fx_max_missing}, of kinds {', '.join(policy.fx_completable)}): {words}")
    else:
        why = "" if len(deficits) > policy.fx_max_missing else " (not completable to E: FX does not apply)"
        head = f"F: {len(deficits)} requirement(s) for E missing{why}: {words}"
    return Proposal("FX" if head.startswith("FX") else "F", (head, *per_part))
