"""Evaluating image classifiers trained with BatchNorm: top-1 error, and BatchNorm statistics
recomputed from training minibatches. Used by ``resnet`` and ``identity_mappings``."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    batches: int,
    *,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> nn.Module:
    """A copy of ``model`` in eval mode whose BatchNorm running mean and variance are the
    plain average of the batch statistics of the first ``batches`` minibatches of ``x``
    (train-mode forward, no augmentation): after a short run the running averages lag the
    weights. ``batches`` = 0 keeps the running averages. The model itself is left as it is."""
    net = copy.deepcopy(model)
    if batches:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches below
        net.train()
        device = next(net.parameters()).device
        for b in range(batches):
            xb = x[b * batch_size : (b + 1) * batch_size]
            net(xb.to(device, memory_format=memory_format))
    return net.eval()


@torch.no_grad()
def error_rate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    bs: int = 500,
    *,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """Top-1 error of ``model`` (put in eval mode) on images x (N, C, H, W), labels y (N,)."""
    model.eval()
    device = next(model.parameters()).device
    wrong = 0
    for i in range(0, len(x), bs):
        xb = x[i : i + bs].to(device, memory_format=memory_format)
        wrong += (model(xb).argmax(1).cpu() != y[i : i + bs]).sum().item()
    return wrong / len(x)
