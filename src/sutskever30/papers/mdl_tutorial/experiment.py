"""Grünwald's MDL tutorial, measured: exact NML complexity against Rissanen's asymptotics,
polynomial degree selection by two-part and prequential MDL against ML, AIC and BIC, and the
Markov order of real text by factorized NML and prequential codes.

One module per experiment in ``experiments/``; the codes themselves are in ``model.py``.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.mdl_tutorial.experiments import complexity, markov, polynomial

PAPER = Paper(
    slug="mdl_tutorial",
    title="A Tutorial Introduction to the Minimum Description Length Principle",
    authors="Peter Grünwald",
    year=2004,
    arxiv="math/0406077",
    experiments=(complexity.EXPERIMENT, polynomial.EXPERIMENT, markov.EXPERIMENT),
)
