"""Two experiments of "Order Matters", one module each in ``experiments/``.

``sorting`` (Table 1): sort N numbers drawn uniformly from [0, 1] with read–process–write
for several numbers P of process steps, and with the Ptr-Net; accuracy is the fraction of
test sets whose whole output permutation is right. Also measured on the trained models:
q*_P is invariant and the output distribution equivariant under a permutation of the set.

``input_order`` (§3's convex-hull example): the same Ptr-Net, the same budget and the same
sets of N points in the unit square, fed in random order or in a canonical order (by angle
around the set's centroid); the output is the convex hull (labels from
``scipy.spatial.ConvexHull``), counter-clockwise from the leftmost vertex, then "end".
A read–process–write model trained on random order is scored on both orders beside it.

Deviations from the paper (README: Deviations): CPU-sized models and budgets; no glimpse;
Adam; the convex-hull experiment at N = 8 instead of the Ptr-Net paper's 50.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.order_matters.experiments import input_order, sorting

PAPER = Paper(
    slug="order_matters",
    title="Order Matters: Sequence to sequence for sets",
    authors="Oriol Vinyals, Samy Bengio, Manjunath Kudlur",
    year=2016,
    arxiv="1511.06391",
    experiments=(sorting.EXPERIMENT, input_order.EXPERIMENT),
    bench=sorting.bench,
)
