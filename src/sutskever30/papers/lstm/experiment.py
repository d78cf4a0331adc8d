"""Olah's LSTM post, measured: the written-out cells equal PyTorch's, an LSTM carries a bit
across 100 steps where a tanh RNN cannot, and the gradient ‖∂h_T/∂x_t‖ shows why.

One module per experiment in ``experiments/``. Training uses PyTorch's fused
``nn.LSTM``/``nn.RNN`` (the ``equivalence`` experiment and the tests show that the
gate-by-gate cells in model.py compute the same function).
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.lstm.experiments import equivalence, long_range

PAPER = Paper(
    slug="lstm",
    title="Understanding LSTM Networks",
    authors="Christopher Olah",
    year=2015,
    arxiv="",
    experiments=(equivalence.EXPERIMENT, long_range.EXPERIMENT),
    bench=long_range.bench,
)
