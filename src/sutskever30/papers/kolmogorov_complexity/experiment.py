"""Kolmogorov complexity in practice (Shen, Uspensky & Vereshchagin's book, with the
estimators of Soler-Toscano et al. 2014, Zenil et al. 2018 and Cilibrasi & Vitányi 2005).

Three experiments, one module each in ``experiments/``: (a) ``compression``: random bytes
do not compress and the counting argument bounds how many strings a real compressor can
shorten; (b) ``ctm``: the coding theorem method on every (2,2) and (3,2) Turing machine,
its symmetries, and block decomposition for longer strings; (c) ``ncd``: the normalized
compression distance clusters real texts by source.
"""

from __future__ import annotations

from sutskever30.core.registry import Paper
from sutskever30.papers.kolmogorov_complexity.experiments import compression, ctm, ncd

PAPER = Paper(
    slug="kolmogorov_complexity",
    title="Kolmogorov Complexity and Algorithmic Randomness",
    authors="Shen, Uspensky, Vereshchagin",
    year=2017,
    arxiv="",
    experiments=(compression.EXPERIMENT, ctm.EXPERIMENT, ncd.EXPERIMENT),
)
