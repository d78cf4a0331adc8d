"""What both pointer_networks experiments share: the config (one for both tasks), the
training and held-out sets and their tensors, the training loop (Adam, batches drawn by
(seed, step), teacher-forced pointer loss), decoding, and a polygon drawn over its points."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.planar import PointSets, convex_hull_sets, rng, tsp_sets
from sutskever30.papers.pointer_networks.model import (
    IGNORE,
    STOP,
    PointerNet,
    PtrNetConfig,
    pointer_loss,
)


@dataclass(frozen=True)
class PlanarConfig:
    task: Literal["hull", "tsp"] = "hull"
    hidden: int = 128  # LSTM units (paper: 256 / 512)
    attn_dim: int = 128
    n_min: int = 5  # training (and held-out) set sizes n ~ U{n_min..n_max}
    n_max: int = 10
    train_sets: int = 100_000  # fixed training set (paper: 1M)
    batch_size: int = 128  # the paper's
    steps: int = 4000  # hull (TSP_QUICK: 2500); README: the budget, chosen on val
    lr: float = 1e-3  # Adam (README: the learning-rate choice)
    clip: float = 2.0  # gradient-norm clipping, the paper's
    split: Literal["test", "val"] = "test"  # val: the learning-rate probe
    eval_sets: int = 1000  # held-out sets of n_min..n_max, and per larger n
    larger_n: tuple[int, ...] = (20, 50)  # hull: the generalization sizes
    beam: int = 5  # TSP: beam width of the valid-tour search (1: greedy only)
    examples: int = 4  # sets drawn with predicted and true output

    def __post_init__(self) -> None:
        if self.task not in ("hull", "tsp"):
            raise ValueError(f"task must be 'hull' or 'tsp', got {self.task!r}")
        if self.split not in ("test", "val"):
            raise ValueError(f"split must be 'test' or 'val', got {self.split!r}")
        if not 4 <= self.n_min <= self.n_max:
            raise ValueError(f"need 4 <= n_min <= n_max, got {self.n_min}, {self.n_max}")
        if self.task == "tsp" and self.n_max > 12:
            raise ValueError(f"TSP labels by Held–Karp need n_max <= 12, got {self.n_max}")
        if min(self.hidden, self.attn_dim, self.batch_size, self.steps, self.beam) < 1:
            raise ValueError("hidden, attn_dim, batch_size, steps and beam must be >= 1")
        if self.train_sets < self.batch_size or self.eval_sets < 1:
            raise ValueError("train_sets must be >= batch_size and eval_sets >= 1")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError("lr and clip must be > 0")
        if any(n <= self.n_max for n in self.larger_n):
            raise ValueError(f"larger_n {self.larger_n} must all exceed n_max {self.n_max}")
        if self.examples < 0:
            raise ValueError("examples must be >= 0")

    def model(self) -> PtrNetConfig:
        return PtrNetConfig(hidden=self.hidden, attn_dim=self.attn_dim)


# -- data -------------------------------------------------------------------------------------


def make_sets(cfg: PlanarConfig, split: str, seed: int, count: int, n_min: int, n_max: int):
    make = convex_hull_sets if cfg.task == "hull" else tsp_sets
    return make(rng(seed, split), count, n_min, n_max)


def tensors(sets: PointSets, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
    """points (B, n, 2) cut to the batch's largest set, lengths (B,), targets (B, T): each
    label as 1-based positions, then the stop, then −1."""
    lengths = sets.lengths[rows]
    n = int(lengths.max())
    labels = [sets.labels[r] for r in rows]
    targets = np.full((len(rows), max(len(lab) for lab in labels) + 1), IGNORE)
    for i, lab in enumerate(labels):
        targets[i, : len(lab)] = lab + 1
        targets[i, len(lab)] = STOP
    return (
        torch.from_numpy(sets.points[rows, :n]).float(),
        torch.from_numpy(lengths).long(),
        torch.from_numpy(targets).long(),
    )


# -- training ---------------------------------------------------------------------------------


def trainer(run: Run, cfg: PlanarConfig, train: PointSets):
    """The model, Adam, and ``step(s)``: a batch of training sets drawn by (seed, step),
    teacher-forced forward, backward, clip, update."""
    torch.manual_seed(run.seed)
    model = PointerNet(cfg.model()).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(s: int) -> dict[str, float]:
        g = np.random.default_rng([run.seed, s])
        rows = g.choice(len(train), size=cfg.batch_size, replace=False)
        points, lengths, targets = (t.to(run.device) for t in tensors(train, rows))
        loss = pointer_loss(model(points, lengths, targets), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return {"loss": loss.item()}

    return model, opt, step


def train_model(run: Run, cfg: PlanarConfig) -> tuple[PointerNet, list, float]:
    t = time.perf_counter()
    train = make_sets(cfg, "train", run.seed, cfg.train_sets, cfg.n_min, cfg.n_max)
    run.summary["label_s"] = time.perf_counter() - t
    model, opt, step = trainer(run, cfg, train)
    t = time.perf_counter()
    history = fit(run, cfg.task, model=model, optimizer=opt, steps=cfg.steps, step=step)
    return model.eval(), history, time.perf_counter() - t


def decode(
    model: PointerNet, sets: PointSets, device, *, tour: bool, beam: int = 1
) -> list[list[int]]:
    """Each set's output (0-based indices): greedy, unconstrained for the hull; for a
    ``tour`` greedy (``beam`` 1) or beam search, both over valid tours only."""
    out: list[list[int]] = []
    for start in range(0, len(sets), 500):
        rows = np.arange(start, min(start + 500, len(sets)))
        points, lengths, _ = (t.to(device) for t in tensors(sets, rows))
        if tour and beam > 1:
            out += model.beam_tours(points, lengths, beam=beam)
        else:
            out += model.greedy(points, lengths, max_steps=points.shape[1] + 1, tour=tour)
    return out


def draw_polygon(ax, points: np.ndarray, order, style: str, label: str) -> None:
    if len(order):
        p = points[[*order, order[0]]]
        ax.plot(p[:, 0], p[:, 1], style, label=label, linewidth=1.5)
