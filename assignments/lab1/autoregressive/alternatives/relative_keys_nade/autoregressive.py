"""Honest alternative for the autoregressive part, written against the handout's interface without the
reference solution: another transformer and another digits model.

- Transformer: a pre-LayerNorm block (multi-head causal self-attention, then a GELU MLP, each with a residual)
  with relative position *keys* (Shaw et al. 2018): the score of query i on key j is q_i . (k_j + r_{i-j}) /
  sqrt(dh), with a learned vector r per offset and head, instead of a scalar bias per offset. Absolute positions
  are not used at all, so no position can get stuck attending to the wrong place; the relative keys get a larger
  learning rate (they have to grow for offset 7 to win the softmax). Trained with AdamW and a one-cycle schedule
  (linear warm-up, linear decay) over the time budget, with gradient clipping.
- Sampler: no cache; at every step the model runs on the whole prefix (model.logits on a prefix) and the next
  token is drawn from the last position's logits with temperature and top-k.
- Digits (made.py, the handout's file name): NADE (Larochelle & Murray 2011), weights shared across the conditionals, instead of MADE.
The A tier (logits_cached, generate) is not attempted.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from made import MADE, bernoulli_nll, build_digits_model, fit_digits  # noqa: F401  (C tier, called through this module)
from torch import nn

VOCAB = 16
SEQ_LEN = 64
BOS = VOCAB
MAX_OFFSET = 16         # relative keys for offsets 0..15; farther keys share the last one


class RelativeAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.rel_key = nn.Parameter(torch.zeros(heads, MAX_OFFSET, self.dh))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        return x.view(b, length, self.heads, self.dh).transpose(1, 2)          # [B,H,L,dh]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        offsets = torch.arange(length)[:, None] - torch.arange(length)[None, :]   # i - j
        rel = self.rel_key[:, offsets.clamp(0, MAX_OFFSET - 1)]                  # [H,L,L,dh]
        # q_i . r_{i-j} for every i, j: one matrix product per head and query position, [H,L,B,dh] @ [H,L,dh,L]
        relative = (q.permute(1, 2, 0, 3) @ rel.transpose(-1, -2)).permute(2, 0, 1, 3)    # [B,H,L,L]
        scores = q @ k.transpose(-1, -2) + relative
        scores = (scores / math.sqrt(self.dh)).masked_fill(offsets < 0, float("-inf"))   # no future keys
        mixed = scores.softmax(-1) @ v                                            # [B,H,L,dh]
        return self.out(mixed.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = RelativeAttention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    """The handout's name for the model (the public tests build it); here a pre-LN block with relative keys."""

    def __init__(self, d: int = 32, heads: int = 2):
        super().__init__()
        self.config = {"d": d, "heads": heads}
        self.embed = nn.Embedding(VOCAB + 1, d)
        self.block = Block(d, heads)
        self.norm = nn.LayerNorm(d)
        self.unembed = nn.Linear(d, VOCAB)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B,L] (BOS first) -> logits [B,L,V]."""
        return self.unembed(self.norm(self.block(self.embed(inputs))))

    @staticmethod
    def shift_right(tokens: torch.Tensor) -> torch.Tensor:
        start = torch.full((tokens.shape[0], 1), BOS, dtype=tokens.dtype)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self(self.shift_right(tokens.long())).float()

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> torch.Tensor:
        """Ancestral sampling without a cache: the whole prefix (BOS + tokens so far) every step."""
        generator = torch.Generator().manual_seed(int(seed))
        inputs = torch.full((int(n), 1), BOS, dtype=torch.long)
        for _ in range(SEQ_LEN):
            nxt = pick(self(inputs)[:, -1], temperature, top_k, generator)
            inputs = torch.cat([inputs, nxt[:, None]], dim=1)
        return inputs[:, 1:]

    def logits_cached(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the A tier (a KV cache) is not attempted")

    def generate(self, gumbel: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the A tier (a KV cache) is not attempted")


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> torch.Tensor:
    """[n,V] -> [n]: argmax at temperature 0; else softmax(logits / temperature) over the top_k largest."""
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits / temperature
    if top_k > 0:
        threshold = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).values[:, -1:]
        scaled = torch.where(scaled >= threshold, scaled, torch.full_like(scaled, float("-inf")))
    return torch.multinomial(F.softmax(scaled, dim=-1), 1, generator=gen).squeeze(1)


def build_model(config: dict) -> TinyTransformer:
    return TinyTransformer(**config)


def fit(tokens: torch.Tensor, *, seed: int, max_seconds: float) -> TinyTransformer:
    torch.set_num_threads(1)     # small matrices: a second thread mostly waits on a shared CPU
    torch.manual_seed(seed)
    t0 = time.monotonic()
    deadline = 0.75 * max_seconds
    model = TinyTransformer()
    rel = [p for n, p in model.named_parameters() if n.endswith("rel_key")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("rel_key")]
    peak = 2e-2
    opt = torch.optim.AdamW([{"params": rest, "scale": 1.0}, {"params": rel, "scale": 5.0, "weight_decay": 0.0}],
                            lr=peak, weight_decay=0.01)
    data = tokens.long()
    max_steps, batch = 400, 128
    for step in range(max_steps):
        frac = max(step / max_steps, (time.monotonic() - t0) / deadline)
        if frac >= 1:
            break
        lr = peak * min(1.0, frac / 0.1) * min(1.0, (1 - frac) / 0.9)       # one cycle: warm-up, linear decay
        for group in opt.param_groups:
            group["lr"] = lr * group["scale"]
        x = data[torch.randint(len(data), (batch,))]
        loss = F.cross_entropy(model(model.shift_right(x)).flatten(0, 1), x.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}")
    print(f"fit: {step} steps, {time.monotonic() - t0:.1f} s, loss {loss.item():.4f}")
    return model.eval()
