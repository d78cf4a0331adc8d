"""Neural Machine Translation by Jointly Learning to Align and Translate.

Dzmitry Bahdanau, Kyunghyun Cho, Yoshua Bengio, 2014 (ICLR 2015), arXiv:1409.0473.

The idea: an encoder–decoder that squeezes the whole source sentence into one fixed vector
loses the long sentences; instead the encoder keeps one annotation per source word and the
decoder, at every target word, takes a soft-weighted average of them (attention), learning
where to look jointly with how to translate.

Encoder (§3.2, Appendix A.2.1): a bidirectional GRU over the embedded source words
E x_1 … E x_{T_x}; the annotation of word j is both directions' states side by side,

    h_j = [→h_j ; ←h_j]                                                   (2n values)

Alignment model and context (§3.1, Appendix A.1.2; the shared ``nn.attention.AdditiveAttention``):

    e_ij = vᵀ tanh(W s_{i−1} + U h_j),  α_ij = softmax_j(e_ij),  c_i = Σ_j α_ij h_j

Decoder (Appendix A.2.2): initial state s_0 = tanh(W_s ←h_1); a GRU whose input at step i
is the previous target word and the context,

    s_i = GRU(s_{i−1}, [E y_{i−1} ; c_i])

and the deep output with a maxout layer (Goodfellow et al. 2013, pool size 2),

    t̃_i = U_o s_{i−1} + V_o E y_{i−1} + C_o c_i              (2l values)
    t_i  = [max(t̃_{i,2k−1}, t̃_{i,2k})]_{k=1…l}
    p(y_i | y_{<i}, x) = softmax(W_o t_i)

The baseline RNNencdec (Cho et al. 2014, arXiv:1406.1078) has no alignment model: the
context is one vector for the whole sentence, the encoder's final states
c = [→h_{T_x} ; ←h_1], fed unchanged to every decoder step (c_i = c for all i). Everything
else (encoder, s_0, decoder GRU, deep output) is the same module, so the two models differ
only in how c_i is formed.

``Seq2Seq.step`` is the ``step(tokens, state) -> (log_probs, state)`` function of
``nn.search`` (greedy and beam search for both models); its state is ``Seq2Seq.encode``'s
dict of tensors, one row per hypothesis, which ``nn.search.select_rows`` reorders.

Deviations from the paper
-------------------------
- The appendix's readout uses s_{i−1} (t̃_i above), the main text's eq. 4 writes
  g(y_{i−1}, s_i, c_i); we follow the appendix, which is what the equations specify.
- The GRUs are ``nn.GRU`` / ``nn.GRUCell`` (with biases; the paper omits biases "to make the
  equations less cluttered"); the decoder GRU's C c_i term is the context half of the
  cell's input weights, the same function written as one matrix.
- The baseline's encoder is the same bidirectional GRU (its context is both directions'
  final states); Cho et al. and the paper's RNNencdec used a unidirectional one with
  c = tanh(V h_{T_x}). Sharing the encoder makes the comparison about attention alone.
- Sizes, training and data are the experiment's (README): CPU-sized models, Adam instead
  of Adadelta, Multi30k instead of WMT'14 En–Fr, no 30k-word shortlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sutskever30.nn.attention import AdditiveAttention


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Sizes in the paper's notation (Appendix A.2): m the word embedding, n the GRU
    states, n' the alignment model's hidden layer, l the maxout units."""

    src_vocab: int
    tgt_vocab: int
    m: int = 620
    n: int = 1000
    n_align: int = 1000  # n'
    l: int = 500  # noqa: E741 (the paper's name)
    attention: bool = True  # RNNsearch; False: RNNencdec
    pad_id: int = 0

    def __post_init__(self) -> None:
        if min(self.src_vocab, self.tgt_vocab, self.m, self.n, self.n_align, self.l) < 1:
            raise ValueError("vocabulary sizes, m, n, n_align and l must be >= 1")


