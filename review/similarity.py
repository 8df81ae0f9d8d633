"""Similarity across a cohort: which submissions of one part of a round look like copies of each other.

Two kinds of evidence, side by side, for the examiner and the oral; nothing here changes a grade.

- **Code.** copydetect (MOSS's winnowing: the code is tokenised by Pygments, names and strings are
  replaced by placeholders so renaming changes nothing, and a sample of the k-gram hashes is compared)
  gives, for a pair, the share of each submission's code found in the other. The part's handout (the
  starter module, its data and public tests) is boilerplate: what students were given matches nobody.
- **Outputs.** Every graded run records what each module-level entry point answers on fixed probe inputs
  (`GradingRun.fingerprints`, from `grader.engine.fingerprint`): identical code gives identical answers
  whatever the run's secret data. A right answer is the same for every correct solution, and so is the
  starter's NotImplementedError, so an answer counts by how few submissions share it: a pair that alone
  gives the same answer (typically the same mistake) is the evidence, one that half the cohort gives is not.

The cohort of a part is each student's latest submission on it (their own or their group's: the results'
rule, `examination.results.RoundResults`), one entry per submission. Two submissions whose people are in
one group (now, or the group the submission was made as) are never paired: their work is shared by right.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from copydetect.detector import CodeFingerprint, compare_files

from courseware.models import CourseRound, GradingRun, Part, Submission
from examination.results import RoundResults
from grader import archives
from grader.parts import PartError, load_part

log = logging.getLogger(__name__)

NOISE_CHARS = 25  # copydetect's noise threshold: shorter matches of the filtered code are ignored
GUARANTEE_CHARS = 30  # matches at least this long are always found; the winnowing window is the difference + 1
WINDOW = GUARANTEE_CHARS - NOISE_CHARS + 1
SHOWN_PAIRS = 100


def python_files(submission: Submission) -> tuple[str, str]:
    """The submission's Python files one after another, each under a comment naming it (comments are no
    tokens to copydetect), read through the archive layer's checks; and why not, when they cannot be."""
    try:
        archive = archives.load(submission.archive_path)
    except (OSError, archives.ArchiveError) as exc:
        return "", f"archive not readable: {exc}"
    parts = []
    for name, content in archive.files.items():
        if name.endswith(".py"):
            parts.append(f"# ==== {name} ====\n{content.decode('utf-8', errors='replace')}\n")
    return "".join(parts), ""


def fingerprint(name: str, code: str, boilerplate: np.ndarray, window: int = WINDOW) -> CodeFingerprint | None:
    """copydetect's fingerprint of some Python, without the boilerplate's k-grams; None for code too short
    to hold one k-gram."""
    if len(code) < NOISE_CHARS:
        return None
    return CodeFingerprint(name, NOISE_CHARS, window, boilerplate=boilerplate, fp=io.StringIO(code), language="python")


@dataclass(frozen=True)
class Boilerplate:
    """The handout's code as copydetect's k-gram hashes (every one, not a sample: window 1)."""

    hashes: np.ndarray
    files: tuple[str, ...]
    problem: str = ""

    @classmethod
    def of(cls, part: Part) -> Boilerplate:
        try:
            handout = load_part(part.slug).handout_dir
        except PartError as exc:
            return cls(np.array([], dtype=np.int64), (), f"the part's folder cannot be read ({exc}): nothing is "
                                                          "treated as handed out")
        files = sorted(p for p in handout.rglob("*.py") if p.is_file() and "__pycache__" not in p.parts)
        hashes = [fp.hashes for p in files if (fp := fingerprint(p.name, p.read_text(errors="replace"),
                                                                 np.array([]), window=1))]
        merged = np.unique(np.array([h for group in hashes for h in group], dtype=np.int64))
        return cls(merged, tuple(p.relative_to(handout).as_posix() for p in files))


