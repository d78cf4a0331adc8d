"""A GPT-2-style decoder-only Transformer, shared by ``gpt2_sampling``, ``scaling_laws``,
``multi_token_prediction`` and ``gpipe``.

Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2), on top
of Radford et al. 2018 (GPT) and Vaswani et al. 2017:

    h_0 = W_e[x] + W_p[positions]                     token and learned position embeddings
    h_l = h' + MLP(LN(h')),  h' = h_{l-1} + Attn(LN(h_{l-1}))      pre-norm blocks (GPT-2 §2.3)
    p(x_{t+1} | x_{≤t}) = softmax(LN(h_L) W_eᵀ)       the head tied to the token embedding

Attention is causal multi-head attention through ``F.scaled_dot_product_attention`` (the
fused kernel); the MLP is 4× wide with GELU (tanh form, as GPT-2). Initialization as GPT-2:
N(0, 0.02) everywhere, the residual projections scaled by 1/√(2L) (§2.3: "we scale the
weights of residual layers at initialization by 1/√N").

Also here: a KV cache for incremental decoding (:class:`KVCache`), generation with the
samplers of :mod:`sutskever30.nn.sampling`, the FLOP count per token of Kaplan et al. 2020
(Table 1: C_forward ≈ 2N + 2 n_layer n_ctx d_model, N the non-embedding parameters) and
:meth:`GPT.sequential`, the same network as an ``nn.Sequential`` for pipelining.

Deviations from GPT-2: sizes are configurable (GPT-2 small is n_layer 12, n_head 12,
d_model 768, context 1024, 50,257 BPE tokens); dropout defaults to 0 (short runs on small
data are not regularization-bound; set it per experiment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.attention import AttentionCache
from sutskever30.nn.sampling import draw


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    context: int = 64  # n_ctx: the longest sequence the learned positions cover
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    tie_weights: bool = True  # the head's weight is the token embedding W_e

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.context, self.n_layer, self.n_head, self.d_model) < 1:
            raise ValueError("vocab_size, context, n_layer, n_head and d_model must be ≥ 1")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_head {self.n_head}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def non_embedding_params(self) -> int:
        """Kaplan et al.'s N: every parameter but the token and position embeddings (and the
        head, which is the token embedding when tied): per block 12 d² weights plus biases
        and layer norms, and the final layer norm."""
        d = self.d_model
        block = (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + 4 * d
        return self.n_layer * block + 2 * d

    def flops_per_token(self, *, training: bool = True) -> float:
        """Kaplan et al. 2020, Table 1: a forward pass costs 2N + 2 n_layer n_ctx d_model per
        token: a multiply-add per weight, and the attention scores and their weighted sum
        over a full context, each halved by the causal mask. Training is three times that
        (the backward pass costs twice the forward). Embeddings and the head are left out,
        as the paper does."""
        forward = 2 * self.non_embedding_params + 2 * self.n_layer * self.context * self.d_model
        return 3 * forward if training else forward


class KVCache:
    """The keys and values of every layer for the tokens decoded so far: one
    :class:`~sutskever30.nn.attention.AttentionCache` per layer, (B, n_head, T, d_head)
    each. ``length`` is T, the position of the next token."""

    def __init__(self, n_layer: int) -> None:
        self.layers = [AttentionCache() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def truncate(self, length: int) -> None:
        """Forget every token from position ``length`` on (rejected draft tokens). Layers
        that hold nothing (a model may leave some to caches of its own) stay empty."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} tokens to {length}")
        for cache in self.layers:
            if cache.length:
                cache.truncate(length)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store this layer's new keys/values (B, H, T_new, d_head); return all of them."""
        return self.layers[layer].append(k, v)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.n_head, self.layer, self.dropout = cfg.n_head, layer, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)  # W_Q, W_K, W_V fused
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)  # W_O, a residual projection

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, d // self.n_head).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, H, T, d_head)
        if cache is not None:
            k, v = cache.append(self.layer, k, v)  # (B, H, past + T, d_head)
        past = k.shape[2] - t
        drop = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:  # new token i (at position past + i) sees positions ≤ past + i
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)), then + MLP(LN(·))."""

    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * cfg.d_model, cfg.d_model),  # a residual projection
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_1(x), cache))
        return x + self.drop(self.mlp(self.ln_2(x)))


class Embedding(nn.Module):
    """h_0 = W_e[x] + W_p[past … past + T − 1]. idx (B, T) → (B, T, d)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, idx: torch.Tensor, past: int = 0) -> torch.Tensor:
        pos = torch.arange(past, past + idx.shape[1], device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))


class Head(nn.Module):
    """LN(h_L) W_eᵀ: (B, T, d) → logits (B, T, V)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.ln_f(h))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = Embedding(cfg)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.head = Head(cfg)
        if cfg.tie_weights:
            self.head.out.weight = self.embed.wte.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) → logits (B, T, V). With a cache, idx continues the cached tokens."""
        past = 0 if cache is None else cache.length
        if past + idx.shape[1] > self.cfg.context:
            raise ValueError(
                f"{past + idx.shape[1]} tokens exceed the context of {self.cfg.context}"
            )
        return self.head(self.hidden(idx, cache))

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The last block's output h_L (B, T, d), before the final layer norm."""
        h = self.embed(idx, 0 if cache is None else cache.length)
        for block in self.blocks:
            h = block(h, cache)
        return h

    def sequential(self) -> nn.Sequential:
        """The same network (same parameters) as embedding, blocks, head in a row."""
        return nn.Sequential(self.embed, *self.blocks, self.head)

    def num_params(self) -> int:
        """All distinct parameters (a tied head counted once)."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        steps: int,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continue each row of ``prompt`` (B, T ≥ 1) by ``steps`` drawn tokens, one forward
        of one token per step through the KV cache. When the context is full, the cache is
        rebuilt from the last context tokens (a sliding window). Returns the new tokens
        (B, steps) and their log-probabilities under the model's own (unfiltered, τ = 1)
        distribution (B, steps), what best-of-n ranks by."""
        if prompt.ndim != 2 or prompt.shape[1] < 1 or steps < 0:
            raise ValueError("prompt must be (B, T ≥ 1) token ids and steps ≥ 0")
        was_training = self.training
        self.eval()
        n = self.cfg.context
        seq = prompt[:, -n:]
        cache = KVCache(self.cfg.n_layer)
        logits = self(seq, cache)[:, -1]  # (B, V)
        out, logp = [], []
        for _ in range(steps):
            token = draw(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            logp.append(logits.log_softmax(-1).gather(-1, token[:, None])[:, 0])
            out.append(token)
            seq = torch.cat([seq, token[:, None]], dim=1)
            if cache.length == n:  # full: re-read the last n tokens from scratch
                seq = seq[:, -n:]
                cache = KVCache(self.cfg.n_layer)
                logits = self(seq, cache)[:, -1]
            else:
                logits = self(token[:, None], cache)[:, -1]
        self.train(was_training)
        if not out:
            empty = prompt.new_zeros(prompt.shape[0], 0)
            return empty, empty.float()
        return torch.stack(out, 1), torch.stack(logp, 1).float()