class Seq2Seq(nn.Module):
    """RNNsearch (``attention=True``) or RNNencdec (``attention=False``)."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        m, n, l = cfg.m, cfg.n, cfg.l  # noqa: E741
        self.src_embed = nn.Embedding(cfg.src_vocab, m, padding_idx=cfg.pad_id)
        self.encoder = nn.GRU(m, n, batch_first=True, bidirectional=True)
        self.W_s = nn.Linear(n, n)
        self.attend = (
            AdditiveAttention(query_dim=n, key_dim=2 * n, attn_dim=cfg.n_align)
            if cfg.attention
            else None
        )
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, m, padding_idx=cfg.pad_id)
        self.decoder = nn.GRUCell(m + 2 * n, n)
        self.U_o = nn.Linear(n, 2 * l)
        self.V_o = nn.Linear(m, 2 * l, bias=False)
        self.C_o = nn.Linear(2 * n, 2 * l, bias=False)
        self.W_o = nn.Linear(l, cfg.tgt_vocab)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, Any]:
        """src (B, T_x) padded ids, src_len (B,) true lengths ≥ 1. Returns the decoder's
        starting state: annotations ``h`` (B, T_x, 2n), ``mask`` (B, T_x) (True at real
        words), ``s`` = s_0 (B, n), and either ``uh`` = U h_j (B, T_x, n') (RNNsearch) or
        the fixed context ``c`` = [→h_{T_x}; ←h_1] (B, 2n) (RNNencdec)."""
        n = self.cfg.n
        packed = pack_padded_sequence(
            self.src_embed(src), src_len.cpu(), batch_first=True, enforce_sorted=False
        )
        out, last = self.encoder(packed)  # last (2, B, n): forward at T_x, backward at 1
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len[:, None]
        back_first = h[:, 0, n:]  # ←h_1 (B, n)
        state = {"h": h, "mask": mask, "s": torch.tanh(self.W_s(back_first))}
        if self.attend is not None:
            state["uh"] = self.attend.project_keys(h)  # U h_j once per sentence
        else:
            state["c"] = torch.cat([last[0], last[1]], dim=-1)  # (B, 2n)
        return state

    # -- decoder ---------------------------------------------------------------------------
    def context(self, state: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """c_i (B, 2n) from s_{i−1} and the annotations, and α_i (B, T_x) (None without
        attention: the fixed c)."""
        if self.attend is None:
            return state["c"], None
        return self.attend(state["s"], state["h"], mask=state["mask"], projected_keys=state["uh"])

    def readout(self, s_prev: torch.Tensor, ey: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Logits W_o t_i with t_i = maxout_2(U_o s_{i−1} + V_o E y_{i−1} + C_o c_i);
        works on any leading shape (…, n), (…, m), (…, 2n) → (…, K_y)."""
        t_tilde = self.U_o(s_prev) + self.V_o(ey) + self.C_o(c)  # (…, 2l)
        t = maxout(t_tilde)  # (…, l)
        return self.W_o(t)

    def teacher_forced(
        self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The recurrence under teacher forcing: tgt_in (B, T_y) is <bos> y_1 … y_{T_y−1}.
        Returns the readout's inputs at every step, s_{i−1} (B, T_y, n), E y_{i−1}
        (B, T_y, m) and c_i (B, T_y, 2n), and the weights α (B, T_y, T_x) (None for
        RNNencdec)."""
        state = self.encode(src, src_len)
        ey = self.tgt_embed(tgt_in)  # (B, T_y, m)
        s_prevs, contexts, alphas = [], [], []
        for i in range(tgt_in.shape[1]):
            c, alpha = self.context(state)
            s_prevs.append(state["s"])
            contexts.append(c)
            alphas.append(alpha)
            state["s"] = self.decoder(torch.cat([ey[:, i], c], dim=-1), state["s"])
        alpha = torch.stack(alphas, 1) if self.attend is not None else None
        return torch.stack(s_prevs, 1), ey, torch.stack(contexts, 1), alpha

    def forward(
        self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits (B, T_y, K_y) of y_1 … y_{T_y} under teacher forcing and the weights
        α (B, T_y, T_x) (None for RNNencdec); the readout runs once over all steps after
        the recurrence."""
        s_prev, ey, c, alpha = self.teacher_forced(src, src_len, tgt_in)
        return self.readout(s_prev, ey, c), alpha

    def step(self, tokens: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        """One decoder step: y_{i−1} (N,) and the state holding s_{i−1} → log p(y_i | …)
        (N, K_y) and the state holding s_i (a new dict; the input is not changed)."""
        ey = self.tgt_embed(tokens)  # (N, m)
        c, _ = self.context(state)
        logp = F.log_softmax(self.readout(state["s"], ey, c), dim=-1)
        return logp, {**state, "s": self.decoder(torch.cat([ey, c], dim=-1), state["s"])}


def maxout(t_tilde: torch.Tensor) -> torch.Tensor:
    """Maxout with pools of 2 over the last dimension: (…, 2l) → (…, l), unit k the larger
    of t̃_{2k−1}, t̃_{2k} (pairs of neighbours)."""
    return t_tilde.unflatten(-1, (-1, 2)).amax(dim=-1)


def translation_loss(logits: torch.Tensor, target: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy per real target token (y_1 … y_{T_y} and <eos>; padding ignored)."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad_id)


def training_loss(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    tgt_in: torch.Tensor,
    tgt_out: torch.Tensor,
) -> torch.Tensor:
    """:func:`translation_loss` of the teacher-forced logits, with the readout (the costly
    K_y-way output layer) computed at the real target tokens only, not at the padding."""
    s_prev, ey, c, _ = model.teacher_forced(src, src_len, tgt_in)
    real = tgt_out != model.cfg.pad_id  # (B, T_y)
    return F.cross_entropy(model.readout(s_prev[real], ey[real], c[real]), tgt_out[real])
