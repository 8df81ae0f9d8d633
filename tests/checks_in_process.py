"""Drive one check of a part's checks.py in this process, for tests of its feedback branches.

A part's check asks its queries (`ask(r, setup)`) and judges the answers (`judge(g, setup, cases)`). Here
the queries are answered at once by the submission's own function, imported in this process, with the
arguments as the sandbox's harness would give them (float32 tensors) and the answer validated as the
grader validates it; the judging runs on a real `Grading` (no sandbox is needed to record outcomes). The
whole run, sandbox included, is tested by calibration; this makes each feedback branch a millisecond test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from grader.checking import Grading, Pending, bind_args, validate_result
from grader.parts import PartSpec
from grader.sandbox.session import OutputLog

_counter = itertools.count()


def import_submission(folder: Path, module: str):
    """The submission's module, imported under a fresh name (its sibling files importable)."""
    sys.path.insert(0, str(folder))
    try:
        name = f"submission_{next(_counter)}_{Path(module).stem}"
        spec = importlib.util.spec_from_file_location(name, folder / module)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    finally:
        sys.path.remove(str(folder))


def _as_received(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
        return value.to(torch.float32)
    return value


def _as_returned(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_as_returned(v) for v in value]
    return value


class Answering:
    """Stands where a round stands: each `call` is answered at once by the imported submission."""

    def __init__(self, part: PartSpec, submission):
        self.part = part
        self.submission = submission

    def call(self, entry: str, *args: Any, **kwargs: Any) -> Pending:
        spec = self.part.entry_points[entry]
        sent = tuple(_as_received(a) for a in args)
        raw = getattr(self.submission, entry)(*sent, **{k: _as_received(v) for k, v in kwargs.items()})
        result = validate_result(spec, _as_returned(raw), bind_args(spec, sent))
        return Pending(entry, args, kwargs, "staff", None, result=result, done=True)


def recorder(part: PartSpec, seed: int = 1) -> Grading:
    """A real Grading that records outcomes (it is never asked to call a sandbox here)."""
    return Grading(part, sandboxes=None, seed=seed, on_gpu=False, log=OutputLog(65536))


class AnsweredHere(Grading):
    """A real Grading whose calls the given functions answer at once, in this process, with the arguments and
    validation of a sandbox call (`Answering`); a round is just a block. The sandbox path itself is covered by
    calibration."""

    answering: Answering

    def timed_call(self, entry, *args, audience="staff", timeout=None, **kwargs):
        return self.answering.call(entry, *args, **kwargs).value, 0.0

    def round(self):
        return contextlib.nullcontext(self.answering)  # `with g.round() as r: r.call(...)` answers at once


def answered(part: PartSpec, answers: dict, seed: int = 1) -> AnsweredHere:
    """An AnsweredHere whose entry points (by manifest name, e.g. "model.sample") are the given functions."""
    g = AnsweredHere(part, sandboxes=None, seed=seed, on_gpu=False, log=OutputLog(65536))
    g.answering = Answering(part, SimpleNamespace(**answers))
    return g

