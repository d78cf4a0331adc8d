"""What both identity_mappings experiments share: CIFAR-10 as the paper feeds it (per-pixel
mean subtracted, Sec. 4 of ResNet). Its augmentation is ``data.cifar10.pad_crop_flip``, the
evaluation ``nn.classifier``, as in ``resnet``."""

from __future__ import annotations

import numpy as np
import torch

from sutskever30.data.cifar10 import load_cifar10


def _images(x: np.ndarray) -> torch.Tensor:
    """Pixels (N, 32, 32, 3) in 0 … 255 → float (N, 3, 32, 32) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(255)


def cifar(
    train_size: int, val_size: int, test_size: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(images (N, 3, 32, 32), labels (N,)) for train (the first ``train_size`` training
    images), val (the last ``val_size``, never trained on) and test (the first
    ``test_size``), minus the per-pixel mean of the train images. The loader's order is a
    fixed shuffle, so every prefix holds all classes."""
    x, y = load_cifar10("train")
    if train_size < 1 or val_size < 0 or train_size + val_size > len(x):
        raise ValueError(f"need train_size ≥ 1, val_size ≥ 0, their sum ≤ {len(x)}")
    x_test, y_test = load_cifar10("test")
    mean = _images(x[:train_size].mean(axis=0, dtype=np.float64, keepdims=True))  # (1, 3, 32, 32)
    split = {
        "train": (x[:train_size], y[:train_size]),
        "val": (x[len(x) - val_size :], y[len(x) - val_size :]),
        "test": (x_test[:test_size], y_test[:test_size]),
    }
    return {k: (_images(im) - mean, torch.from_numpy(lab)) for k, (im, lab) in split.items()}
