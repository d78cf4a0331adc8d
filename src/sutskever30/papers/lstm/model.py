"""Understanding LSTM Networks: Christopher Olah, 2015 (blog post,
colah.github.io/posts/2015-08-Understanding-LSTMs; not on arXiv). The cells it explains come
from Hochreiter & Schmidhuber 1997 (LSTM), Gers & Schmidhuber 2000 (peepholes) and
Cho et al. 2014, arXiv:1406.1078 (GRU).

Idea: a plain RNN squashes its state through tanh at every step, so the gradient from step T
back to step t shrinks like a product of T − t Jacobians; the LSTM adds a cell state C_t that
is only touched by gated, elementwise multiply-and-add, so information (and gradient) can
flow across long lags unchanged when the forget gate is open.

Equations, in the post's notation ([h_{t-1}, x_t] is the concatenation, σ the logistic):

    f_t = σ(W_f·[h_{t-1}, x_t] + b_f)          forget gate
    i_t = σ(W_i·[h_{t-1}, x_t] + b_i)          input gate
    C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)       candidate values
    C_t = f_t * C_{t-1} + i_t * C̃_t            new cell state
    o_t = σ(W_o·[h_{t-1}, x_t] + b_o)          output gate
    h_t = o_t * tanh(C_t)

Peephole variant: the gates also look at the cell state (f_t, i_t at C_{t-1}; o_t at C_t).
Coupled variant: one gate decides both forgetting and writing, C_t = f_t*C_{t-1} + (1−f_t)*C̃_t.
GRU:

    z_t = σ(W_z·[h_{t-1}, x_t]),  r_t = σ(W_r·[h_{t-1}, x_t])
    h̃_t = tanh(W·[r_t * h_{t-1}, x_t])
    h_t = (1 − z_t) * h_{t-1} + z_t * h̃_t

Deviations from the paper:
- Peephole connections are diagonal (one weight per cell, p ⊙ C), as in Gers & Schmidhuber
  2000 and every library; the post's diagram writes them as full matrices W·[C, h, x].
- The GRU has a ``reset_after`` option: True applies r_t after the recurrent matrix,
  h̃_t = tanh(W_x x_t + r_t * (W_h h_{t-1} + b_h)), which is what ``torch.nn.GRU`` (and cuDNN)
  compute; the default False is the post's (and Cho et al.'s) form above.
- ``torch.nn.GRU`` writes h_t = (1 − z)·h̃ + z·h, i.e. its z is 1 − ours;
  :func:`copy_from_torch_gru` negates the update gate's weights so the two agree exactly.
- Biases: one bias per gate (PyTorch keeps two, b_ih + b_hh; they are summed when copied).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class LSTMCell(nn.Module):
    """One step of the LSTM, gate by gate. ``peephole`` adds diagonal peepholes; ``coupled``
    ties the input gate to the forget gate (i_t = 1 − f_t) and drops W_i."""

    def __init__(
        self, *, input_size: int, hidden_size: int, peephole: bool = False, coupled: bool = False
    ):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.peephole, self.coupled = peephole, coupled
        concat = hidden_size + input_size  # [h_{t-1}, x_t]
        self.W_f = nn.Linear(concat, hidden_size)
        self.W_i = None if coupled else nn.Linear(concat, hidden_size)
        self.W_C = nn.Linear(concat, hidden_size)
        self.W_o = nn.Linear(concat, hidden_size)
        if peephole:
            self.p_f = nn.Parameter(torch.zeros(hidden_size))
            self.p_i = None if coupled else nn.Parameter(torch.zeros(hidden_size))
            self.p_o = nn.Parameter(torch.zeros(hidden_size))

    def forward(
        self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, input_size); state (h, C): (B, H) each → (h_t, C_t)."""
        h_prev, C_prev = state
        hx = torch.cat([h_prev, x_t], dim=1)  # (B, H + I)
        f_pre = self.W_f(hx)
        if self.peephole:
            f_pre = f_pre + self.p_f * C_prev
        f_t = torch.sigmoid(f_pre)
        if self.coupled:
            i_t = 1 - f_t
        else:
            i_pre = self.W_i(hx)
            if self.peephole:
                i_pre = i_pre + self.p_i * C_prev
            i_t = torch.sigmoid(i_pre)
        C_tilde = torch.tanh(self.W_C(hx))
        C_t = f_t * C_prev + i_t * C_tilde
        o_pre = self.W_o(hx)
        if self.peephole:
            o_pre = o_pre + self.p_o * C_t  # the output gate peeks at the new cell state
        o_t = torch.sigmoid(o_pre)
        h_t = o_t * torch.tanh(C_t)
        return h_t, C_t


class GRUCell(nn.Module):
    """One step of the GRU, gate by gate (update z, reset r)."""

    def __init__(self, *, input_size: int, hidden_size: int, reset_after: bool = False):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.reset_after = reset_after
        concat = hidden_size + input_size
        self.W_z = nn.Linear(concat, hidden_size)
        self.W_r = nn.Linear(concat, hidden_size)
        if reset_after:
            # r gates the recurrent term after its matrix: W_x x + r * (W_h h + b_h).
            self.W_x = nn.Linear(input_size, hidden_size)
            self.W_h = nn.Linear(hidden_size, hidden_size)
        else:
            self.W = nn.Linear(concat, hidden_size)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """x_t: (B, input_size), h_prev: (B, H) → h_t: (B, H)."""
        hx = torch.cat([h_prev, x_t], dim=1)  # (B, H + I)
        z_t = torch.sigmoid(self.W_z(hx))
        r_t = torch.sigmoid(self.W_r(hx))
        if self.reset_after:
            h_tilde = torch.tanh(self.W_x(x_t) + r_t * self.W_h(h_prev))
        else:
            h_tilde = torch.tanh(self.W(torch.cat([r_t * h_prev, x_t], dim=1)))
        return (1 - z_t) * h_prev + z_t * h_tilde


