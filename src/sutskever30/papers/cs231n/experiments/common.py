"""CIFAR-10 as the assignments use it: a training subset, a validation split taken from the
remaining training images, and a test subset, as float64 NumPy arrays."""

from __future__ import annotations

import numpy as np

from sutskever30.data.cifar10 import load_cifar10


def cifar_subsets(num_train: int, num_val: int, num_test: int) -> dict[str, np.ndarray]:
    """``X_train`` = training images ``[0, num_train)``, ``X_val`` = the next ``num_val``
    (never trained on), ``X_test`` = the first ``num_test`` test images; pixels 0–255 as
    float64 (N, 32, 32, 3). The loader's order is a fixed shuffle, so every prefix holds
    all ten classes."""
    x, y = load_cifar10("train")
    x_test, y_test = load_cifar10("test")
    val = slice(num_train, num_train + num_val)
    return {
        "X_train": x[:num_train].astype(np.float64),
        "y_train": y[:num_train],
        "X_val": x[val].astype(np.float64),
        "y_val": y[val],
        "X_test": x_test[:num_test].astype(np.float64),
        "y_test": y_test[:num_test],
    }


def preprocess(data: dict[str, np.ndarray], dtype=np.float32) -> dict[str, np.ndarray]:
    """For the networks: subtract the training subset's mean image, divide by its pixel
    std (one scalar), and move channels first: (N, 3, 32, 32)."""
    mean = data["X_train"].mean(axis=0)
    std = float((data["X_train"] - mean).std())
    out = dict(data)
    for split in ("X_train", "X_val", "X_test"):
        x = (data[split] - mean) / std
        out[split] = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=dtype)
    return out
