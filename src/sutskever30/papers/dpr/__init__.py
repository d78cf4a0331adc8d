"""dpr: Dense Passage Retrieval for Open-Domain Question Answering (Karpukhin et al. 2020).

The public API, which ``rag`` builds on: :class:`DualEncoder` (E_Q and E_P, separable),
:func:`in_batch_loss`, :func:`build_index` and :func:`search` (exact or FAISS inner-product
search), :func:`top_k_accuracy`, and :class:`BM25`.
"""

from sutskever30.papers.dpr.bm25 import BM25
from sutskever30.papers.dpr.model import (
    DualEncoder,
    EncoderConfig,
    Index,
    build_index,
    gold_hits,
    in_batch_loss,
    passage_text,
    search,
    top_k_accuracy,
)

__all__ = [
    "BM25",
    "DualEncoder",
    "EncoderConfig",
    "Index",
    "build_index",
    "gold_hits",
    "in_batch_loss",
    "passage_text",
    "search",
    "top_k_accuracy",
]
