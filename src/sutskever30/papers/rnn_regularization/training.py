"""Training one word-level LM of the experiment: contiguous streams, truncated BPTT with the
state carried from batch to batch, the paper's objective and clipping, and perplexity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from sutskever30.core.errors import UsageError
from sutskever30.core.run import Run
from sutskever30.papers.rnn_regularization.model import RegularizedLSTM, lm_loss, perplexity

if TYPE_CHECKING:
    from sutskever30.papers.rnn_regularization.experiment import RegularizationConfig


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) word ids → (B, N // B): B contiguous streams read in parallel, as the paper does."""
    width = ids.numel() // batch_size
    return ids[: width * batch_size].view(batch_size, width)


class CarriedState(nn.Module):
    """The LM plus the (h, c) carried from one training batch to the next (truncated BPTT);
    kept as buffers so a checkpoint, and --resume, include it."""

    def __init__(self, lm: RegularizedLSTM, batch_size: int) -> None:
        super().__init__()
        self.lm = lm
        h, c = lm.init_state(batch_size)
        self.register_buffer("h", h)  # (L, B, n)
        self.register_buffer("c", c)


@torch.no_grad()
def evaluate_ppl(lm: RegularizedLSTM, streams: torch.Tensor, unroll: int) -> float:
    """Perplexity of ``lm`` (eval mode, state carried) on (B, W) ``streams``."""
    was_training = lm.training
    lm.eval()
    state = lm.init_state(streams.shape[0])
    total, count = 0.0, 0
    for j in range(0, streams.shape[1] - 1, unroll):
        x = streams[:, j : min(j + unroll, streams.shape[1] - 1)]
        y = streams[:, j + 1 : j + 1 + x.shape[1]]
        logits, state = lm(x, state)
        total += float(lm_loss(logits, y)) * y.numel()
        count += y.numel()
    lm.train(was_training)
    return perplexity(total / count)


@dataclass
class Trainer:
    """One LM ready to train: what ``fit`` runs and ``s30 bench`` times."""

    lm: RegularizedLSTM
    model: CarriedState  # what fit checkpoints: the LM and the carried state
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    step: Callable[[int], dict[str, float]]
    steps: int  # epochs × chunks
    chunks: int  # unrolled windows per epoch
    tokens_per_step: int


def trainer(run: Run, cfg: RegularizationConfig, i: int, train_ids: torch.Tensor) -> Trainer:
    """Model ``i`` of ``cfg`` with its optimizer, learning-rate schedule and ``step(s)``: one
    update on the s-th window of B × T words (the state carried over from window s − 1)."""
    T = cfg.unroll[i]
    train = batchify(train_ids, cfg.batch_size).to(run.device)  # (B, W)
    chunks = (train.shape[1] - 1) // T
    if chunks < 1:
        raise UsageError(f"train_tokens too small for batch {cfg.batch_size} × unroll {T}")
    torch.manual_seed(run.seed * 1000 + i)
    lm = RegularizedLSTM(config=cfg.model(i)).to(run.device)
    model = CarriedState(lm, cfg.batch_size).to(run.device)
    opt_cls = torch.optim.SGD if cfg.optimizer == "sgd" else torch.optim.Adam
    optimizer = opt_cls(lm.parameters(), lr=cfg.lr)
    decay, after = cfg.lr_decay[i], cfg.decay_after[i]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: decay ** -max(0, s // chunks - after + 1)
    )

    def step(s: int) -> dict[str, float]:
        j = s % chunks
        if j == 0:  # a new epoch starts every stream from the zero state
            model.h.zero_()
            model.c.zero_()
        x, y = train[:, j * T : (j + 1) * T], train[:, j * T + 1 : (j + 1) * T + 1]  # (B, T)
        logits, (h, c) = lm(x, (model.h, model.c))
        nll = lm_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        # The paper's objective: NLL summed over the unrolled steps, averaged over the batch.
        (nll * T).backward()
        model.h.copy_(h.detach())  # after backward, which still reads the old state
        model.c.copy_(c.detach())
        nn.utils.clip_grad_norm_(lm.parameters(), cfg.clip[i])
        optimizer.step()
        return {"loss": nll.item(), "lr": optimizer.param_groups[0]["lr"]}

    return Trainer(
        lm, model, optimizer, scheduler, step, chunks * cfg.epochs[i], chunks, cfg.batch_size * T
    )
