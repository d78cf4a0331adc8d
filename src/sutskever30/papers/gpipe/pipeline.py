"""The GPT trained as a real pipeline: one process per stage, ``torch.distributed.pipelining``.

Each of the K processes that ``torchrun`` starts builds the same GPT from the same seed, keeps
its own cell of :func:`~sutskever30.papers.gpipe.model.split_stages` (the K-way partition of
``GPT.sequential()`` balanced by parameter count) and wraps it in a ``PipelineStage``;
``ScheduleGPipe`` runs the fill–drain schedule over M micro-batches, sending activations
forward and gradients backward between neighbouring processes (gloo on CPU, NCCL on GPUs),
and scales the accumulated gradients by 1/M so that each rank's optimizer step is the one of
the whole mini-batch. :func:`train_single` is the same training in one process, the
reference the two-process run must match::

    torchrun --standalone --nproc_per_node 2 -m sutskever30.papers.gpipe.pipeline \\
        --steps 60 --micro-batches 4 --out /tmp/gpipe-losses.json

On GPUs (``--device auto`` with CUDA present) each process takes the GPU of its
``LOCAL_RANK`` and the group uses NCCL (:func:`sutskever30.core.distributed.init`).

Only rank K−1 (the last stage) sees the loss; it writes the per-step losses to ``--out``.
The loop is written here rather than through ``core.train.fit``: under torchrun ``fit``
averages gradients over the ranks (data parallelism), which for pipeline stages holding
different parameters would be wrong.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from sutskever30.core import distributed
from sutskever30.core.train import step_generator
from sutskever30.data.text import load_tiny_shakespeare
from sutskever30.nn.gpt import GPT, GPTConfig
from sutskever30.papers.gpipe.model import split_stages


@dataclass(frozen=True)
class PipeTrainConfig:
    steps: int = 60
    batch_size: int = 32  # N, sequences per mini-batch
    context: int = 64
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 64
    micro_batches: int = 4  # M
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.context, self.n_layer, self.micro_batches) < 1:
            raise ValueError("steps, batch_size, context, n_layer and micro_batches must be ≥ 1")
        if self.batch_size % self.micro_batches:
            raise ValueError(
                f"batch_size {self.batch_size} must split into {self.micro_batches} "
                "equal micro-batches"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class CharBatches:
    """Random windows of tiny-shakespeare's training text as (input, next-character) pairs,
    a deterministic function of (seed, step)."""

    def __init__(self, context: int, batch_size: int, seed: int) -> None:
        train, _ = load_tiny_shakespeare()
        self.vocab = sorted(set(train))
        index = {c: i for i, c in enumerate(self.vocab)}
        self.data = torch.tensor([index[c] for c in train], dtype=torch.long)
        self.context, self.batch_size, self.seed = context, batch_size, seed

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = step_generator(self.seed, step)
        start = torch.randint(len(self.data) - self.context - 1, (self.batch_size,), generator=gen)
        window = start[:, None] + torch.arange(self.context + 1)  # (N, T + 1)
        chunk = self.data[window]
        return chunk[:, :-1], chunk[:, 1:]  # (N, T), (N, T)


def build_gpt(
    *,
    vocab_size: int,
    context: int,
    n_layer: int,
    n_head: int,
    d_model: int,
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> GPT:
    """The GPT every process builds identically (same seed); the head untied from the
    embedding so the two can live on different stages."""
    torch.manual_seed(seed)
    gpt_cfg = GPTConfig(
        vocab_size=vocab_size,
        context=context,
        n_layer=n_layer,
        n_head=n_head,
        d_model=d_model,
        tie_weights=False,
    )
    return GPT(gpt_cfg).to(dtype)


def _gpt(cfg: PipeTrainConfig, vocab_size: int) -> GPT:
    return build_gpt(
        vocab_size=vocab_size,
        context=cfg.context,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        d_model=cfg.d_model,
        seed=cfg.seed,
    )


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-character cross-entropy: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def train_single(cfg: PipeTrainConfig, batches: CharBatches | None = None) -> list[float]:
    """One process, whole mini-batches: the reference. Returns the loss of every step."""
    batches = batches or CharBatches(cfg.context, cfg.batch_size, cfg.seed)
    model = _gpt(cfg, len(batches.vocab)).sequential()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return _train(cfg, opt, lambda x, y: _full_batch_loss(model, x, y), batches)


def _full_batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = lm_loss(model(x), y)
    loss.backward()
    return loss.item()


def _train(
    cfg: PipeTrainConfig,
    opt: torch.optim.Optimizer,
    forward_backward: Callable[[torch.Tensor, torch.Tensor], float | None],
    batches: CharBatches,
) -> list[float]:
    losses = []
    for i in range(cfg.steps):
        x, y = batches(i)
        opt.zero_grad()
        loss = forward_backward(x, y)
        opt.step()
        if loss is not None:
            losses.append(loss)
    return losses


def train_pipelined(cfg: PipeTrainConfig, device: torch.device) -> list[float]:
    """This process's stage of the pipeline on ``device`` (rank = stage index, the process
    group already joined). Returns the per-step losses on the last stage, [] on the others."""
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

    rank, world = dist.get_rank(), dist.get_world_size()
    batches = CharBatches(cfg.context, cfg.batch_size, cfg.seed)
    stages = split_stages(_gpt(cfg, len(batches.vocab)).sequential(), world)
    module = stages[rank].to(device)
    stage = PipelineStage(module, rank, world, device)
    schedule = ScheduleGPipe(stage, n_microbatches=cfg.micro_batches, loss_fn=lm_loss)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)

    def forward_backward(x: torch.Tensor, y: torch.Tensor) -> float | None:
        x, y = x.to(device), y.to(device)
        if rank == 0:
            schedule.step(x)
            return None
        if rank < world - 1:
            schedule.step()
            return None
        micro_losses: list[torch.Tensor] = []
        schedule.step(target=y, losses=micro_losses)
        return torch.stack(micro_losses).mean().item()  # equal micro-batches: the batch mean

    return _train(cfg, opt, forward_backward, batches)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(PipeTrainConfig):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, type=type(f.default), default=f.default)
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the losses")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: the GPU of LOCAL_RANK with NCCL when CUDA is present, else CPU with gloo",
    )
    args = vars(parser.parse_args(argv))
    out, device = args.pop("out"), args.pop("device")
    cfg = PipeTrainConfig(**args)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # joins the group torchrun describes: NCCL on this rank's GPU, gloo on the CPU
    where = distributed.init(torch.device(device))
    try:
        losses = train_pipelined(cfg, where)
        if dist.get_rank() == dist.get_world_size() - 1:
            record = {"config": asdict(cfg), "world": dist.get_world_size(), "losses": losses}
            out.write_text(json.dumps(record) + "\n")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
