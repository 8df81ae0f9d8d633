"""Honest alternative: a fixed-window neural language model (Bengio et al. 2003) instead of a transformer,
written against the handout's interface.

A finite-context model conditions token t on the last W inputs only. After the BOS shift, input t holds x_{t-1},
so the copy source's x_{t-8} is input t-7: a window of W = 8 inputs (t-7..t) holds everything the source uses.
The W embeddings are concatenated (so each slot keeps its own weights: "the token 7 back" is a slot, not
something attention must find) and read by a one-hidden-layer MLP. Slots before the start of the sequence hold
a padding token, which also tells positions 0..7 apart from the rest.

Causality is by construction: the window at t ends at input t. The A tier's cache is the window itself: a new
position shifts the window by one embedding and runs the MLP once, whatever the prefix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from made import MADE, bernoulli_nll, build_digits_model, fit_digits  # noqa: F401  (C tier: called through here)
from torch import nn

VOCAB = 16
SEQ_LEN = 64
BOS = VOCAB          # input-only start token
PAD = VOCAB + 1      # fills the window's slots before the first input
WINDOW = 8           # inputs t-7..t


class WindowLM(nn.Module):
    def __init__(self, embed: int = 16, hidden: int = 128):
        super().__init__()
        self.config = {"embed": embed, "hidden": hidden}
        self.embed = nn.Embedding(VOCAB + 2, embed)                       # tokens, BOS, PAD
        self.mlp = nn.Sequential(nn.Linear(WINDOW * embed, hidden), nn.ReLU(), nn.Linear(hidden, VOCAB))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B,L] (BOS first) -> logits [B,L,V]; row t reads inputs t-7..t."""
        padded = F.pad(inputs, (WINDOW - 1, 0), value=PAD)                # [B,L+W-1]
        windows = padded.unfold(1, WINDOW, 1)                             # [B,L,W]: oldest slot first
        return self.mlp(self.embed(windows).flatten(2))                   # [B,L,W*E] -> [B,L,V]

    @staticmethod
    def shift_right(tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B,T] -> inputs [B,T]: BOS, x_0, ..., x_{T-2}."""
        return torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self(self.shift_right(tokens.long())).float()

    def start_window(self, n: int) -> torch.Tensor:
        """The cache of n rows before any input: W padding embeddings, [n,W,E]."""
        return self.embed(torch.full((n, WINDOW), PAD, dtype=torch.long))

    def step(self, inputs: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One new input per row [n] -> (logits [n,V], the window [n,W,E] moved on by it)."""
        window = torch.cat([window[:, 1:], self.embed(inputs)[:, None]], dim=1)
        return self.mlp(window.flatten(1)), window

    @torch.no_grad()
    def logits_cached(self, tokens: torch.Tensor) -> torch.Tensor:
        """The same logits, one input at a time through the window cache."""
        inputs = self.shift_right(tokens.long())
        window, steps = self.start_window(inputs.shape[0]), []
        for t in range(inputs.shape[1]):
            logits, window = self.step(inputs[:, t], window)
            steps.append(logits)
        return torch.stack(steps, dim=1).float()

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(seed))
        return self.roll_out(int(n), lambda logits, t: pick(logits, temperature, top_k, generator))

    @torch.no_grad()
    def generate(self, gumbel: torch.Tensor) -> torch.Tensor:
        """Gumbel-max: token t = argmax(logits_t + gumbel[:, t]), a draw from softmax(logits_t)."""
        return self.roll_out(gumbel.shape[0], lambda logits, t: (logits + gumbel[:, t]).argmax(dim=-1))

    def roll_out(self, n: int, choose: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
        """Ancestral sampling through the window; choose(logits [n,V], t) -> token t of every row [n]."""
        tokens = torch.empty(n, SEQ_LEN, dtype=torch.long)
        previous, window = torch.full((n,), BOS, dtype=torch.long), self.start_window(n)
        for t in range(SEQ_LEN):
            logits, window = self.step(previous, window)
            tokens[:, t] = previous = choose(logits, t)
        return tokens


TinyTransformer = WindowLM   # the handout's public tests build the token model under this name


def pick(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> torch.Tensor:
    """[n,V] -> [n]: the argmax at temperature 0; else a draw from softmax(logits / T), truncated to the top_k
    largest when top_k > 0 (every logit below the k-th largest is removed)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits / temperature
    if 0 < top_k < scaled.shape[-1]:
        kth = scaled.sort(dim=-1, descending=True).values[:, top_k - 1 : top_k]      # [n,1]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    return torch.multinomial(torch.softmax(scaled, dim=-1), num_samples=1, generator=gen).view(-1)


def build_model(config: dict) -> WindowLM:
    return WindowLM(**config)


def fit(tokens: torch.Tensor, *, seed: int, max_seconds: float) -> WindowLM:
    """Next-token cross-entropy with AdamW and a linear decay over the steps or the clock."""
    torch.manual_seed(seed)
    started = time.monotonic()
    deadline = 0.7 * max_seconds
    data = tokens.long()
    model = WindowLM()
    max_steps, batch, peak = 400, 128, 5e-3
    opt = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=1e-4)
    step, loss = 0, torch.tensor(float("nan"))
    while step < max_steps:
        frac = max(step / max_steps, (time.monotonic() - started) / deadline)
        if frac >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = peak * (1 - frac)
        x = data[torch.randint(len(data), (batch,))]
        loss = F.cross_entropy(model(model.shift_right(x)).reshape(-1, VOCAB), x.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step}: train NLL {loss.item():.4f} nats/token")
    print(f"fit: {step} steps in {time.monotonic() - started:.1f} s, last batch NLL {loss.item():.4f}")
    return model.eval()
