"""Order Matters: Sequence to sequence for sets.

Oriol Vinyals, Samy Bengio, Manjunath Kudlur, 2016 (ICLR 2016), arXiv:1511.06391.

The idea: a set has no order, so an encoder that reads it as a sequence imposes one, and
which one changes what the model learns. The read–process–write model reads a set
without any order: each element is embedded on its own, and an LSTM that takes no input
from the sequence attends over the embeddings by content for P steps (§4.2):

    m_i = read(x_i)                                     (a small network, per element)
    q_t = LSTM(q*_{t−1})                                (eq. 3)
    e_{i,t} = f(m_i, q_t) = m_i · q_t                   (eq. 4, dot product)
    a_{i,t} = exp(e_{i,t}) / Σ_j exp(e_{j,t})           (eq. 5)
    r_t = Σ_i a_{i,t} m_i                               (eq. 6)
    q*_t = [q_t; r_t]                                   (eq. 7)

Nothing in eqs. 3-7 depends on the order of the m_i (a softmax and a weighted sum over
them), so q*_P is invariant to a permutation of the set. The write block is a pointer
network (Vinyals, Fortunato, Jaitly 2015) whose LSTM starts from q*_P and points at the
memories m_i, one output at a time:

    d_0 = q*_P,  d_k = LSTM(m_{y_{k−1}}, d_{k−1}),  p(y_k = j) = softmax_j vᵀ tanh(W d_k + U m_j)

The baseline Ptr-Net reads the same embeddings with an LSTM encoder in the order they
are given, starts its decoder from the encoder's final state and points at the encoder's
states: its output depends on the input order, which is what the input-order experiment
measures.

Deviations from the paper:

- **P = 0.** The process block starts from q_0 = 0; with a dot-product f, a zero query
  attends uniformly, so r_0 = mean_i m_i and q*_0 = [0; mean_i m_i]. P = 0 hands that
  q*_0 (an order-free summary, the mean of the memories) to the write block. The paper's
  text on P = 0 could not be consulted offline; this is eqs. 4-7 applied at t = 0.
- **The process LSTM's input.** Eq. 3 feeds q*_{t−1} to the LSTM (the common reading, as
  in Set2Set implementations); the paper calls the process LSTM one "without inputs":
  it reads nothing from the sequence, only its own previous readout.
- **Write block initial state.** The write LSTM has 2d units so that q*_P (2d) is its
  initial hidden state directly; its initial cell state is zero.
- **No glimpse, no masking.** The write block points with no glimpse (the paper's Table 1
  rows "no glimpse"); already chosen elements are not masked out, as in the Ptr-Net
  paper's training (a repeated element makes the output wrong).
- **Read block.** A two-layer MLP of each number (the paper: "a small neural network").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.attention import AdditiveAttention

IGNORE = -100  # target index after the end of a sequence: no loss


@dataclass(frozen=True)
class SetModelConfig:
    in_dim: int = 1  # size of one element x_i (1: a number; 2: a point)
    d: int = 32  # memory size of m_i; the process LSTM has d units, the write LSTM 2d
    attn_dim: int = 32  # hidden size of the pointer's additive attention
    P: int = 5  # process steps (RPW only)
    end_token: bool = False  # a learned extra "end" element the decoder can point at

    def __post_init__(self) -> None:
        if min(self.in_dim, self.d, self.attn_dim) < 1:
            raise ValueError("in_dim, d and attn_dim must be >= 1")
        if self.P < 0:
            raise ValueError(f"P (process steps) must be >= 0, got {self.P}")


class Read(nn.Module):
    """m_i = read(x_i): the same MLP on every element, no interaction between elements."""

    def __init__(self, in_dim: int, d: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, N, in_dim) -> (B, N, d)


def content_attention(q: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 4-6: e_i = m_i · q, a = softmax(e), r = Σ_i a_i m_i. q (B, d), m (B, N, d);
    returns r (B, d) and a (B, N)."""
    e = torch.einsum("bnd,bd->bn", m, q)  # (B, N)
    a = e.softmax(dim=-1)
    return torch.einsum("bn,bnd->bd", a, m), a


