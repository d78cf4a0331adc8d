"""What both identity_mappings experiments share: CIFAR-10 as the paper feeds it (per-pixel
mean subtracted, Sec. 4 of ResNet), its augmentation, and evaluation."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """4-pixel zero pad, random 32×32 crop, random horizontal flip. x: (B, 3, 32, 32)."""
    b = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))  # (B, 3, 40, 40)
    dy = torch.randint(0, 9, (b,), generator=gen)
    dx = torch.randint(0, 9, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(32))[:, None, :, None]  # (B, 1, 32, 1)
    cols = (dx[:, None] + torch.arange(32))[:, None, None, :]  # (B, 1, 1, 32)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    return padded[
        torch.arange(b)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols
    ]


@torch.no_grad()
def recalibrated(model: nn.Module, x: torch.Tensor, batch_size: int, batches: int) -> nn.Module:
    """A copy of ``model`` in eval mode whose BatchNorm statistics are the plain average of
    ``batches`` training minibatches' statistics (after a short run the running averages
    lag the weights); ``batches`` = 0 keeps the running averages."""
    net = copy.deepcopy(model)
    if batches:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        net.train()
        device = next(net.parameters()).device
        for b in range(batches):
            net(x[b * batch_size : (b + 1) * batch_size].to(device))
    return net.eval()


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> float:
    model.eval()
    device = next(model.parameters()).device
    wrong = sum(
        (model(x[i : i + bs].to(device)).argmax(1).cpu() != y[i : i + bs]).sum().item()
        for i in range(0, len(x), bs)
    )
    return wrong / len(x)
