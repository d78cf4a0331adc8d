"""Identity Mappings in Deep Residual Networks (He, Zhang, Ren, Sun 2016).

Two experiments, one module each in ``experiments/``: (a) the gradient ratio
‖∂L/∂x_0‖/‖∂L/∂x_L‖ at initialization through 100 Residual Units of every ordering (Fig. 4)
and shortcut (Fig. 2); (b) deep CIFAR-10 ResNets trained with the full pre-activation, the
original and the λ = 0.5 scaled-shortcut unit, same recipe and budget.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.identity_mappings.experiments import deep_training, gradient_flow

PAPER = Paper(
    slug="identity_mappings",
    title="Identity Mappings in Deep Residual Networks",
    authors="He, Zhang, Ren, Sun",
    year=2016,
    arxiv="1603.05027",
    experiments=(gradient_flow.EXPERIMENT, deep_training.EXPERIMENT),
    bench=deep_training.bench,
)
