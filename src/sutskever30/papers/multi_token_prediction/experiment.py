"""Multi-token prediction, measured on the Python standard library's source: the memory-
efficient head backward (same gradients, lower peak), self-speculative decoding (the greedy
output, several tokens per forward, faster), and n = 1 vs n = 4 at two sizes.

One module per experiment in ``experiments/``; the model and its decoders in model.py.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.multi_token_prediction.experiments import memory, sizes, speculative

PAPER = Paper(
    slug="multi_token_prediction",
    title="Better & Faster Large Language Models via Multi-token Prediction",
    authors="Gloeckle, Youbi Idrissi, Rozière, Lopez-Paz, Synnaeve",
    year=2024,
    arxiv="2404.19737",
    experiments=(memory.EXPERIMENT, speculative.EXPERIMENT, sizes.EXPERIMENT),
    bench=speculative.bench,
)
