"""Attention, shared by the attention papers (``transformer``, ``bahdanau_attention``,
``relational_rnn`` and the others).

Scaled dot-product and multi-head attention: Vaswani et al. 2017, "Attention Is All You
Need", arXiv:1706.03762, §3.2:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V                                     (eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, …, head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),  d_k = d_v = d_model / h

Sinusoidal positional encodings, §3.5:

    PE(pos, 2i) = sin(pos / 10000^(2i / d_model)),  PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))

Additive attention (and, its energies taken as logits over the inputs, a pointer network's
output): Bahdanau, Cho, Bengio 2014, "Neural Machine Translation by Jointly
Learning to Align and Translate", arXiv:1409.0473, §3.1 and Appendix A.1.2:

    e_ij = vᵀ tanh(W s_{i−1} + U h_j),  α_ij = exp(e_ij) / Σ_k exp(e_ik),  c_i = Σ_j α_ij h_j

Masks are boolean and say where a query *may* look (``True`` = attend), the convention of
``F.scaled_dot_product_attention``; a padding mask of keys (B, T_k) becomes (B, 1, 1, T_k)
for multi-head attention. Every query must see at least one key: a fully masked row has no
softmax (NaN), as in the fused kernel.

:func:`scaled_dot_product_attention` is eq. 1 written out and returns the weights;
:class:`MultiHeadAttention` runs the fused kernel unless the weights are asked for, and the
tests hold the two equal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(t_q: int, t_k: int, *, device: torch.device | None = None) -> torch.Tensor:
    """(T_q, T_k) bool, ``True`` where query i may see key j. The last query is aligned with
    the last key, so with T_k − T_q cached keys before the queries, query i (at position
    T_k − T_q + i) sees keys j ≤ T_k − T_q + i; for T_q = T_k this is the lower triangle."""
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(t_k - t_q)


def _combined_mask(
    mask: torch.Tensor | None, causal: bool, t_q: int, t_k: int, device: torch.device
) -> torch.Tensor | None:
    if not causal:
        return mask
    future = causal_mask(t_q, t_k, device=device)
    return future if mask is None else mask & future


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / √d_k) V (Vaswani et al. eq. 1), written out.

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v); ``mask`` broadcastable to
    (..., T_q, T_k), ``True`` = attend; ``causal`` also hides later keys (see
    :func:`causal_mask`). Returns the output (..., T_q, d_v) and the weights
    (..., T_q, T_k) (before dropout, which is applied to the weights that multiply V, as the
    fused kernel does)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    full = _combined_mask(mask, causal, q.shape[-2], k.shape[-2], q.device)
    if full is not None:
        scores = scores.masked_fill(~full, float("-inf"))
    weights = scores.softmax(dim=-1)
    return F.dropout(weights, dropout_p) @ v, weights


class AttentionCache:
    """The keys and values one attention layer has seen, (B, H, T, d_head) each, for
    incremental decoding. Self-attention appends the new position's keys and values at every
    step; a ``static`` cache (encoder–decoder attention) is filled once from the encoder's
    output and reused. :meth:`reorder` keeps the rows of the surviving hypotheses of a beam
    search."""

    def __init__(self, *, static: bool = False) -> None:
        self.static = static
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values (B, H, T_new, d_head); return all of them."""
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (a speculative decoder's rejected
        draft tokens)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        if self.k is not None:
            self.k, self.v = self.k[:, :, :length], self.v[:, :, :length]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (N,) of the batch, in that order (repeats allowed)."""
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, …, head_h) W^O (Vaswani et al. §3.2.2), with
    separate projections W^Q, W^K, W^V (d_model → d_model, split into ``n_heads`` heads of
    d_k = d_model / n_heads) and W^O. ``dropout`` drops attention weights while training."""

    def __init__(
        self, *, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.d_model, self.n_heads, self.dropout = d_model, n_heads, dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, -1).transpose(1, 2)  # (B, H, T, d_k)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: AttentionCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """query (B, T_q, d_model), key and value (B, T_k, d_model); ``mask`` broadcastable
        to (B, H, T_q, T_k), ``True`` = attend. With a cache, the keys and values join
        (self-attention) or are replaced by (static cache, once filled) the cached ones, and
        ``causal`` aligns the queries with the last keys. Returns the output
        (B, T_q, d_model) and, if ``need_weights``, the weights (B, H, T_q, T_k) from the
        written-out eq. 1 (else None, and the fused kernel runs)."""
        b, t_q, _ = query.shape
        q = self._heads(self.w_q(query))  # (B, H, T_q, d_k)
        if cache is not None and cache.static and cache.k is not None:
            k, v = cache.k, cache.v
        else:
            k, v = self._heads(self.w_k(key)), self._heads(self.w_v(value))  # (B, H, T_k, d_k)
            if cache is not None:
                k, v = cache.append(k, v)
        drop = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            y, weights = scaled_dot_product_attention(
                q, k, v, mask=mask, causal=causal, dropout_p=drop
            )
        elif causal and mask is None and t_q == k.shape[2]:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            full = _combined_mask(mask, causal, t_q, k.shape[2], q.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=full, dropout_p=drop)
        return self.w_o(y.transpose(1, 2).reshape(b, t_q, self.d_model)), weights


class AdditiveAttention(nn.Module):
    """Bahdanau et al.'s alignment model e_ij = vᵀ tanh(W s_{i−1} + U h_j) (Appendix A.1.2:
    W ∈ ℝ^{n'×n}, U ∈ ℝ^{n'×2n}, v ∈ ℝ^{n'}, no biases), the weights α_ij = softmax_j(e_ij)
    over the source positions and the context c_i = Σ_j α_ij h_j.

    ``query_dim`` is the decoder state's size n, ``key_dim`` the annotations' size (2n for a
    bidirectional encoder), ``attn_dim`` the hidden size n'. U h_j does not depend on the
    decoder step i, so :meth:`project_keys` computes it once per source sentence (as the
    paper's appendix suggests) and :meth:`forward` takes it."""

    def __init__(self, *, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, h: torch.Tensor) -> torch.Tensor:
        """U h_j: annotations (B, T, key_dim) → (B, T, attn_dim)."""
        return self.U(h)

    def forward(
        self,
        s: torch.Tensor,
        h: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        projected_keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """s: the previous decoder state s_{i−1} (B, query_dim); h: the annotations
        (B, T, key_dim); ``mask`` (B, T), ``True`` at real (non-padding) source positions;
        ``projected_keys``: :meth:`project_keys` of h, if already computed. Returns the
        context c_i (B, key_dim) and the weights α_i (B, T), zero at padding."""
        alpha = self.scores(s, h, mask=mask, projected_keys=projected_keys).softmax(dim=-1)
        return (alpha[:, :, None] * h).sum(dim=1), alpha  # (B, key_dim), (B, T)

    def scores(
        self,
        s: torch.Tensor,
        h: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        projected_keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The energies e_i (B, T) before the softmax, −inf at padding. A pointer network
        (Vinyals et al. 2015, eq. 3: u_j = vᵀ tanh(W1 e_j + W2 d_i)) takes these as its
        output logits over the input positions: W2 is ``W``, W1 is ``U``."""
        uh = self.project_keys(h) if projected_keys is None else projected_keys
        e = self.v(torch.tanh(self.W(s)[:, None, :] + uh)).squeeze(-1)  # (B, T)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        return e


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """PE (length, d_model): PE(pos, 2i) = sin(pos / 10000^(2i/d_model)) and
    PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)) (Vaswani et al. §3.5)."""
    if d_model % 2:
        raise ValueError(f"d_model must be even for sine/cosine pairs, got {d_model}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    angle = pos / 10000 ** (two_i / d_model)  # (L, d_model / 2)
    pe = torch.empty(length, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()
    return pe.float()


class PositionalEncoding(nn.Module):
    """x + PE[offset : offset + T] for x (B, T, d_model), positions up to ``max_len``; the
    ``offset`` is the number of tokens already decoded (incremental decoding). Vaswani et al.
    multiply the embeddings by √d_model and apply dropout to the sum (§3.4, §5.4): the
    caller's embedding layer does the first, ``dropout`` here the second."""

    def __init__(self, *, d_model: int, max_len: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(max_len, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        t = x.shape[1]
        if offset + t > self.pe.shape[0]:
            raise ValueError(f"positions up to {offset + t} exceed max_len {self.pe.shape[0]}")
        return self.drop(x + self.pe[offset : offset + t])
