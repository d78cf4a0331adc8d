"""Double descent: the test error of least-squares fits and of networks against their number
of parameters, through the interpolation threshold.

Two experiments, one module each in ``experiments/``: (a) minimum-norm random-features
regression on noisy MNIST from p = 0.1n to 10n features, with ridge as the control (the
claims); (b) two-layer networks of growing width on the same kind of data (reported).
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.double_descent.experiments import model_wise, random_features

PAPER = Paper(
    slug="double_descent",
    title="Reconciling modern machine-learning practice and the classical bias–variance "
    "trade-off; Deep Double Descent",
    authors="Belkin, Hsu, Ma, Mandal; Nakkiran, Kaplun, Bansal, Yang, Barak, Sutskever",
    year=2019,
    arxiv="1812.11118",
    experiments=(random_features.EXPERIMENT, model_wise.EXPERIMENT),
    bench=model_wise.bench,
)
