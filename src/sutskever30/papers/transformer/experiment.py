"""Measuring the Transformer.

Three experiments, one module each in ``experiments/``: (a) ``copy``, the Annotated
Transformer's copy task, solved exactly with cached greedy decoding; (b) ``reversal``, the
positional-encoding ablation on an order-sensitive task; (c) ``translate``, Multi30k
German → English against ``bahdanau_attention``'s RNNsearch at equal training time.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.transformer.experiments import copy, reversal, translate
from sutskever30.papers.transformer.sample import sample_command

PAPER = Paper(
    slug="transformer",
    title="Attention Is All You Need",
    authors="Ashish Vaswani, Noam Shazeer, Niki Parmar, Jakob Uszkoreit, Llion Jones, "
    "Aidan N. Gomez, Łukasz Kaiser, Illia Polosukhin",
    year=2017,
    arxiv="1706.03762",
    experiments=(copy.EXPERIMENT, reversal.EXPERIMENT, translate.EXPERIMENT),
    bench=translate.bench,
    sample=sample_command,
)
