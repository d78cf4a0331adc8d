"""The Transformer: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin,
"Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762; with the notes of Rush et al.'s
"The Annotated Transformer" (2018, 2022).

An encoder–decoder built from attention alone: no recurrence, no convolution. Each of the N
encoder layers is self-attention then a position-wise feed-forward network; each of the N
decoder layers is masked self-attention, attention over the encoder's output, then the
feed-forward network. Every sub-layer is wrapped as

    LayerNorm(x + Dropout(Sublayer(x)))        (post-norm, §3.1 and §5.4; the paper)
    x + Dropout(Sublayer(LayerNorm(x)))        (pre-norm, ``pre_norm=True``; a final
                                                LayerNorm ends each stack)

    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                                        (eq. 2)

Embeddings are multiplied by √d_model and summed with sinusoidal positional encodings
(§3.4–3.5, in :mod:`sutskever30.nn.attention`); the target embedding and the pre-softmax
projection share one matrix (§3.4). Training: label smoothing ε_ls = 0.1 (§5.4) and Adam
(β1 0.9, β2 0.98, ε 1e-9) with the schedule (eq. 3)

    lrate = d_model^−0.5 · min(step^−0.5, step · warmup_steps^−1.5)

scaled by a constant ``factor`` (the Annotated Transformer's; the paper's is 1).
Multi-head attention (eq. 1 and §3.2.2) lives in :mod:`sutskever30.nn.attention`, shared
with the other attention papers; incremental decoding keeps each layer's keys and values in
an :class:`~sutskever30.nn.attention.AttentionCache`.

Deviations from the paper:
- Separate source and target vocabularies (word level, no shared BPE), so only the target
  embedding is tied to the output projection (the paper ties all three).
- Label smoothing is PyTorch's: the target is (1 − ε)·one-hot + ε/V uniform over all V
  classes, padding positions skipped (the Annotated Transformer spreads ε over V − 2
  classes, leaving out padding and the true class).
- Dropout exactly where §5.4 puts it (each sub-layer's output, the embedding sums); none
  on the attention weights or inside the feed-forward network (tensor2tensor and the
  Annotated Transformer add both).
- ``positions=False`` removes the positional encodings (the ablation of the experiment); the
  paper always has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.attention import AttentionCache, MultiHeadAttention, PositionalEncoding


@dataclass(frozen=True)
class TransformerConfig:
    src_vocab: int
    tgt_vocab: int
    d_model: int = 512
    n_heads: int = 8  # h
    d_ff: int = 2048
    n_layers: int = 6  # N, in the encoder and in the decoder
    dropout: float = 0.1  # P_drop: on each sub-layer's output and on embedding + position
    max_len: int = 512  # positions the encodings cover
    pre_norm: bool = False
    positions: bool = True
    pad_id: int = 0

    def __post_init__(self) -> None:
        if min(self.src_vocab, self.tgt_vocab, self.d_model, self.n_heads, self.d_ff) < 1:
            raise ValueError("vocabularies, d_model, n_heads and d_ff must be >= 1")
        if self.n_layers < 1 or self.max_len < 1:
            raise ValueError("n_layers and max_len must be >= 1")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise ValueError(f"d_model {self.d_model} must be even and a multiple of n_heads")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (eq. 2), applied at each position."""

    def __init__(self, *, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.relu(self.w_1(x)))


