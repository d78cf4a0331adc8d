"""CS231n's assignments as experiments: gradient checks of every layer, kNN with k by
cross-validation, and kNN vs a two-layer net vs a small convnet on CIFAR-10 (one module
each in ``experiments/``)."""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.cs231n.experiments import gradcheck, knn, nets

PAPER = Paper(
    slug="cs231n",
    title="CS231n: Convolutional Neural Networks for Visual Recognition (course notes)",
    authors="Karpathy, Johnson, Fei-Fei",
    year=2016,
    arxiv="",
    experiments=(gradcheck.EXPERIMENT, knn.EXPERIMENT, nets.EXPERIMENT),
)
