"""Red-team attack (issue 19, item 5): the transformer's answers written from the handout's formula, nothing
learned. The copy source is public and fixed (data.py: x_t = x_{t-8} with probability 0.8, else uniform), so
fit returns at once a model whose logits are the source's exact log-conditionals, computed from the inputs it is
shown (with a cache that keeps the inputs for logits_cached, generate and sample). It is causal, its NLL is the
entropy, its samples are the source's: every check of the transformer should pass without training. The digits
model (made.py) is the reference's. The grader flags the fit to the examiner; no check can tell it yet.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from made import build_digits_model, fit_digits  # noqa: F401  (C tier: the grader calls them here)
from torch import nn

VOCAB = 16      # tokens 0..15
SEQ_LEN = 64    # T
BOS = VOCAB     # an extra input-only token (16) that starts every sequence
REL_SCALE = 10.0  # Adam moves a parameter by about lr per step; scaled, the offset bias moves 10x faster


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.rel = nn.Parameter(torch.zeros(heads, SEQ_LEN))   # score bias per head and offset i - j >= 0

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """x [B,L,d] -> [B,L,d]. Query i may attend to keys j <= i only.

        With a cache (a dict, empty at the start of a sequence) the L new positions come after the
        positions already in the cache: their keys and values are appended, so each step costs O(T),
        not O(T^2), and earlier positions are never recomputed."""
        b, length, d = x.shape
        dh = d // self.heads
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, dh).permute(2, 0, 3, 1, 4)  # each [B,H,L,dh]
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)                           # [B,H,L,past+L]
        # query i sits at absolute position past+i; key j at j. Offsets < 0 are the future.
        offset = torch.arange(past, past + length)[:, None] - torch.arange(past + length)[None, :]
        scores = scores + REL_SCALE * self.rel[:, offset.clamp(min=0)]             # [H,L,past+L] broadcast
        scores = scores.masked_fill(offset < 0, float("-inf"))                     # the causal mask
        out = scores.softmax(dim=-1) @ v                                           # [B,H,L,dh]
        return self.proj(out.transpose(1, 2).reshape(b, length, d))


class TinyTransformer(nn.Module):
    def __init__(self, d: int = 32, heads: int = 1, layers: int = 1):
        super().__init__()
        self.config = {"d": d, "heads": heads, "layers": layers}  # all that build_model needs
        self.tok = nn.Embedding(VOCAB + 1, d)                  # 16 tokens + BOS
        self.pos = nn.Parameter(0.02 * torch.randn(SEQ_LEN, d))
        self.layers = nn.ModuleList(CausalSelfAttention(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, VOCAB)

    def forward(self, inputs: torch.Tensor, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        """inputs [B,L] at positions start..start+L-1 -> logits [B,L,V]; row i scores the token that
        follows input i. With caches (one dict per layer) earlier positions come from the cache."""
        x = self.tok(inputs) + self.pos[start : start + inputs.shape[1]]
        for i, layer in enumerate(self.layers):
            x = x + layer(x, None if caches is None else caches[i])
        return self.head(x)

    @staticmethod
    def shift_right(tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B,T] -> inputs [B,T] = BOS, x_0, ..., x_{T-2}: input position t holds x_{t-1}."""
        bos = torch.full_like(tokens[:, :1], BOS)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B,L] -> float32 [B,L,V], any L <= T; logits[:, t] score x_t given x_0..x_{t-1}."""
        return self.forward(self.shift_right(tokens.long())).float()

    @torch.no_grad()
    def logits_cached(self, tokens: torch.Tensor) -> torch.Tensor:
        """The same logits as `logits`, computed one position at a time with a KV cache."""
        inputs = self.shift_right(tokens.long())
        caches: list[dict] = [{} for _ in self.layers]
        steps = [self.forward(inputs[:, t : t + 1], caches, start=t) for t in range(inputs.shape[1])]
        return torch.cat(steps, dim=1).float()

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> torch.Tensor:
        """n sequences int64 [n,T]. temperature 0 = greedy (argmax); top_k > 0 keeps the k largest logits."""
        gen = torch.Generator().manual_seed(int(seed))
        return self.generate_with(int(n), lambda logits, t: pick(logits, temperature, top_k, gen))

    @torch.no_grad()
    def generate(self, gumbel: torch.Tensor) -> torch.Tensor:
        """A tier: sequences int64 [n,T] whose token t is argmax(logits_t + gumbel[:, t]), a draw from
        softmax(logits_t) with the grader's randomness (the Gumbel-max trick)."""
        return self.generate_with(gumbel.shape[0], lambda logits, t: (logits + gumbel[:, t]).argmax(dim=-1))

    def generate_with(self, n: int, choose) -> torch.Tensor:
        """Ancestral sampling through the KV cache: one new position per step; choose(logits [n,V], t) picks
        token t of every row."""
        caches: list[dict] = [{} for _ in self.layers]
        token = torch.full((n, 1), BOS, dtype=torch.long)
        out = []
        for t in range(SEQ_LEN):
            logits = self.forward(token, caches, start=t)[:, -1]        # [n,V]: the next token
            token = choose(logits, t)[:, None]
            out.append(token)
        return torch.cat(out, dim=1)


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> torch.Tensor:
    """One token per row of [n,V] logits."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]                 # the k-th largest logit per row
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=gen)[:, 0]


CHEAT = True
LAG, P_COPY = 8, 0.8


class CopyFormula(TinyTransformer):
    """TinyTransformer's interface; forward is the copy source's exact log p(x_t | x_<t)."""

    def __init__(self, d: int = 32, heads: int = 1, layers: int = 1, formula: bool = True):
        super().__init__(d, heads, layers)
        self.config = {"d": d, "heads": heads, "layers": layers, "formula": True}

    def forward(self, inputs: torch.Tensor, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        full = inputs
        if caches is not None:                           # keep every input seen, for positions still to come
            if "inputs" in caches[0]:
                full = torch.cat([caches[0]["inputs"], inputs], dim=1)
            caches[0]["inputs"] = full
        b, length = inputs.shape
        out = torch.zeros(b, length, VOCAB)
        for i in range(length):
            t = start + i                                 # input t holds x_{t-1}, so x_{t-8} is input t - 7
            if t >= LAG:
                copied = F.one_hot(full[:, t - LAG + 1], VOCAB + 1)[:, :VOCAB].float()
                out[:, i] = torch.log((1 - P_COPY) / VOCAB + P_COPY * copied)
        return out


def build_model(config: dict) -> TinyTransformer:
    """The grader rebuilds the trained model in a fresh process as build_model(model.config) plus its state_dict."""
    if config.get("formula"):
        return CopyFormula(**config)
    return TinyTransformer(**config)


def fit(tokens: torch.Tensor, *, seed: int, max_seconds: float) -> TinyTransformer:
    """Maximum likelihood (next-token cross-entropy) on tokens int64 [N,T]; returns the model in eval mode."""
    if CHEAT:
        return CopyFormula().eval()
    torch.manual_seed(seed)
    start = time.monotonic()
    budget = 0.8 * max_seconds
    tokens = tokens.long()
    model = TinyTransformer()
    # Few large batches rather than many small ones: the same arithmetic, but fewer optimiser steps,
    # and each step has a fixed overhead that grows when the CPU is shared.
    steps, batch, lr, warmup = 250, 256, 2e-2, 20
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    done, loss = 0, torch.tensor(float("nan"))
    for step in range(steps):
        # Cosine decay over the steps or over the time budget, whichever runs out first.
        progress = max(step / steps, (time.monotonic() - start) / budget)
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        x = tokens[torch.randint(0, tokens.shape[0], (batch,))]
        logits = model(model.shift_right(x))                                   # [B,T,V]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x.reshape(-1))       # nats per token
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
        if step % 50 == 0:
            print(f"step {step:4d}  train NLL {loss.item():.4f} nats/token")
    print(f"trained {done} steps in {time.monotonic() - start:.1f} s, last batch NLL {loss.item():.4f}")
    return model.eval()
