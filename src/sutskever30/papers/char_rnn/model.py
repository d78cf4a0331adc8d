"""The Unreasonable Effectiveness of Recurrent Neural Networks: Andrej Karpathy, 2015 (blog
post, karpathy.github.io/2015/05/21/rnn-effectiveness, code github.com/karpathy/char-rnn; the
cell analysis is Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks", arXiv:1506.02078).

Idea: an LSTM trained only to predict the next character of a text, one character at a time,
learns spelling, syntax, layout and long-range structure, and can then write new text by
sampling its own predictions back in.

    x_t = onehot(c_t),  (h_t, C_t) = LSTM(x_t, (h_{t-1}, C_{t-1})),  y_t = W_y h_t + b_y
    p(c_{t+1} | c_{≤t}) = softmax(y_t / τ)            τ: sampling temperature
    loss = −(1/T) Σ_t log p(c_{t+1} | c_{≤t})         nats per character

Training is truncated backpropagation through time: the text is cut into B contiguous
streams (row b of a batch always continues row b of the previous batch), each batch is the
next T characters of every stream, and the final (h, C) of one batch is the initial state of
the next (detached, so gradients flow back at most T steps).

The baseline is a count-based character n-gram model with interpolated absolute discounting
(Ney, Essen & Kneser 1994), n chosen on the validation text.

Deviations from the paper:
- The LSTM is ``torch.nn.LSTM`` (fused); its cell is the one written gate by gate in
  ``papers/lstm/model.py`` and tested equal there.
- Quick preset: 1 layer of 256 (paper: 2–3 layers of 512, dropout 0.5) for 14 epochs, so
  it fits 5 CPU minutes; the full preset is the paper's 2×512 with dropout 0.5, T=100, B=100
  (char-rnn's defaults are 2×128, T=50, B=50).
- Adam instead of RMSProp (char-rnn's default optimizer) with lr decayed in the last 30% of
  steps; gradient norm clipped at 5 (char-rnn clips each element at 5).
- The streams restart from zero state at every epoch (char-rnn carries it across the whole run).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn import sampling

State = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class CharRNNConfig:
    vocab_size: int = 65
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0  # between LSTM layers and before the readout

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("vocab_size >= 2, hidden_size >= 1 and num_layers >= 1 required")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


class CharRNN(nn.Module):
    """One-hot characters → stacked LSTM → linear readout to next-character logits."""

    def __init__(self, *, vocab_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(
            vocab_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.W_y = nn.Linear(hidden_size, vocab_size)

    @classmethod
    def from_config(cls, cfg: CharRNNConfig) -> CharRNN:
        return cls(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
        )

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """idx: (B, T) int64 → logits (B, T, V) and the final (h, C), each (layers, B, H)."""
        x = F.one_hot(idx, self.vocab_size).float()  # (B, T, V)
        h, state = self.lstm(x, state)  # (B, T, H)
        return self.W_y(self.drop(h)), state

    @torch.no_grad()
    def cell_states(self, idx: torch.Tensor, state: State | None = None) -> torch.Tensor:
        """The cell vector C_t of every layer after every character: (B, T, layers·H).

        ``nn.LSTM`` returns C only at the last step, so the text is fed one step at a time.
        """
        out = []
        for t in range(idx.shape[1]):
            _, state = self(idx[:, t : t + 1], state)
            c = state[1]  # (layers, B, H)
            out.append(c.permute(1, 0, 2).reshape(idx.shape[0], -1))  # (B, layers·H)
        return torch.stack(out, dim=1)


def streams(data: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a 1-D token tensor into ``batch`` contiguous streams: inputs and next-char targets,
    each (batch, L) with L = (len − 1) // batch. Row b is the text data[b·L : (b+1)·L]."""
    L = (len(data) - 1) // batch
    x = data[: batch * L].view(batch, L)
    y = data[1 : batch * L + 1].view(batch, L)
    return x, y


def detach(state: State) -> State:
    """Truncate backpropagation: keep the state's value, drop its history."""
    return (state[0].detach(), state[1].detach())


@torch.no_grad()
def stream_loss(model: CharRNN, x: torch.Tensor, y: torch.Tensor, chunk: int) -> float:
    """Mean next-character cross-entropy (nats) over whole streams x, y: (B, L), carrying the
    state from chunk to chunk, as in training."""
    state, total = None, 0.0
    for j in range(0, x.shape[1], chunk):
        logits, state = model(x[:, j : j + chunk], state)
        total += F.cross_entropy(
            logits.flatten(0, 1), y[:, j : j + chunk].flatten(), reduction="sum"
        ).item()
    return total / y.numel()


