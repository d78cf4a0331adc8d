"""What both double_descent experiments share: a noisy MNIST training subset, a clean
validation subset and the clean test split."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sutskever30.data.mnist import load_mnist
from sutskever30.papers.double_descent.model import flip_labels

CLASSES = 10
MNIST_TRAIN, MNIST_VAL, MNIST_TEST = 50_000, 10_000, 10_000


@dataclass(frozen=True)
class NoisyMnist:
    x_train: torch.Tensor  # (n, 784) pixels in [0, 1)
    y_train: torch.Tensor  # (n,) labels after the label noise: what the models fit
    y_clean: torch.Tensor  # (n,) the true labels of the same images
    flipped: torch.Tensor  # indices of the flipped training labels
    x_val: torch.Tensor  # (val_size, 784), clean labels: for choosing λ only
    y_val: torch.Tensor
    x_test: torch.Tensor  # (test_size, 784), clean labels: every reported test error
    y_test: torch.Tensor


def generator(seed: int, stream: int) -> torch.Generator:
    """Independent random streams of one seed (0: training subset, 1: label noise,
    2: features or initialization)."""
    return torch.Generator().manual_seed(seed * 1_000 + stream)


def noisy_mnist(*, n: int, noise: float, val_size: int, test_size: int, seed: int) -> NoisyMnist:
    """n training images drawn at random from MNIST's 50k training split (seed stream 0),
    ``noise`` of their labels flipped to another class (stream 1); the first ``val_size``
    images of the validation split and the first ``test_size`` of the test split, clean."""
    x, y = (torch.from_numpy(a) for a in load_mnist("train"))
    pick = torch.randperm(len(y), generator=generator(seed, 0))[:n]
    y_noisy, flipped = flip_labels(
        y[pick], fraction=noise, classes=CLASSES, generator=generator(seed, 1)
    )
    x_val, y_val = (torch.from_numpy(a[:val_size]) for a in load_mnist("val"))
    x_test, y_test = (torch.from_numpy(a[:test_size]) for a in load_mnist("test"))
    return NoisyMnist(x[pick], y_noisy, y[pick], flipped, x_val, y_val, x_test, y_test)
