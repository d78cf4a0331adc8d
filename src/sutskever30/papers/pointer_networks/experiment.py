"""Pointer networks on planar point sets (§4), two experiments, one module each in
``experiments/``.

``convex_hull``: the convex hull, trained on n = 5-10 points and tested on held-out sets of
n = 5-10 and of larger n (exact match and area coverage, the generalization curve).

``tsp``: the travelling-salesman problem on n = 5-10 (tour length against the Held–Karp
optimum).

Deviations from the paper (README: Deviations): 100k training sets instead of 1M, a
128-unit LSTM and Adam for minutes of CPU, trained on n = 5-10 instead of 5-50.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.pointer_networks.experiments import convex_hull, tsp

PAPER = Paper(
    slug="pointer_networks",
    title="Pointer Networks",
    authors="Oriol Vinyals, Meire Fortunato, Navdeep Jaitly",
    year=2015,
    arxiv="1506.03134",
    experiments=(convex_hull.EXPERIMENT, tsp.EXPERIMENT),
    bench=convex_hull.bench,
)
