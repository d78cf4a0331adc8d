"""Training byte-level multi-token models on the Python standard library's source: batches,
the training step (the memory-efficient backward of model.py), held-out losses.

Used by the ``speculative`` and ``sizes`` experiments and by ``s30 bench``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from sutskever30.core.run import Run
from sutskever30.core.train import fit, step_generator
from sutskever30.data.python_source import VOCAB_SIZE, load_python_source
from sutskever30.nn.lm import adamw, warmup_cosine, windows
from sutskever30.papers.multi_token_prediction.model import (
    MTPConfig,
    MultiTokenGPT,
    head_loss,
    sequential_backward,
    split_window,
)


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with linear warm-up and cosine decay to ``final_lr_fraction``; random windows
    of T + n bytes (T = ``context``) from the training files."""

    steps: int = 600
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 30
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    clip: float = 1.0
    val_windows: int = 64  # held-out windows of the validation files, fixed
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.val_windows) < 1:
            raise ValueError("steps, batch_size and val_windows must be ≥ 1")
        if not self.lr > 0 or self.warmup < 0 or not 0 <= self.final_lr_fraction <= 1:
            raise ValueError("need lr > 0, warmup ≥ 0 and final_lr_fraction in [0, 1]")
        if self.weight_decay < 0 or not self.clip > 0:
            raise ValueError("weight_decay must be ≥ 0 and clip > 0")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be ≥ 0")


def load_corpus() -> dict[str, torch.Tensor]:
    """{train, val, test}: the corpus's bytes as int64 token tensors (vocabulary 256)."""
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in load_python_source().items()}


def train_window(data: torch.Tensor, seed: int, step: int, batch: int, length: int):
    """The ``step``-th training batch: ``batch`` random windows, a function of (seed, step)."""
    g = step_generator(seed, step)
    return windows(data, torch.randint(0, len(data) - length, (batch,), generator=g), length)


def held_out(data: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """``count`` windows evenly spaced over a held-out split: (count, length)."""
    starts = torch.linspace(0, len(data) - length - 1, count).long()
    return windows(data, starts, length)


@torch.no_grad()
def head_scores(model: MultiTokenGPT, val: torch.Tensor, chunk: int = 16) -> dict[str, list]:
    """Each head's mean cross-entropy (nats/byte) and top-1 accuracy on held-out windows
    (N, T + n): head i predicts x_{t+i+1}."""
    was_training = model.training
    model.eval()
    n = model.cfg.n_future
    loss, acc = torch.zeros(n), torch.zeros(n)
    for part in val.split(chunk):
        x, targets = split_window(part, n)
        logits = model(x)  # (n, B, T, V)
        for i, y in enumerate(targets):
            loss[i] += head_loss(logits[i], y) * len(part)
            acc[i] += (logits[i].argmax(-1) == y).float().mean() * len(part)
    model.train(was_training)
    return {"loss": (loss / len(val)).tolist(), "acc": (acc / len(val)).tolist()}


def batches(model_cfg: MTPConfig, cfg: TrainConfig, train: torch.Tensor, seed: int, lookahead: int):
    """``batch(i)``: the i-th training batch (B, T + n), random windows of T + ``lookahead``
    bytes (at least T + n) cut to T + n, so that models with different n given the same
    lookahead train on the same bytes."""
    length = model_cfg.context + max(lookahead, model_cfg.n_future)
    keep = model_cfg.context + model_cfg.n_future

    def batch(i: int) -> torch.Tensor:
        return train_window(train, seed, i, cfg.batch_size, length)[:, :keep]

    return batch


def trainer(
    run: Run,
    model_cfg: MTPConfig,
    cfg: TrainConfig,
    train: torch.Tensor,
    seed: int,
    lookahead: int = 0,
):
    """The model, AdamW, its schedule and ``step(i)``: one update on the i-th batch with the
    paper's memory-efficient backward (what ``fit`` runs and ``s30 bench`` times), on the
    batches of :func:`batches`."""
    torch.manual_seed(seed)
    model = MultiTokenGPT(model_cfg).to(run.device)
    opt = adamw(model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    schedule = partial(
        warmup_cosine, steps=cfg.steps, warmup=cfg.warmup, min_frac=cfg.final_lr_fraction
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    batch = batches(model_cfg, cfg, train, seed, lookahead)

    def step(i: int) -> dict[str, float]:
        window = batch(i).to(run.device)
        opt.zero_grad(set_to_none=True)
        losses = sequential_backward(model, window)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return {"loss": sum(losses), "next_token_loss": losses[0]}

    return model, opt, sched, step


def train_model(
    run: Run,
    key: str,
    model_cfg: MTPConfig,
    cfg: TrainConfig,
    data: dict[str, torch.Tensor],
    seed: int,
    lookahead: int = 0,
) -> tuple[MultiTokenGPT, list[dict[str, float]], dict[str, list]]:
    """Train one model through ``fit``; return it, its history and its scores on held-out
    windows (the same bytes for every model given the same ``lookahead``)."""
    if model_cfg.vocab_size != VOCAB_SIZE:
        raise ValueError(f"byte-level models need vocab_size {VOCAB_SIZE}")
    model, opt, sched, step = trainer(run, model_cfg, cfg, data["train"], seed, lookahead)
    keep = model_cfg.context + model_cfg.n_future
    length = model_cfg.context + max(lookahead, model_cfg.n_future)
    val = held_out(data["val"], cfg.val_windows, length)[:, :keep]
    history = fit(
        run,
        key,
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        checkpoint_every=cfg.checkpoint_every,
        log_every=10,
    )
    model.eval()
    return model, history, head_scores(model, val.to(run.device))