class TanhRNNCell(nn.Module):
    """The plain RNN the post starts from: h_t = tanh(W·[h_{t-1}, x_t] + b)."""

    def __init__(self, *, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W = nn.Linear(hidden_size + input_size, hidden_size)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.W(torch.cat([h_prev, x_t], dim=1)))


class Recurrent(nn.Module):
    """Unrolls one written-out cell over a sequence (batch first), like ``nn.LSTM`` with
    ``batch_first=True`` and one layer. Returns all h_t and the final state."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def initial_state(self, batch: int, like: torch.Tensor):
        h0 = like.new_zeros(batch, self.cell.hidden_size)
        return (h0, h0.clone()) if isinstance(self.cell, LSTMCell) else h0

    def forward(self, x: torch.Tensor, state=None):
        """x: (B, T, I) → (outputs (B, T, H), final state: (h, C) for LSTMs, h otherwise)."""
        if state is None:
            state = self.initial_state(x.shape[0], x)
        outputs = []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs, dim=1), state


def _torch_gates(module: nn.RNNBase, n: int) -> tuple[list[torch.Tensor], ...]:
    """Layer 0's per-gate input weights, recurrent weights and summed biases."""
    w_ih = module.weight_ih_l0.detach().chunk(n)
    w_hh = module.weight_hh_l0.detach().chunk(n)
    b_ih = module.bias_ih_l0.detach().chunk(n)
    b_hh = module.bias_hh_l0.detach().chunk(n)
    return w_ih, w_hh, b_ih, b_hh


@torch.no_grad()
def copy_from_torch_lstm(cell: LSTMCell, lstm: nn.LSTM) -> None:
    """Load ``nn.LSTM``'s layer-0 weights into ``cell`` (PyTorch's gate order: i, f, g, o)."""
    if cell.coupled:
        raise ValueError("a coupled-gate cell has no input gate to copy into")
    w_ih, w_hh, b_ih, b_hh = _torch_gates(lstm, 4)
    for k, linear in enumerate((cell.W_i, cell.W_f, cell.W_C, cell.W_o)):
        linear.weight.copy_(torch.cat([w_hh[k], w_ih[k]], dim=1))  # acts on [h, x]
        linear.bias.copy_(b_ih[k] + b_hh[k])


@torch.no_grad()
def copy_from_torch_gru(cell: GRUCell, gru: nn.GRU) -> None:
    """Load ``nn.GRU``'s layer-0 weights (gate order r, z, n) into a ``reset_after`` cell.

    PyTorch's z is 1 − ours and σ(−a) = 1 − σ(a), so the update gate's weights are negated.
    """
    if not cell.reset_after:
        raise ValueError(
            "nn.GRU resets after the recurrent matrix: build GRUCell(reset_after=True)"
        )
    w_ih, w_hh, b_ih, b_hh = _torch_gates(gru, 3)
    cell.W_r.weight.copy_(torch.cat([w_hh[0], w_ih[0]], dim=1))
    cell.W_r.bias.copy_(b_ih[0] + b_hh[0])
    cell.W_z.weight.copy_(-torch.cat([w_hh[1], w_ih[1]], dim=1))
    cell.W_z.bias.copy_(-(b_ih[1] + b_hh[1]))
    cell.W_x.weight.copy_(w_ih[2])
    cell.W_x.bias.copy_(b_ih[2])
    cell.W_h.weight.copy_(w_hh[2])
    cell.W_h.bias.copy_(b_hh[2])


@torch.no_grad()
def copy_from_torch_rnn(cell: TanhRNNCell, rnn: nn.RNN) -> None:
    w_ih, w_hh, b_ih, b_hh = _torch_gates(rnn, 1)
    cell.W.weight.copy_(torch.cat([w_hh[0], w_ih[0]], dim=1))
    cell.W.bias.copy_(b_ih[0] + b_hh[0])


class SequenceClassifier(nn.Module):
    """A one-layer recurrent net (PyTorch's fused ``nn.LSTM``/``nn.GRU``/``nn.RNN``, whose
    cell equals the written-out one above) reading a sequence, and a linear readout of h_T."""

    def __init__(
        self,
        *,
        kind: Literal["lstm", "gru", "rnn"],
        input_size: int,
        hidden_size: int,
        num_outputs: int,
    ):
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.rnn = rnn_cls(input_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, num_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, I) → (readout of h_T: (B, num_outputs), all h_t: (B, T, H))."""
        h, _ = self.rnn(x)
        return self.readout(h[:, -1]), h


def gradient_vs_lag(model: SequenceClassifier, x: torch.Tensor) -> torch.Tensor:
    """‖∂h_T/∂x_t‖ (Frobenius norm of the H × I Jacobian, averaged over the batch) for every t.

    x: (B, T, I) → (T,); entry t is the sensitivity of the last state to the input at lag T−1−t.
    """
    x = x.detach().clone().requires_grad_(True)
    _, h = model(x)
    h_T = h[:, -1]  # (B, H)
    sq = torch.zeros_like(x)  # (B, T, I): Σ_k (∂h_T[k]/∂x_t)² accumulated row by row
    for k in range(h_T.shape[1]):
        (g,) = torch.autograd.grad(h_T[:, k].sum(), x, retain_graph=True)
        sq += g.pow(2)
    return sq.sum(dim=2).sqrt().mean(dim=0)  # (T,)
