"""AlexNet's claims, one module each in ``experiments/``: (a) Fig. 1, ReLU vs tanh, time to
25% CIFAR-10 training error with the learning rate chosen per activation; (b) dropout's
train − test gap; (c) LRN, overlapping pooling and augmentation taken out one at a time
(reported); (d) the 60,965,224-parameter network and its ImageNet-format pipeline.
"""

from __future__ import annotations

from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Paper
from sutskever30.core.run import Run
from sutskever30.papers.alexnet.experiments import ablations, dropout, imagenet, relu_tanh
from sutskever30.papers.alexnet.experiments.common import cifar_trainer, load_data


def bench(run: Run) -> list[BenchCase]:
    """The Fig. 1 networks' step (the first experiment's quick preset) and the CIFAR-sized
    AlexNet's augmented step (the ablations' quick preset)."""
    cases = relu_tanh.bench(run)
    cfg = ablations.QUICK
    data = load_data(10 * cfg.batch_size, 0, 1)
    model, opt, step = cifar_trainer(run, cfg, cfg.net(), data, augmented=True)
    cases.append(BenchCase("cifar_alexnet", model, opt, step, cfg.batch_size))
    return cases


PAPER = Paper(
    slug="alexnet",
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    authors="Krizhevsky, Sutskever, Hinton",
    year=2012,
    arxiv="",
    experiments=(
        relu_tanh.EXPERIMENT,
        dropout.EXPERIMENT,
        ablations.EXPERIMENT,
        imagenet.EXPERIMENT,
    ),
    bench=bench,
)