class SublayerConnection(nn.Module):
    """The residual wrapper of every sub-layer: LayerNorm(x + Dropout(f(x))) post-norm, or
    x + Dropout(f(LayerNorm(x))) pre-norm."""

    def __init__(self, *, d_model: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.pre_norm:
            return x + self.drop(sublayer(self.norm(x)))
        return self.norm(x + self.drop(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention, then the feed-forward network (§3.1)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        kw = dict(d_model=cfg.d_model, dropout=cfg.dropout, pre_norm=cfg.pre_norm)
        self.self_attn = MultiHeadAttention(d_model=cfg.d_model, n_heads=cfg.n_heads)
        self.feed_forward = FeedForward(d_model=cfg.d_model, d_ff=cfg.d_ff)
        self.sub_attn = SublayerConnection(**kw)
        self.sub_ff = SublayerConnection(**kw)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T_x, d_model); src_mask (B, 1, 1, T_x), True at real tokens."""
        x = self.sub_attn(x, lambda h: self.self_attn(h, h, h, mask=src_mask)[0])
        return self.sub_ff(x, self.feed_forward)


class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the encoder's output, the feed-forward network
    (§3.1). The mask keeps position i from seeing positions after i."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        kw = dict(d_model=cfg.d_model, dropout=cfg.dropout, pre_norm=cfg.pre_norm)
        self.self_attn = MultiHeadAttention(d_model=cfg.d_model, n_heads=cfg.n_heads)
        self.cross_attn = MultiHeadAttention(d_model=cfg.d_model, n_heads=cfg.n_heads)
        self.feed_forward = FeedForward(d_model=cfg.d_model, d_ff=cfg.d_ff)
        self.sub_self = SublayerConnection(**kw)
        self.sub_cross = SublayerConnection(**kw)
        self.sub_ff = SublayerConnection(**kw)

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None,
        cache: tuple[AttentionCache, AttentionCache] | None = None,
    ) -> torch.Tensor:
        """y (B, T_y, d_model) (the new positions only, with a cache); memory (B, T_x,
        d_model); ``cache``: (self-attention, encoder–decoder attention) caches."""
        self_cache, cross_cache = cache if cache is not None else (None, None)
        y = self.sub_self(y, lambda h: self.self_attn(h, h, h, causal=True, cache=self_cache)[0])
        y = self.sub_cross(
            y,
            lambda h: self.cross_attn(h, memory, memory, mask=src_mask, cache=cross_cache)[0],
        )
        return self.sub_ff(y, self.feed_forward)


class Embedding(nn.Module):
    """Token embeddings × √d_model (§3.4), plus the positional encodings (§3.5) unless
    ``positions`` is off, then dropout (§5.4)."""

    def __init__(self, vocab: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.lut = nn.Embedding(vocab, cfg.d_model)
        self.scale = math.sqrt(cfg.d_model)
        self.positions = PositionalEncoding(
            d_model=cfg.d_model, max_len=cfg.max_len, dropout=cfg.dropout
        )
        self.use_positions = cfg.positions

    def forward(self, tokens: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        x = self.lut(tokens) * self.scale  # (B, T, d_model)
        if self.use_positions:
            return self.positions(x, offset=offset)
        return self.positions.drop(x)


class Transformer(nn.Module):
    """The encoder–decoder of Fig. 1. ``forward`` is teacher-forced decoding (logits of every
    target position at once); :meth:`encode` and :meth:`step` decode one token at a time
    with cached keys and values (``step`` is the :mod:`sutskever30.nn.search` interface)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_embed = Embedding(cfg.src_vocab, cfg)
        self.tgt_embed = Embedding(cfg.tgt_vocab, cfg)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        # A pre-norm stack's output is a sum of unnormalised residuals: one last LayerNorm.
        self.encoder_norm = nn.LayerNorm(cfg.d_model) if cfg.pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(cfg.d_model) if cfg.pre_norm else nn.Identity()
        self.generator = nn.Linear(cfg.d_model, cfg.tgt_vocab)
        for p in self.parameters():  # Glorot / fan-avg uniform, as the Annotated Transformer
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.generator.weight = self.tgt_embed.lut.weight  # shared matrix (§3.4)

    def src_mask(self, src: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, T_x): True at real source tokens (every head, every query)."""
        return (src != self.cfg.pad_id)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, T_x) token ids, padded with ``pad_id`` → memory (B, T_x, d_model) and the
        source mask."""
        mask = self.src_mask(src)
        x = self.src_embed(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor,
        caches: list[tuple[AttentionCache, AttentionCache]] | None = None,
    ) -> torch.Tensor:
        """tgt (B, T_y) decoder inputs (``<bos>`` y_1 …; only the new ones with caches) →
        logits (B, T_y, V_tgt)."""
        offset = 0 if caches is None else caches[0][0].length
        y = self.tgt_embed(tgt, offset=offset)
        for i, layer in enumerate(self.decoder):
            y = layer(y, memory, src_mask, None if caches is None else caches[i])
        return self.generator(self.decoder_norm(y))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(src)
        return self.decode(tgt, memory, mask)

    def start(self, src: torch.Tensor) -> dict:
        """The decoding state of ``src`` (B, T_x): its memory, mask and empty caches."""
        memory, mask = self.encode(src)
        caches = [(AttentionCache(), AttentionCache(static=True)) for _ in self.decoder]
        return {"memory": memory, "src_mask": mask, "caches": caches}

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """tokens (N,) the last token of each hypothesis → log p(next | source, prefix)
        (N, V_tgt); the caches grow by one position."""
        logits = self.decode(tokens[:, None], state["memory"], state["src_mask"], state["caches"])
        return logits[:, -1].log_softmax(dim=-1), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, *, pad_id: int, smoothing: float
) -> torch.Tensor:
    """Mean cross-entropy per real target token against (1 − ε)·one-hot + ε/V (§5.4);
    logits (B, T, V), target (B, T), ``pad_id`` positions skipped."""
    return F.cross_entropy(
        logits.flatten(0, 1), target.flatten(), ignore_index=pad_id, label_smoothing=smoothing
    )


def noam_lr(step: int, *, d_model: int, warmup: int, factor: float = 1.0) -> float:
    """eq. 3 at optimizer step ``step`` (from 1): d_model^−0.5 · min(step^−0.5,
    step · warmup^−1.5), times ``factor``. Linear warm-up, then inverse square root."""
    step = max(step, 1)
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def noam_optimizer(
    model: nn.Module, *, warmup: int, factor: float
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam (β1 0.9, β2 0.98, ε 1e-9) whose learning rate follows :func:`noam_lr`."""
    d_model = model.cfg.d_model
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9, foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: noam_lr(s + 1, d_model=d_model, warmup=warmup, factor=factor)
    )
    return opt, sched
