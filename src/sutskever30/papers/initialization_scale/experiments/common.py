"""What several initialization_scale experiments share: MNIST, standardized, and He's gain."""

from __future__ import annotations

import torch

from sutskever30.data.mnist import load_mnist
from sutskever30.papers.initialization_scale.model import DEFAULT_GAIN

HE = DEFAULT_GAIN["relu"]  # gain = scale · HE: "1× He" is scale 1


def mnist(train_size: int, test_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The first images of the train and test splits, standardized with the training set's
    pixel mean and std (one scalar each)."""
    x_train, y_train = load_mnist("train")
    mean, std = float(x_train.mean()), float(x_train.std())
    out = {}
    for split, (x, y), size in (
        ("train", (x_train, y_train), train_size),
        ("test", load_mnist("test"), test_size),
    ):
        out[split] = (torch.from_numpy(x[:size]) - mean) / std, torch.from_numpy(y[:size])
    return out
