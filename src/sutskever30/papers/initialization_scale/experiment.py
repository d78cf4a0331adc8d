"""Measuring the "sweet spot" of the initialization scale.

Four experiments, one module each in ``experiments/``: (a) activation std and gradient norm
per layer of 50-layer ReLU and tanh MLPs across gains, against the mean-field recursion;
(b) the trainability curve of a 20-layer ReLU MLP on MNIST from 0.25× to 2× He; (c) a
recurrent net's state norm over 100 steps against the spectral radius of its recurrent
matrix; (d) singular-value spectra of products of Gaussian and orthogonal matrices.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.initialization_scale.experiments import (
    mnist_depth,
    random_products,
    rnn_spectral_radius,
    signal_propagation,
)

PAPER = Paper(
    slug="initialization_scale",
    title="On the scale of random initialization (interview)",
    authors="Ilya Sutskever",
    year=2015,
    arxiv="",
    experiments=(
        signal_propagation.EXPERIMENT,
        mnist_depth.EXPERIMENT,
        rnn_spectral_radius.EXPERIMENT,
        random_products.EXPERIMENT,
    ),
    bench=mnist_depth.bench,
)
