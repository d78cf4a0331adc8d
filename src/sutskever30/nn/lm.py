"""Training a GPT language model: the pieces the scale papers share (``gpt2_sampling``,
``scaling_laws``, ``multi_token_prediction``).

- ``windows``: a batch of consecutive token windows, cut from the token stream by one
  gather (no Python loop over the batch).
- ``warmup_cosine``: linear warmup, then a half cosine down to a floor: GPT-2/nanoGPT decay to
  a tenth of the peak rate, Kaplan et al. (2020, App. D.1) to zero.
- ``adamw``: AdamW with weight decay on the weight matrices and embeddings only, not on
  biases and layer-norm gains (the GPT-2/nanoGPT convention; Loshchilov & Hutter 2019's
  decoupled decay).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def windows(data: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """data[s : s + length] for every start s of ``starts`` (B,): (B, length), one gather."""
    return data[starts[:, None] + torch.arange(length)]


def warmup_cosine(step: int, *, steps: int, warmup: int, min_frac: float = 0.0) -> float:
    """The learning-rate multiplier at ``step``: (step + 1) / warmup during the warmup, then
    a cosine from 1 down to ``min_frac`` at ``steps`` (and ``min_frac`` after it)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def adamw(
    model: nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.AdamW:
    """AdamW decaying the parameters of two or more dimensions only (a tied embedding is one
    parameter, held once), fused into one kernel per step."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
