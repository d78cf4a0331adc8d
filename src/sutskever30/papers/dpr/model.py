"""Dense Passage Retrieval for Open-Domain Question Answering.

Karpukhin, Oğuz, Min, Lewis, Wu, Edunov, Chen, Yih, 2020. arXiv:2004.04906.

The idea: retrieve passages by the inner product of two learned encoders, trained only on
question–passage pairs, and beat BM25 (§3):

    sim(q, p) = E_Q(q)ᵀ E_P(p)                                                     (eq. 1)
    L(q_i, p_i⁺, p_{i,1}⁻, …, p_{i,n}⁻)
        = −log e^{sim(q_i, p_i⁺)} / (e^{sim(q_i, p_i⁺)} + Σ_j e^{sim(q_i, p_{i,j}⁻)})  (eq. 2)

with **in-batch negatives** (§3.2): in a batch of B questions, S = Q Pᵀ (B × B) scores each
question against every positive of the batch, the other questions' positives being its
negatives; one **BM25 hard negative** per question (the top BM25 passage that is not its
gold passage) adds B more columns, S = Q [P; P⁻]ᵀ (B × 2B), and the loss is the cross
entropy of the diagonal. Retrieval is maximum inner product search over an index of E_P of
every passage (exact here, FAISS ``IndexFlatIP`` when installed, §3.1), scored by top-k
retrieval accuracy (§5.1): the fraction of questions with a relevant passage in the top k.

The two encoders are separate modules (:class:`DualEncoder` holds ``question`` and
``passage``): RAG (Lewis et al. 2020) keeps E_P and its index fixed and fine-tunes E_Q alone.

Deviations from the paper (README: Deviations):
- E_Q and E_P are all-MiniLM-L6-v2 (6 layers, width 384, 22.6M parameters each, already
  trained for sentence similarity), not BERT-base (110M); any BERT checkpoint folder loads.
- The representation is MiniLM's own, the mean of the token vectors over the mask, L2-normalized,
  not the [CLS] vector; sim is then a cosine, multiplied by a fixed ``scale`` (a softmax
  temperature 1/scale) so that the softmax of eq. 2 can be sharp (the paper's raw [CLS] dot
  products are unbounded).
- A passage enters E_P as ``title [SEP] text`` in one segment (the paper: title and text as
  a segment pair).
- Two questions of a batch sharing a gold passage, or a hard negative that is another
  question's gold, would be labelled negatives of each other: such columns are masked out of
  that row's softmax (NQ's batches rarely have them; generated question sets can).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.bert import SentenceEncoder, load_encoder, load_minilm

SEP = " [SEP] "


def passage_text(title: str, text: str) -> str:
    """What E_P reads: the article title, [SEP], the passage."""
    return f"{title}{SEP}{text}"


@dataclass(frozen=True)
class EncoderConfig:
    q_max_length: int = 64  # question tokens
    p_max_length: int = 256  # passage tokens (the paper's 256)
    scale: float = 20.0  # sim = scale · cos(E_Q(q), E_P(p)); softmax temperature 1 / scale
    bf16: bool = True  # matmuls under bfloat16 autocast (training and encoding)
    dropout: float = 0.1  # on embeddings and residual branches in training (the paper's 0.1)
    attn_dropout: float = 0.0  # on attention weights (BERT's 0.1; on CPU it costs ~10× a step)

    def __post_init__(self) -> None:
        if self.q_max_length < 3 or self.p_max_length < 3:
            raise ValueError("max lengths must leave room for [CLS] and [SEP]")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


class DualEncoder(nn.Module):
    """E_Q and E_P: two sentence encoders with their own weights (eq. 1)."""

    def __init__(
        self, question: SentenceEncoder, passage: SentenceEncoder, cfg: EncoderConfig
    ) -> None:
        super().__init__()
        self.question = question
        self.passage = passage
        self.cfg = cfg

    @classmethod
    def from_pretrained(
        cls, cfg: EncoderConfig = EncoderConfig(), folder: str | Path | None = None
    ) -> DualEncoder:
        """Both encoders initialized from the same checkpoint: all-MiniLM-L6-v2 by default,
        or the BERT checkpoint in ``folder`` (weights, config.json, tokenizer.json)."""
        drop = {"dropout": cfg.dropout, "attn_dropout": cfg.attn_dropout}
        enc = load_minilm(**drop) if not folder else load_encoder(Path(folder), **drop)
        return cls(enc, copy.deepcopy(enc), cfg)

    def autocast(self):
        """bfloat16 autocast on the encoders' device when ``cfg.bf16``, else nothing."""
        device = next(self.parameters()).device
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def embed_questions(self, questions: Sequence[str]) -> torch.Tensor:
        """E_Q of a batch with gradients (B, C)."""
        device = next(self.question.parameters()).device
        ids, mask = self.question.tokenize(list(questions), self.cfg.q_max_length, device)
        return self.question(ids, mask).float()

    def embed_passages(self, passages: Sequence[str]) -> torch.Tensor:
        """E_P of a batch of :func:`passage_text` strings with gradients (B, C)."""
        device = next(self.passage.parameters()).device
        ids, mask = self.passage.tokenize(list(passages), self.cfg.p_max_length, device)
        return self.passage(ids, mask).float()

    def encode_questions(self, questions: Sequence[str], batch_size: int = 64, progress=None):
        """E_Q of many questions, no gradients (N, C)."""
        return self.question.encode(
            list(questions),
            max_length=self.cfg.q_max_length,
            batch_size=batch_size,
            bf16=self.cfg.bf16,
            progress=progress,
        )

    def encode_passages(self, passages: Sequence[str], batch_size: int = 32, progress=None):
        """E_P of many :func:`passage_text` strings, no gradients (N, C): the index's rows."""
        return self.passage.encode(
            list(passages),
            max_length=self.cfg.p_max_length,
            batch_size=batch_size,
            bf16=self.cfg.bf16,
            progress=progress,
        )