def generate(
    model: CharRNN,
    prompt: list[int],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Feed the prompt, then draw characters from softmax(y / τ) one at a time, feeding each
    back, for as long as the caller iterates (each is yielded as soon as it is drawn).

    As τ → 0 the distribution concentrates on the argmax (greedy decoding); τ = 1 samples the
    model's own distribution; τ > 1 flattens it.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not prompt:
        raise ValueError("the prompt must contain at least one character")

    @torch.no_grad()
    def stream() -> Iterator[int]:
        model.eval()
        logits, state = model(torch.tensor([prompt]))
        y = logits[0, -1]  # (V,)
        while True:
            token = sampling.draw(
                y, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            c = int(token)
            yield c
            logits, state = model(torch.tensor([[c]]), state)
            y = logits[0, -1]

    return stream()


def sample(model: CharRNN, prompt: list[int], length: int, **kwargs) -> list[int]:
    """``length`` characters drawn by :func:`generate` (same keyword arguments)."""
    return list(itertools.islice(generate(model, prompt, **kwargs), length))


class Vocab:
    """Characters ↔ indices; the sorted set of the whole file's characters (as char-rnn)."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class NGramModel:
    """Character n-gram model with interpolated absolute discounting.

    p_n(w | h) = max(c(h w) − D_n, 0) / c(h) + D_n · N₁₊(h •) / c(h) · p_{n−1}(w | h'),

    h' = h without its first character, N₁₊(h •) the number of distinct characters seen after
    h, D_n = n₁ / (n₁ + 2 n₂) from the counts of n-grams seen once and twice (Ney et al. 1994).
    An unseen context falls back to p_{n−1}; p_0 is uniform over the vocabulary, so every
    p_n(• | h) sums to one. Counts are kept as sorted integer codes (base-V digits) in NumPy.
    """

    def __init__(self, tokens: np.ndarray, *, n: int, vocab_size: int):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n, self.V = n, vocab_size
        tokens = np.asarray(tokens, dtype=np.int64)
        self.tables = []  # per order k = 1..n: (codes, counts, ctx_codes, ctx_totals, ctx_types, D)
        for k in range(1, n + 1):
            codes, counts = np.unique(self._codes(tokens, k), return_counts=True)
            ctx = codes // self.V  # the (k−1)-character context of each k-gram
            ctx_codes, first, types = np.unique(ctx, return_index=True, return_counts=True)
            totals = np.add.reduceat(counts, first)
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            D = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
            self.tables.append((codes, counts, ctx_codes, totals, types, D))

    def _codes(self, tokens: np.ndarray, k: int) -> np.ndarray:
        """Integer code of every k-gram ending at positions k−1..len−1 (big-endian base V)."""
        code = np.zeros(len(tokens) - k + 1, dtype=np.int64)
        for j in range(k):
            code = code * self.V + tokens[j : len(tokens) - k + 1 + j]
        return code

    @staticmethod
    def _lookup(keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(table, keys), 0, len(table) - 1)
        return np.where(table[pos] == keys, values[pos], 0)

    def prob(self, history: np.ndarray, next_tokens: np.ndarray) -> np.ndarray:
        """p(next | history) for each row. history: (N, n−1) int (oldest first), next: (N,)."""
        history = np.asarray(history, dtype=np.int64).reshape(len(next_tokens), self.n - 1)
        p = np.full(len(next_tokens), 1.0 / self.V)
        for k in range(1, self.n + 1):
            codes, counts, ctx_codes, totals, types, D = self.tables[k - 1]
            ctx = np.zeros(len(next_tokens), dtype=np.int64)
            for j in range(self.n - k, self.n - 1):  # the last k−1 characters of the history
                ctx = ctx * self.V + history[:, j]
            c_hw = self._lookup(ctx * self.V + next_tokens, codes, counts)
            c_h = self._lookup(ctx, ctx_codes, totals)
            n_h = self._lookup(ctx, ctx_codes, types)
            seen = c_h > 0
            safe = np.maximum(c_h, 1)
            p = np.where(seen, np.maximum(c_hw - D, 0) / safe + D * n_h / safe * p, p)
        return p

    def loss(self, tokens: np.ndarray, *, start: int | None = None) -> float:
        """Mean −log p (nats/char) of tokens[start:] given their n−1 predecessors
        (``start`` ≥ n−1, default n−1; pass the largest n−1 to compare orders on one set)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        m = self.n - 1
        start = m if start is None else start
        if start < m:
            raise ValueError(f"start must be >= n - 1 = {m}")
        idx = np.arange(start, len(tokens))
        history = tokens[idx[:, None] - m + np.arange(m)]  # (N, n−1), oldest first
        return float(-np.log(self.prob(history, tokens[idx])).mean())
