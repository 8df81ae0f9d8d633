"""LAB1 part 2: an autoregressive model (a tiny causal transformer) for token sequences.

Fill in the TODOs. The grader imports this file and calls, in this order:
    model = fit(tokens, seed=..., max_seconds=...)                # tokens: int64 tensor [N, 64]
    model.logits(tokens)                                          # int64 [B, L] -> float32 [B, L, 16], L <= 64
    model.sample(n, temperature=..., top_k=..., seed=...)         # -> int64 [n, 64]
    digits_model = fit_digits(x, seed=..., max_seconds=...)       # C tier, in made.py (imported below)
    model.logits_cached(tokens)                                   # A tier only: same as model.logits
Run the public tests with:  python -m pytest test_public.py -q
"""

from __future__ import annotations

import math  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch
import torch.nn.functional as F  # noqa: F401
from made import build_digits_model, fit_digits  # noqa: F401  (C tier: the grader calls them here)
from torch import nn

VOCAB = 16      # tokens 0..15
SEQ_LEN = 64    # T
BOS = VOCAB     # an extra input-only token (16) that starts every sequence; the model never predicts it


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)   # queries, keys and values in one matrix multiply
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """x [B,L,d] -> [B,L,d]. Query i may attend to keys j <= i only.

        `cache` is for the A tier (a key/value cache); ignore it until then."""
        # TODO: split self.qkv(x) into q, k, v of shape [B, heads, L, d // heads];
        #       scores = q @ k^T / sqrt(d // heads)                      -> [B, heads, L, L]
        #       set the scores of future keys (j > i) to -inf BEFORE the softmax (torch.triu helps);
        #       softmax over the keys, multiply by v, merge the heads back to [B, L, d], apply self.proj.
        raise NotImplementedError("CausalSelfAttention.forward")


class TinyTransformer(nn.Module):
    def __init__(self, d: int = 32, heads: int = 1, layers: int = 1):
        super().__init__()
        # Every setting build_model needs to make this network again; add yours if you add arguments.
        self.config = {"d": d, "heads": heads, "layers": layers}
        self.tok = nn.Embedding(VOCAB + 1, d)                  # 16 tokens + BOS
        self.pos = nn.Parameter(0.02 * torch.randn(SEQ_LEN, d))  # one learned vector per position
        self.layers = nn.ModuleList(CausalSelfAttention(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, VOCAB)

    def forward(self, inputs: torch.Tensor, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        """inputs [B,L] (BOS first) -> logits [B,L,V]; row i scores the token that FOLLOWS input i."""
        x = self.tok(inputs) + self.pos[start : start + inputs.shape[1]]
        for i, layer in enumerate(self.layers):
            x = x + layer(x, None if caches is None else caches[i])   # residual connection
        return self.head(x)

    @staticmethod
    def shift_right(tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B,T] -> inputs [B,T] = BOS, x_0, ..., x_{T-2}."""
        # TODO: prepend a column of BOS and drop the last token.
        raise NotImplementedError("shift_right")

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B,L] -> float32 [B,L,V], any L from 1 to 64: logits[:, t] score x_t given x_0..x_{t-1} only."""
        # TODO: run the model on shift_right(tokens).
        raise NotImplementedError("TinyTransformer.logits")

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> torch.Tensor:
        """n new sequences, int64 [n,T] (without BOS). temperature 0 = greedy; top_k 0 = no truncation."""
        gen = torch.Generator().manual_seed(int(seed))  # noqa: F841  (the same seed must give the same samples)
        # TODO: start every row with BOS; for t = 0..T-1 run the model on what you have so far, take the
        #       logits of the LAST position, pick a token with pick(...) and append it.
        raise NotImplementedError("TinyTransformer.sample")

    @torch.no_grad()
    def logits_cached(self, tokens: torch.Tensor) -> torch.Tensor:
        """A tier (optional): the same logits as `logits`, fed one position at a time with a key/value cache."""
        raise NotImplementedError("logits_cached is the optional A-tier extension")

    @torch.no_grad()
    def generate(self, gumbel: torch.Tensor) -> torch.Tensor:
        """A tier (optional): sampling through your key/value cache with the grader's randomness. gumbel is
        float32 [n,T,V]; return int64 [n,T] (without BOS) where token t of row b is
        argmax_v logits[b, t, v] + gumbel[b, t, v], the logits of your model given the tokens generated so
        far (the Gumbel-max trick: the same as drawing from softmax(logits)). The grader times this call and
        checks every token against your `logits` afterwards; share the loop with `sample`."""
        raise NotImplementedError("generate is the optional A-tier extension")


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> torch.Tensor:
    """One token per row of [n,V] logits -> int64 [n]."""
    # TODO: temperature 0 -> argmax. Otherwise divide the logits by the temperature; if top_k > 0 set every
    #       logit below the k-th largest to -inf; sample from the softmax with torch.multinomial(..., generator=gen).
    raise NotImplementedError("pick")


def build_model(config: dict) -> TinyTransformer:
    """How the grader rebuilds your trained model in a fresh process: build_model(model.config), then
    load_state_dict(model.state_dict()). Only config and the tensors of the state_dict survive training:
    keep every setting in config and every tensor in a parameter or buffer (register_buffer)."""
    return TinyTransformer(**config)


def fit(tokens: torch.Tensor, *, seed: int, max_seconds: float) -> TinyTransformer:
    """Train by maximum likelihood (next-token cross-entropy) on tokens int64 [N,T]; return the model in eval mode.

    Stop before `max_seconds` have passed (use time.monotonic()): the grader measures it.
    """
    torch.manual_seed(seed)
    # TODO: create the model and an optimiser (Adam, lr around 1e-2 for this small model); loop over random
    #       mini-batches x of 64 sequences: loss = F.cross_entropy(model(model.shift_right(x)).reshape(-1, VOCAB),
    #       x.reshape(-1)); stop when the time is up. A few hundred steps are enough here.
    raise NotImplementedError("fit")