# -- the training objective ------------------------------------------------------------------


def similarity_logits(
    q: torch.Tensor, positives: torch.Tensor, hard: torch.Tensor | None = None
) -> torch.Tensor:
    """S = Q [P; P⁻]ᵀ: each question (B, C) against the batch's positives (B, C) and its
    hard negatives (B_h, C) → (B, B + B_h); column i is question i's positive."""
    candidates = positives if hard is None else torch.cat([positives, hard])  # (B + B_h, C)
    return q @ candidates.T


def false_negative_mask(gold: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(B, B + B_h) bool, True where candidate j is question i's own gold passage but not
    its positive column i: a duplicate that must not count as a negative."""
    same = gold[:, None] == candidates[None, :]
    same[torch.arange(len(gold)), torch.arange(len(gold))] = False
    return same


def in_batch_loss(
    q: torch.Tensor,
    positives: torch.Tensor,
    hard: torch.Tensor | None = None,
    *,
    scale: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 2 over in-batch negatives (+ hard negatives): the mean over the B questions of the
    NLL of the positive among all B + B_h candidates; ``mask`` True drops a column from a
    row's softmax (:func:`false_negative_mask`)."""
    logits = scale * similarity_logits(q, positives, hard)  # (B, B + B_h)
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(q), device=q.device))


# -- the index -------------------------------------------------------------------------------


@dataclass
class Index:
    """Passage vectors (N, C) float32 and their ids (N,); ``faiss`` is an IndexFlatIP over
    the same vectors when built with ``backend="faiss"``."""

    vectors: torch.Tensor
    ids: torch.Tensor
    backend: Literal["exact", "faiss"] = "exact"
    faiss: object | None = None

    def __len__(self) -> int:
        return len(self.ids)


def has_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def build_index(
    vectors: torch.Tensor,
    ids: Sequence[int] | torch.Tensor | None = None,
    *,
    backend: Literal["exact", "faiss"] = "exact",
) -> Index:
    """An inner-product index over passage vectors (N, C); ``ids`` default to 0…N−1.
    ``backend="faiss"`` needs ``faiss`` (``pip install faiss-cpu``)."""
    vectors = vectors.detach().float().cpu().contiguous()
    ids = torch.arange(len(vectors)) if ids is None else torch.as_tensor(ids, dtype=torch.long)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    index = Index(vectors, ids, backend)
    if backend == "faiss":
        if not has_faiss():
            raise ModuleNotFoundError("backend='faiss' needs faiss: pip install faiss-cpu")
        import faiss

        index.faiss = faiss.IndexFlatIP(vectors.shape[1])
        index.faiss.add(vectors.numpy())
    elif backend != "exact":
        raise ValueError(f"backend must be 'exact' or 'faiss', not {backend!r}")
    return index


def search(
    index: Index, queries: torch.Tensor, k: int, *, chunk: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` passages of highest inner product for each query vector (Q, C): scores and
    passage ids (Q, k), best first. The exact search runs over ``chunk`` passages at a time,
    keeping a running top-k, so memory is Q × (chunk + k) whatever the index size."""
    queries = queries.detach().float().cpu().contiguous()
    k = min(k, len(index))
    if index.faiss is not None:
        scores, rows = index.faiss.search(queries.numpy(), k)
        return torch.from_numpy(scores), index.ids[torch.from_numpy(rows)]
    best_s = torch.full((len(queries), 0), float("-inf"))
    best_r = torch.zeros((len(queries), 0), dtype=torch.long)
    for start in range(0, len(index), chunk):
        s = queries @ index.vectors[start : start + chunk].T  # (Q, chunk)
        top = s.topk(min(k, s.shape[1]))
        best_s = torch.cat([best_s, top.values], 1)
        best_r = torch.cat([best_r, top.indices + start], 1)
        keep = best_s.topk(min(k, best_s.shape[1]))
        best_s, best_r = keep.values, best_r.gather(1, keep.indices)
    return best_s, index.ids[best_r]


# -- top-k retrieval accuracy ----------------------------------------------------------------


def gold_hits(ranked: torch.Tensor, gold: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """(Q, K) bool: ranked passage j of question i is its gold passage."""
    return ranked == torch.as_tensor(gold, dtype=ranked.dtype)[:, None]


def top_k_accuracy(hits: torch.Tensor) -> torch.Tensor:
    """From (Q, K) bool hits (ranked passage j of question i is relevant) → (K,): entry k−1
    is the fraction of questions with a relevant passage among their top k (§5.1)."""
    return (hits.cumsum(1) > 0).float().mean(0)