@dataclass
class Entry:
    """One submission in the cohort, with the people whose latest submission on the part it is."""

    submission: Submission
    owners: list = field(default_factory=list)
    groups: set[int] = field(default_factory=set)
    run: GradingRun | None = None  # its latest graded run: where the outputs come from
    code: str = ""
    problem: str = ""  # why its code could not be read

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self.run.fingerprints or {}) if self.run is not None else {}

    @property
    def label(self) -> str:
        return ", ".join(u.get_full_name() or u.get_username() for u in self.owners) or str(self.submission.submitter)


@dataclass(frozen=True)
class SharedOutput:
    entry_point: str
    holders: int  # submissions of the cohort that give this answer, the two of the pair included


@dataclass
class Pair:
    a: Entry
    b: Entry
    code_a: float = 0.0  # share of a's code (less the boilerplate) that is found in b
    code_b: float = 0.0
    outputs: list[SharedOutput] = field(default_factory=list)

    @property
    def code(self) -> float:
        return max(self.code_a, self.code_b)

    @property
    def outputs_only_these(self) -> int:
        """Answers that these two submissions, and no other in the cohort, give."""
        return sum(1 for o in self.outputs if o.holders == 2)

    @property
    def outputs_weight(self) -> float:
        """Each shared answer counts 1 / (submissions that give it - 1): 1 for the two alone, 0.5 when a
        third gives it too, almost nothing for the answer most of the cohort gives."""
        return sum(1 / (o.holders - 1) for o in self.outputs)

    def order_key(self, by: str) -> tuple:
        if by == "outputs":
            return (-self.outputs_only_these, -self.outputs_weight, -self.code, self.a.submission.pk)
        return (-self.code, -self.outputs_only_these, -self.outputs_weight, self.a.submission.pk)


@dataclass(frozen=True)
class Segment:
    text: str
    matched: bool


