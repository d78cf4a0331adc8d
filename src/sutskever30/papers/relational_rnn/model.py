"""Relational Recurrent Neural Networks.

Adam Santoro, Ryan Faulkner, David Raposo, Jack Rae, Mike Chrzanowski, Théophane Weber,
Daan Wierstra, Oriol Vinyals, Razvan Pascanu, Timothy Lillicrap, 2018 (NeurIPS 2018,
arXiv:1806.01822).

The idea: a recurrent core whose state is a matrix M of N memory slots (rows), updated at
every step by letting the slots attend to each other *and* to the new input, so that
relations between remembered items are computed inside the recurrence (the relational
memory core, RMC).

At each step t, with input x_t projected to the slot width d (``W_in``):

    Ã = MultiHead(M W^q, [M; x] W^k, [M; x] W^v)           (§3.2: the memory's rows query
                                                             the memory and the input)
    M̃ = LayerNorm(M + Ã)                                    (residual + layer norm)
    M̃ = LayerNorm(M̃ + g_ψ(M̃))                             (row-wise MLP g_ψ, residual + norm)
    i_t = W^i x_t + U^i tanh(M_{t−1}) + b^i,   b^i = 0       (LSTM-style gates, per unit
    f_t = W^f x_t + U^f tanh(M_{t−1}) + b^f,   b^f = 1        and per slot: the paper's
    M_t = σ(i_t) ⊙ tanh(M̃) + σ(f_t) ⊙ M_{t−1}                LSTM embedding, eqs. 3-9)

The core's output is M_t flattened (N·d numbers). M_0 is the identity (slot n's row is the
n-th unit vector, zero-padded to d), as in DeepMind's Sonnet ``RelationalMemory`` (the
reference for details the paper leaves open: input projection, gate biases 0 and 1, gates
from tanh(M_{t−1}), a two-layer MLP, one attention block).

Every part of the update acts on the slots alike (attention is permutation-equivariant, the
MLP, layer norms and gates are row-wise), so permuting M_{t−1}'s rows permutes M_t's.

The baseline is ``nn.LSTM`` (the fused kernel: the LSTM is not this paper's idea) with the
same classifier head.

Deviations from the paper:
- Attention is the shared ``nn.attention.MultiHeadAttention`` (Vaswani et al.): query, key
  and value projections of width d split into heads of d / h, and an output projection
  W^O. Sonnet has no W^O and lets the key size differ from the head size.
- Queries come from the memory rows only (the paper's equations). Sonnet also lets the
  input row query and then drops it; with one attention block (used here and Sonnet's
  default) the two are the same.
- One attention block, no multi-block option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sutskever30.nn.attention import MultiHeadAttention


@dataclass(frozen=True)
class RMCConfig:
    input_size: int
    mem_slots: int = 4  # N
    head_size: int = 16  # d / h
    n_heads: int = 4  # h
    mlp_layers: int = 2  # layers of g_ψ, each d → d
    forget_bias: float = 1.0  # b^f (Sonnet's default)
    input_bias: float = 0.0  # b^i (Sonnet's default)

    def __post_init__(self) -> None:
        if min(self.input_size, self.mem_slots, self.head_size, self.n_heads) < 1:
            raise ValueError("input_size, mem_slots, head_size and n_heads must be >= 1")
        if self.mlp_layers < 1:
            raise ValueError("mlp_layers must be >= 1")

    @property
    def d(self) -> int:
        """The slot width (Sonnet's mem_size): heads × head size."""
        return self.head_size * self.n_heads


class RelationalMemory(nn.Module):
    """The relational memory core: :meth:`step` is one application of the update above."""

    def __init__(self, cfg: RMCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.W_in = nn.Linear(cfg.input_size, d)  # x_t → a row the width of a slot
        self.attn = MultiHeadAttention(d_model=d, n_heads=cfg.n_heads)
        self.norm_attn = nn.LayerNorm(d)
        self.g_psi = nn.Sequential(
            *[m for _ in range(cfg.mlp_layers) for m in (nn.Linear(d, d), nn.ReLU())][:-1]
        )
        self.norm_mlp = nn.LayerNorm(d)
        self.W_gate = nn.Linear(cfg.input_size, 2 * d)  # [W^i; W^f] x_t
        self.U_gate = nn.Linear(d, 2 * d, bias=False)  # [U^i; U^f] tanh(M_{t−1}), row-wise

    def initial_memory(self, batch_size: int) -> torch.Tensor:
        """M_0 (B, N, d): the identity, cut or zero-padded to d columns."""
        n, d = self.cfg.mem_slots, self.cfg.d
        eye = torch.eye(n, max(n, d), device=self.W_in.weight.device)[:, :d]  # (N, d)
        return eye.expand(batch_size, n, d).clone()

    def attend(
        self, M: torch.Tensor, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M̃ = LN(M' + g_ψ(M')), M' = LN(M + Ã): M (B, N, d), x (B, d) already projected.
        Returns M̃ (B, N, d) and, if asked, the weights (B, h, N, N + 1) (column N: x)."""
        Mx = torch.cat([M, x[:, None, :]], dim=1)  # [M; x] (B, N + 1, d)
        A, weights = self.attn(M, Mx, Mx, need_weights=need_weights)  # Ã (B, N, d)
        M = self.norm_attn(M + A)
        return self.norm_mlp(M + self.g_psi(M)), weights

    def gates(self, x_t: torch.Tensor, M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """σ(i_t), σ(f_t) (B, N, d) each, from x_t (B, input_size) and M_{t−1} (B, N, d)."""
        gates = self.W_gate(x_t)[:, None, :] + self.U_gate(torch.tanh(M))  # (B, N, 2d)
        i, f = gates.chunk(2, dim=-1)
        return torch.sigmoid(i + self.cfg.input_bias), torch.sigmoid(f + self.cfg.forget_bias)

    def step(
        self, x_t: torch.Tensor, M: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M_t (B, N, d) from x_t (B, input_size) and M_{t−1} (B, N, d), and the
        attention weights if asked."""
        M_tilde, weights = self.attend(M, self.W_in(x_t), need_weights)
        i, f = self.gates(x_t, M)
        return i * torch.tanh(M_tilde) + f * M, weights

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, T, input_size) → the last output M_T flattened (B, N·d), and the attention
        weights of each step (a list of T tensors (B, h, N, N + 1)) if asked."""
        M = self.initial_memory(x.shape[0])
        seen = []
        for t in range(x.shape[1]):
            M, weights = self.step(x[:, t], M, need_weights)
            if need_weights:
                seen.append(weights)
        return M.flatten(1), seen


@dataclass(frozen=True)
class ClassifierConfig:
    """A recurrent core read to the end, then an MLP head to ``n_classes`` logits."""

    core: Literal["rmc", "lstm"]
    input_size: int
    n_classes: int
    rmc: RMCConfig | None = None
    lstm_hidden: int = 128
    head_hidden: int = 128

    def __post_init__(self) -> None:
        if self.core not in ("rmc", "lstm"):
            raise ValueError(f"core must be 'rmc' or 'lstm', got {self.core!r}")
        if self.core == "rmc" and self.rmc is None:
            raise ValueError("core 'rmc' needs an RMCConfig")
        if min(self.input_size, self.n_classes, self.lstm_hidden, self.head_hidden) < 1:
            raise ValueError("input_size, n_classes, lstm_hidden and head_hidden must be >= 1")


class SequenceClassifier(nn.Module):
    """RMC or LSTM over the sequence; the final output → ReLU MLP → class logits."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.core == "rmc":
            self.rmc = RelationalMemory(cfg.rmc)
            out = cfg.rmc.mem_slots * cfg.rmc.d
        else:
            self.lstm = nn.LSTM(cfg.input_size, cfg.lstm_hidden, batch_first=True)
            out = cfg.lstm_hidden
        self.head = nn.Sequential(
            nn.Linear(out, cfg.head_hidden), nn.ReLU(), nn.Linear(cfg.head_hidden, cfg.n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, input_size) → logits (B, n_classes)."""
        if self.cfg.core == "rmc":
            h, _ = self.rmc(x)  # (B, N·d)
        else:
            _, (h, _) = self.lstm(x)
            h = h[-1]  # (B, hidden)
        return self.head(h)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