class Process(nn.Module):
    """P steps of the input-free LSTM attending over the memories (eqs. 3-7). Returns
    q*_P (B, 2d) and the attention of every step (B, P + 1, N), step 0 the uniform one."""

    def __init__(self, d: int, P: int) -> None:
        super().__init__()
        self.P = P
        self.lstm = nn.LSTMCell(2 * d, d)

    def forward(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, d = m.shape
        q = m.new_zeros(b, d)  # q_0
        c = m.new_zeros(b, d)
        r, a = content_attention(q, m)  # r_0 = mean_i m_i
        q_star, attn = torch.cat([q, r], -1), [a]
        for _ in range(self.P):
            q, c = self.lstm(q_star, (q, c))  # eq. 3
            r, a = content_attention(q, m)  # eqs. 4-6
            q_star = torch.cat([q, r], -1)  # eq. 7, (B, 2d)
            attn.append(a)
        return q_star, torch.stack(attn, 1)


class PointerDecoder(nn.Module):
    """The write block: an LSTM whose input is the element it pointed at last (a learned
    ``go`` vector first) and whose output is a distribution over the keys, the logits of
    :meth:`AdditiveAttention.scores` (Ptr-Net eq. 3)."""

    def __init__(self, d_in: int, d_state: int, d_key: int, attn_dim: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(d_in, d_state)
        self.go = nn.Parameter(torch.zeros(d_in))
        self.pointer = AdditiveAttention(query_dim=d_state, key_dim=d_key, attn_dim=attn_dim)

    def forward(
        self,
        inputs: torch.Tensor,
        keys: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        y: torch.Tensor | None,
        steps: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, K, d_in): what the decoder reads after pointing at key j; keys
        (B, K, d_key). With targets ``y`` (B, steps) teacher forcing, else greedy. Returns
        logits (B, steps, K) and the pointed indices (B, steps)."""
        b = inputs.shape[0]
        uk = self.pointer.project_keys(keys)  # U k_j once, (B, K, attn_dim)
        x = self.go.expand(b, -1)
        rows = torch.arange(b, device=inputs.device)
        logits, picks = [], []
        for k in range(steps):
            state = self.cell(x, state)
            u = self.pointer.scores(state[0], keys, projected_keys=uk)  # (B, K)
            pick = u.argmax(-1)
            logits.append(u)
            picks.append(pick)
            nxt = pick if y is None else y[:, k].clamp(min=0)
            x = inputs[rows, nxt]  # (B, d_in)
        return torch.stack(logits, 1), torch.stack(picks, 1)


class ReadProcessWrite(nn.Module):
    """§4.2's model: read each element, process P steps, write with a pointer network."""

    def __init__(self, cfg: SetModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.read = Read(cfg.in_dim, d)
        self.process = Process(d, cfg.P)
        self.end = nn.Parameter(torch.randn(d) * 0.1) if cfg.end_token else None
        self.write = PointerDecoder(d, 2 * d, d, cfg.attn_dim)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, steps: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, in_dim); y (B, T) target indices (teacher forcing) or None (greedy, for
        ``steps`` outputs, default N). Returns pointer logits (B, T, K), the greedy picks
        (B, T) and the process block's attention (B, P + 1, N); K = N (+1 end token)."""
        m = self.read(x)  # (B, N, d)
        q_star, attn = self.process(m)  # (B, 2d), (B, P + 1, N)
        keys = m if self.end is None else torch.cat([m, self.end.expand(len(m), 1, -1)], 1)
        state = (q_star, torch.zeros_like(q_star))
        steps = y.shape[1] if y is not None else (steps or keys.shape[1])
        logits, picks = self.write(keys, keys, state, y, steps)
        return logits, picks, attn


class PtrNet(nn.Module):
    """The baseline: an LSTM encoder reads the embedded elements in the given order; the
    pointer decoder starts from its final state and points at its states."""

    def __init__(self, cfg: SetModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.read = Read(cfg.in_dim, d)
        self.encoder = nn.LSTM(d, 2 * d, batch_first=True)
        self.end = nn.Parameter(torch.randn(2 * d) * 0.1) if cfg.end_token else None
        self.end_in = nn.Parameter(torch.zeros(d)) if cfg.end_token else None
        self.write = PointerDecoder(d, 2 * d, 2 * d, cfg.attn_dim)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, steps: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        """As :meth:`ReadProcessWrite.forward` (no process attention: None)."""
        m = self.read(x)  # (B, N, d)
        h, (h_n, c_n) = self.encoder(m)  # (B, N, 2d), (1, B, 2d) each
        b = len(m)
        keys, inputs = h, m
        if self.end is not None:
            keys = torch.cat([h, self.end.expand(b, 1, -1)], 1)  # (B, N + 1, 2d)
            inputs = torch.cat([m, self.end_in.expand(b, 1, -1)], 1)
        steps = y.shape[1] if y is not None else (steps or keys.shape[1])
        logits, picks = self.write(inputs, keys, (h_n[0], c_n[0]), y, steps)
        return logits, picks, None


def pointer_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the pointed index per output step (targets ``IGNORE`` after
    the end are skipped). logits (B, T, K), y (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE)


def exact_match(picks: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the whole output sequence is right (Table 1's accuracy); positions after
    the end (``IGNORE``) are not compared."""
    return ((picks == y) | (y == IGNORE)).all(dim=1)
