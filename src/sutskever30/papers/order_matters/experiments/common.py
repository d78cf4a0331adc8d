"""What both order_matters experiments share: the config fields common to both, held-out
sets from their own seeds, and the training loop (Adam, fresh sets every step,
teacher-forced pointer loss) and greedy-decoding accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from sutskever30.core.run import Run
from sutskever30.core.train import fit, step_generator
from sutskever30.papers.order_matters.model import SetModelConfig, exact_match, pointer_loss

# Held-out sets come from their own generator seeds, never a training seed's stream.
EVAL_SEEDS = {"test": 900_001, "val": 900_002}


@dataclass(frozen=True)
class Common:
    d: int = 32  # memory size (process LSTM d units, write LSTM 2d)
    attn_dim: int = 32  # pointer attention hidden size
    batch_size: int = 128  # sets per step, fresh sets every step
    lr: float = 3e-3  # Adam, chosen on val from {1e-3, 3e-3} (README)
    clip: float = 1.0  # gradient-norm clipping
    eval_sets: int = 2000  # held-out sets per score
    split: Literal["test", "val"] = "test"  # val: the learning-rate search

    def __post_init__(self) -> None:
        if min(self.d, self.attn_dim, self.batch_size, self.eval_sets) < 1:
            raise ValueError("d, attn_dim, batch_size and eval_sets must be >= 1")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError("lr and clip must be > 0")
        if self.split not in EVAL_SEEDS:
            raise ValueError(f"split must be one of {sorted(EVAL_SEEDS)}, got {self.split!r}")


def held_out(cfg, make) -> tuple[torch.Tensor, torch.Tensor]:
    return make(torch.Generator().manual_seed(EVAL_SEEDS[cfg.split]), cfg.eval_sets)


# -- training ---------------------------------------------------------------------------------


def trainer(run: Run, cfg: Common, model: torch.nn.Module, make):
    """Adam and ``step(s)``: fresh sets from (seed, step), teacher-forced pointer loss."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(s: int) -> dict[str, float]:
        x, y = make(step_generator(run.seed, s), cfg.batch_size)
        logits, _, _ = model(x.to(run.device), y.to(run.device))
        loss = pointer_loss(logits, y.to(run.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return {"loss": loss.item()}

    return opt, step


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Greedy decoding; the fraction of sets whose whole output is right."""
    model.eval()
    _, picks, _ = model(x, steps=y.shape[1])
    return exact_match(picks, y).float().mean().item()


def train(run: Run, cfg, key: str, model: torch.nn.Module, make, steps: int) -> dict:
    torch.manual_seed(run.seed)
    model.to(run.device)
    opt, step = trainer(run, cfg, model, make)
    t = time.perf_counter()
    history = fit(run, key, model=model, optimizer=opt, steps=steps, step=step, log_every=50)
    return {"model": model.cpu().eval(), "history": history, "train_s": time.perf_counter() - t}


def model_config(cfg, in_dim: int, P: int = 0, end_token: bool = False) -> SetModelConfig:
    return SetModelConfig(in_dim=in_dim, d=cfg.d, attn_dim=cfg.attn_dim, P=P, end_token=end_token)