class Cohort:
    """A part of a round: its submissions, their code and outputs, and every pair's evidence."""

    def __init__(self, course_round: CourseRound, part: Part):
        self.round, self.part = course_round, part
        self.entries = self._entries()
        self.boilerplate = Boilerplate.of(part)

    def _entries(self) -> list[Entry]:
        results = RoundResults(self.round)
        entries: dict[int, Entry] = {}
        for row in results.rows.values():
            for cell in row.cells:
                if cell.part.pk != self.part.pk or cell.submission is None or cell.kept_from is not None:
                    continue
                entry = entries.setdefault(cell.submission.pk, Entry(cell.submission, run=cell.done_run))
                entry.owners.append(row.student)
                entry.groups |= {g for g in (cell.submission.group_id, row.group.pk if row.group else None) if g}
        for entry in entries.values():
            entry.code, entry.problem = python_files(entry.submission)
        return sorted(entries.values(), key=lambda e: e.submission.pk)

    @cached_property
    def holders(self) -> dict[tuple[str, str], int]:
        """(entry point, answer digest) -> how many submissions of the cohort give that answer."""
        return Counter((call, digest) for e in self.entries for call, digest in e.outputs.items())

    @cached_property
    def fingerprints(self) -> dict[int, CodeFingerprint]:
        found = {}
        for e in self.entries:
            if (fp := fingerprint(f"submission-{e.submission.pk}.py", e.code, self.boilerplate.hashes)) is not None:
                found[e.submission.pk] = fp
        return found

    @staticmethod
    def paired(a: Entry, b: Entry) -> bool:
        """Members of one group are never paired: they share their work by right."""
        return not (a.groups & b.groups)

    def shared_outputs(self, a: Entry, b: Entry) -> list[SharedOutput]:
        theirs = b.outputs
        return [SharedOutput(call, self.holders[(call, digest)]) for call, digest in sorted(a.outputs.items())
                if theirs.get(call) == digest]

    @cached_property
    def pairs(self) -> list[Pair]:
        """Every pair with any evidence. copydetect compares only the pairs that share a code hash (an
        inverted index finds them): a pair that shares none has no overlap to measure."""
        sharing: dict[int, list[int]] = defaultdict(list)
        for pk, fp in self.fingerprints.items():
            for h in fp.hashes:
                sharing[h].append(pk)
        code_pairs = {pair for pks in sharing.values() for pair in itertools.combinations(sorted(pks), 2)}
        found = []
        for a, b in itertools.combinations(self.entries, 2):
            if not self.paired(a, b):
                continue
            pair = Pair(a, b, outputs=self.shared_outputs(a, b))
            if (a.submission.pk, b.submission.pk) in code_pairs:
                _overlap, (pair.code_a, pair.code_b), _slices = compare_files(
                    self.fingerprints[a.submission.pk], self.fingerprints[b.submission.pk])
            if pair.code > 0 or pair.outputs:
                found.append(pair)
        return found

    def ranked(self, by: str = "code", limit: int = SHOWN_PAIRS) -> list[Pair]:
        return sorted(self.pairs, key=lambda p: p.order_key(by))[:limit]

    def entry(self, submission: Submission) -> Entry:
        """The cohort's entry for a submission, or one made for it (an earlier submission of the part)."""
        for e in self.entries:
            if e.submission.pk == submission.pk:
                return e
        run = submission.runs.filter(status=GradingRun.Status.DONE).order_by("-created_at", "-pk").first()
        entry = Entry(submission, owners=[submission.submitter], run=run)
        entry.code, entry.problem = python_files(submission)
        return entry

    def side_by_side(self, first: Submission, second: Submission) -> SideBySide:
        a, b = self.entry(first), self.entry(second)
        pair = Pair(a, b, outputs=self.shared_outputs(a, b))
        fa = fingerprint("a.py", a.code, self.boilerplate.hashes)
        fb = fingerprint("b.py", b.code, self.boilerplate.hashes)
        slices_a = slices_b = np.zeros((2, 0), dtype=np.int64)
        if fa is not None and fb is not None:
            _overlap, (pair.code_a, pair.code_b), found = compare_files(fa, fb)
            if len(found[0]):
                slices_a, slices_b = found
        return SideBySide(pair=pair, left=segments(a.code, slices_a), right=segments(b.code, slices_b),
                          outputs=self.output_rows(a, b))

    def output_rows(self, a: Entry, b: Entry) -> list[OutputRow]:
        calls = sorted(set(a.outputs) | set(b.outputs))
        return [OutputRow(call, a.outputs.get(call, ""), b.outputs.get(call, ""),
                          self.holders.get((call, a.outputs.get(call, "")), 0)) for call in calls]

    def digest(self) -> str:
        """What the pairs depend on, for a cache key: the submissions, their people and groups, outputs and
        the boilerplate."""
        h = hashlib.sha256(f"{NOISE_CHARS}/{WINDOW}".encode())
        h.update(self.boilerplate.hashes.tobytes())
        for e in self.entries:
            h.update(repr((e.submission.pk, e.submission.sha256, sorted(u.pk for u in e.owners), sorted(e.groups),
                           sorted(e.outputs.items()))).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class OutputRow:
    entry_point: str
    left: str
    right: str
    holders: int  # submissions of the cohort that give the left answer

    @property
    def same(self) -> bool:
        return bool(self.left) and self.left == self.right


@dataclass(frozen=True)
class SideBySide:
    pair: Pair
    left: list[Segment]
    right: list[Segment]
    outputs: list[OutputRow]


def segments(code: str, slices: np.ndarray) -> list[Segment]:
    """The code cut into runs that copydetect found in the other submission and runs it did not; the
    template escapes the text, so no HTML is built here."""
    out, pos = [], 0
    for start, end in sorted(zip(slices[0].tolist(), slices[1].tolist(), strict=True)):
        start, end = max(int(start), pos), min(int(end), len(code))
        if start > pos:
            out.append(Segment(code[pos:start], matched=False))
        if end > start:
            out.append(Segment(code[start:end], matched=True))
            pos = end
    if pos < len(code):
        out.append(Segment(code[pos:], matched=False))
    return out
