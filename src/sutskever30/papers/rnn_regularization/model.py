"""Recurrent Neural Network Regularization.

Wojciech Zaremba, Ilya Sutskever, Oriol Vinyals, 2014. arXiv:1409.2329.

Idea: apply dropout to an LSTM only on its *non-recurrent* connections (the input of each
layer: the word embedding into layer 1, layer l's output into layer l+1, the top layer into
the softmax), never on the recurrent state h_{t-1}, so that the memory is not corrupted at
every step and the LSTM can still carry information over many time steps.

Equations (the paper's Section 3.2; D is the dropout operator, T_{2n,4n} an affine map,
h_t^0 the word embedding, h_t^L the top layer):

    (i, f, o, g) = (sigm, sigm, sigm, tanh)( T_{2n,4n} [D(h_t^{l-1}); h_{t-1}^l] )
    c_t^l = f * c_{t-1}^l + i * g
    h_t^l = o * tanh(c_t^l)
    p(w_{t+1} | w_{≤t}) = softmax(W_y D(h_t^L) + b_y)

Each word's information passes through L+1 dropout masks however many steps it travels.
The contrast ("naive" recurrent dropout, as in the earlier work the paper argues against)
also applies D to h_{t-1}^l with a fresh mask at every time step.

Implementation: each layer is a single-layer ``nn.LSTM`` (PyTorch's fused kernel is the fast
path) with D applied explicitly between them. The naive variant needs the recurrent state
between steps, so :meth:`RegularizedLSTM.unrolled` writes the cell out step by step with the
same weights; the tests check the two paths against each other and against nn.LSTMCell.

Deviations from the paper:
- PyTorch's LSTM has two bias vectors (b_ih + b_hh) where the paper's T has one; the sum is
  the same function, only the parameter count differs by 4n per layer.
- All parameters, including both biases, are initialised U[-init_scale, init_scale] as in the
  paper; the embedding and softmax weights are untied, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (L, B, n)


@dataclass(frozen=True)
class LSTMConfig:
    vocab_size: int = 10000
    n: int = 200  # units per layer (= embedding size, as in the paper)
    n_layers: int = 2  # L
    dropout: float = 0.0  # p of D on the L+1 non-recurrent connections
    recurrent_dropout: float = 0.0  # p of D on h_{t-1} (naive variant); 0 in the paper
    init_scale: float = 0.1

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.n < 1 or self.n_layers < 1:
            raise ValueError("vocab_size ≥ 2, n ≥ 1 and n_layers ≥ 1 are required")
        for p in (self.dropout, self.recurrent_dropout):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout probabilities must be in [0, 1), got {p}")
        if self.init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale}")


class RegularizedLSTM(nn.Module):
    """Word-level L-layer LSTM language model with non-recurrent (and optionally naive
    recurrent) dropout."""

    def __init__(self, *, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        n, L = config.n, config.n_layers
        self.embedding = nn.Embedding(config.vocab_size, n)
        # One single-layer nn.LSTM per layer, so that D between layers is explicit.
        self.layers = nn.ModuleList(nn.LSTM(n, n, batch_first=True) for _ in range(L))
        self.decoder = nn.Linear(n, config.vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -config.init_scale, config.init_scale)

    def init_state(self, batch_size: int) -> State:
        shape = (self.config.n_layers, batch_size, self.config.n)
        zeros = self.embedding.weight.new_zeros(shape)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x (B, T) word ids → logits (B, T, V) and the final (h, c)."""
        cfg = self.config
        h0 = F.dropout(self.embedding(x), cfg.dropout, self.training)  # (B, T, n)
        if state is None:
            state = self.init_state(x.shape[0])
        if self.training and cfg.recurrent_dropout > 0:
            hL, state = self.unrolled(h0, state)
        else:
            hL, state = self.fused(h0, state)  # (B, T, n)
        return self.decoder(F.dropout(hL, cfg.dropout, self.training)), state

    def fused(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The fast path: PyTorch's LSTM kernel per layer, D between layers.

        x (B, T, n) is the (already dropped-out) layer-1 input.
        """
        h_out, c_out = [], []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = F.dropout(x, self.config.dropout, self.training)
            x, (h, c) = layer(x, (state[0][k : k + 1], state[1][k : k + 1]))  # (B, T, n)
            h_out.append(h)
            c_out.append(c)
        return x, (torch.cat(h_out), torch.cat(c_out))

    def unrolled(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The same LSTM written out step by step with the layers' weights.

        x (B, T, n) is the (already dropped-out) layer-1 input. In training mode, D with
        ``dropout`` acts between layers and D with ``recurrent_dropout`` on h_{t-1}.
        """
        cfg = self.config
        h_all, c_all = state
        h_out, c_out = [], []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = F.dropout(x, cfg.dropout, self.training)
            W_ih, W_hh = layer.weight_ih_l0, layer.weight_hh_l0  # (4n, n), gates i, f, g, o
            b = layer.bias_ih_l0 + layer.bias_hh_l0  # (4n,)
            x_proj = x @ W_ih.T + b  # (B, T, 4n): the non-recurrent half of T_{2n,4n}
            h, c = h_all[k], c_all[k]  # (B, n)
            hs = []
            for t in range(x.shape[1]):
                h_rec = F.dropout(h, cfg.recurrent_dropout, self.training)
                i, f, g, o = (x_proj[:, t] + h_rec @ W_hh.T).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            x = torch.stack(hs, dim=1)  # (B, T, n)
            h_out.append(h)
            c_out.append(c)
        return x, (torch.stack(h_out), torch.stack(c_out))


def perplexity(mean_nll: float) -> float:
    """Perplexity = exp(mean negative log-likelihood per word, in nats)."""
    return float(torch.tensor(mean_nll, dtype=torch.float64).exp())


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean NLL per word: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
