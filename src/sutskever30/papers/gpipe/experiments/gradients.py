"""Transparency: pipelined gradients equal the full-batch gradients (§2.2, synchronous
updates), in float64, for every K stages × M micro-batches, with and without
re-materialization."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.gpipe.experiments.common import (
    GPTSize,
    check_grid,
    gpt_and_batch,
    one_thread,
)
from sutskever30.papers.gpipe.model import GPipe, split_stages
from sutskever30.papers.gpipe.pipeline import lm_loss

ATOL = RTOL = 1e-6  # torch.allclose's test |a − b| ≤ atol + rtol |b|, as PAPERS.md asks


@dataclass(frozen=True)
class GradientsConfig:
    size: GPTSize = field(default_factory=GPTSize)
    stages: tuple[int, ...] = (2, 4)
    micro_batches: tuple[int, ...] = (1, 3, 4, 8)

    def __post_init__(self) -> None:
        check_grid(self.size, self.stages, self.micro_batches)


def full_batch_grads(model: torch.nn.Module, x, y) -> list[torch.Tensor]:
    model.zero_grad()
    lm_loss(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def pipelined_grads(model, x, y, *, k: int, m: int, remat: bool) -> list[torch.Tensor]:
    model.zero_grad()
    GPipe(split_stages(model, k), micro_batches=m, loss_fn=lm_loss, remat=remat).step(x, y)
    return [p.grad.clone() for p in model.parameters()]


def allclose_excess(a: list[torch.Tensor], b: list[torch.Tensor]) -> tuple[float, float]:
    """(max |a − b| − (atol + rtol |b|), max |a − b|) over every gradient entry: the first
    is ≤ 0 exactly when torch.allclose(a, b, rtol, atol) holds for all of them."""
    pairs = list(zip(a, b, strict=True))
    excess = max(((x - y).abs() - (ATOL + RTOL * y.abs())).max().item() for x, y in pairs)
    diff = max((x - y).abs().max().item() for x, y in pairs)
    return excess, diff


@one_thread()
def run_gradients(run: Run, cfg: GradientsConfig) -> None:
    gpt, x, y = gpt_and_batch(cfg.size, run.seed, torch.float64)
    model = gpt.sequential()
    reference = full_batch_grads(model, x, y)
    grid = [(k, m, r) for k in cfg.stages for m in cfg.micro_batches for r in (False, True)]
    excess, diff, rows = [], [], {}
    bar = run.progress(len(grid), "pipelined backward passes")
    for k, m, remat in grid:
        grads = pipelined_grads(copy.deepcopy(model), x, y, k=k, m=m, remat=remat)
        e, d = allclose_excess(grads, reference)
        excess.append(e)
        diff.append(d)
        rows[f"K{k}_M{m}_{'remat' if remat else 'plain'}"] = d
        bar.update(1)
    bar.close()
    run.summary["max_abs_diff_by_config"] = rows
    scale = max(g.abs().max().item() for g in reference)
    run.claim(
        "gradients_equal_full_batch",
        f"in float64, the gradients of K ∈ {list(cfg.stages)} stages × M ∈ "
        f"{list(cfg.micro_batches)} micro-batches, with and without re-materialization, equal "
        f"one full-batch backward: allclose(atol={ATOL}, rtol={RTOL}) on every entry",
        "§2.2: micro-batch gradients are accumulated and applied synchronously, so the "
        "update is the same whatever K and M",
        {
            "max_allclose_excess": max(excess),
            "max_abs_diff": max(diff),
            "max_abs_grad": scale,
            "configs": len(grid),
        },
        "max_allclose_excess <= 0",
    )


SMOKE = GradientsConfig(
    size=GPTSize(batch_size=4, context=8, n_layer=2, d_model=16), micro_batches=(1, 3)
)
QUICK = GradientsConfig()
FULL = GradientsConfig(
    size=GPTSize(batch_size=64, context=128, n_layer=12, d_model=128),
    stages=(2, 4, 8),
    micro_batches=(1, 4, 8, 16, 32),
)
PRESETS = {"smoke": SMOKE, "quick": QUICK, "full": FULL}

EXPERIMENT = Experiment(
    name="gradients",
    description="pipelined gradients (K stages × M micro-batches, ± re-materialization) "
    "equal full-batch gradients in float64",
    presets=PRESETS,
    run=run_gradients,
    quick_minutes=0.05,
    datasets=("tinyshakespeare",),
)
