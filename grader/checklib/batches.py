"""Mixing the rows a check scores with the rows that validate them, so that no row's purpose shows.

A property is verified on the very rows that are scored, in the same call (docs/architecture.md): the
finite-difference neighbours of a secret subset of test points, a causality probe next to the sequences
whose likelihood counts, decoys that look like neither. `Interleaved` concatenates such groups, shuffles
the rows with the secret seed and splits the answer back into the groups, whatever the model returned
row by row (a tensor, or a dict of tensors for a tuple result).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class Interleaved:
    """Groups of rows sent as one shuffled batch: `rows` to send, `split(answer)` to read it back."""

    def __init__(self, rng: np.random.Generator, *groups: torch.Tensor):
        self.sizes = [len(group) for group in groups]
        self.order = torch.from_numpy(rng.permutation(sum(self.sizes)))  # position in the batch -> row
        self.rows = torch.cat(groups)[self.order]

    def split(self, answer: Any) -> list[Any]:
        """The answer for each group, rows in the group's own order."""
        if isinstance(answer, dict):
            parts = {name: self.split(value) for name, value in answer.items()}
            return [{name: parts[name][i] for name in parts} for i in range(len(self.sizes))]
        restored = torch.empty_like(answer)
        restored[self.order] = answer
        return list(torch.split(restored, self.sizes))


def secret_subset(rng: np.random.Generator, n: int, k: int) -> torch.Tensor:
    """k distinct row indices of n, drawn with the secret seed (which scored rows are also validated)."""
    return torch.from_numpy(rng.choice(n, size=min(k, n), replace=False))
