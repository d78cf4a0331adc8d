"""(b) Training deep CIFAR-10 ResNets whose units differ only in ordering or shortcut: the
full pre-activation unit trains at least as well as the original one, and a λ = 0.5 scaled
shortcut trains worse (Fig. 3, 6; Tables 1, 2).

Every arm trains with the same recipe, budget and learning rate (SGD, momentum 0.9, weight
decay 1e-4; 4-pixel pad + crop + flip; per-pixel mean subtracted). The claims compare the
final training loss, as Fig. 3 and 6 do; test error is reported beside Tables 1 and 2.

Deviations from the paper (quick preset; README: Deviations):
- ResNet-56 (27 units), 100 iterations of batch 32 at one constant lr chosen on a
  held-out validation split, not ResNet-110/164 for 64k iterations of batch 128.
- Evaluation recomputes BatchNorm statistics from training batches (``bn_recal_batches``).
- A net whose loss becomes non-finite stops there and is scored at chance, ln 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.errors import DivergenceError
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit, step_generator
from sutskever30.data.cifar10 import pad_crop_flip
from sutskever30.nn.classifier import error_rate, recalibrate_bn
from sutskever30.papers.identity_mappings.experiments.common import cifar
from sutskever30.papers.identity_mappings.model import (
    VARIANTS,
    CifarResNet,
    NetConfig,
    count_parameters,
)

# Table 2 (CIFAR-10 test error %, ResNet-110 / ResNet-164) and Table 1 (ResNet-110).
TABLE2_ERROR = {
    "original": (6.61, 5.93),
    "bn_after_add": (8.17, 6.50),
    "relu_before_add": (7.84, 6.14),
    "relu_preact": (6.71, 5.91),
    "full_preact": (6.37, 5.46),
}
TABLE1_ERROR = {
    "scaling": "fails to converge well (λ = 0.5, F unscaled)",
    "scaling_both": "12.35%",
    "conv1x1": "12.22%",
    "dropout": "fails",
}
CLAIM_ARMS = ("full_preact", "original", "scaling")


@dataclass(frozen=True)
class TrainingConfig:
    depths: tuple[int, ...] = (110, 164)
    arms: tuple[str, ...] = tuple(TABLE2_ERROR)
    bottleneck_from: int = 164  # nets this deep use bottleneck units (ResNet-164)
    steps: int = 64_000
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: tuple[int, ...] = (32_000, 48_000)  # lr ÷ 10 at each
    warmup_steps: int = 400  # lr/10 for these first steps (ResNet-110/164, Appendix)
    augment: bool = True
    train_size: int = 50_000
    val_size: int = 0  # training images held out (never trained on) for choosing lr
    test_size: int = 10_000
    final_window: float = 0.25  # final training loss = mean over this last fraction of steps
    eval_every: int = 2_000  # 0: evaluate after the last step only
    bn_recal_batches: int = 0  # > 0: recompute BN statistics on this many batches for eval
    checkpoint_every: int = 1_000

    def __post_init__(self) -> None:
        for d in self.depths:
            net_config(self, d, "original")
        unknown = set(self.arms) - set(VARIANTS)
        if unknown or not self.arms:
            raise ValueError(f"unknown arms {sorted(unknown)}; choose from {list(VARIANTS)}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be ≥ 1 and batch_size ≥ 2 (BatchNorm)")
        if not 0 < self.final_window <= 1:
            raise ValueError("final_window must be in (0, 1]")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need lr > 0, 0 ≤ momentum < 1, weight_decay ≥ 0")
        if self.val_size < 0 or not 0 < self.train_size <= 50_000 - self.val_size:
            raise ValueError("need val_size ≥ 0 and 1 ≤ train_size ≤ 50000 − val_size")
        if not 0 < self.test_size <= 10_000:
            raise ValueError("test_size must be in [1, 10000]")
        if min(self.eval_every, self.bn_recal_batches, self.warmup_steps) < 0:
            raise ValueError("eval_every, bn_recal_batches and warmup_steps must be ≥ 0")


def net_config(cfg: TrainingConfig, depth: int, arm: str) -> NetConfig:
    unit = replace(VARIANTS[arm], bottleneck=depth >= cfg.bottleneck_from)
    return NetConfig(depth=depth, unit=unit)


def net_name(depth: int, arm: str) -> str:
    return f"{arm}_{depth}"


def trainer(run: Run, cfg: TrainingConfig, depth: int, arm: str, data):
    """The network, its SGD optimizer and schedule, and ``step(i)``: one update on the i-th
    augmented minibatch (what ``fit`` runs and ``s30 bench`` times)."""
    x_train, y_train = data["train"]
    torch.manual_seed(run.seed)
    model = CifarResNet(net_config(cfg, depth, arm)).to(
        run.device, memory_format=torch.channels_last
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )

    def lr_factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return 0.1
        return 0.1 ** sum(step >= m for m in cfg.lr_milestones)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
        xb, yb = x_train[idx], y_train[idx]
        if cfg.augment:
            xb = pad_crop_flip(xb, step_generator(run.seed, i))
        xb = xb.to(run.device, memory_format=torch.channels_last)
        yb = yb.to(run.device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "train_err": (logits.argmax(1) != yb).float().mean().item()}

    return model, opt, sched, step


def train_net(run: Run, cfg: TrainingConfig, depth: int, arm: str, data) -> dict:
    name = net_name(depth, arm)
    model, opt, sched, step = trainer(run, cfg, depth, arm, data)
    seen: list[dict[str, float]] = []  # every step's metrics, kept if training diverges

    def watched(i: int) -> dict[str, float]:
        out = step(i)
        seen.append({"step": i, **out})
        return out

    def evaluate(_: int) -> dict[str, float]:
        net = recalibrate_bn(model, data["train"][0], cfg.batch_size, cfg.bn_recal_batches)
        out = {"test_err": error_rate(net, *data["test"])}
        if cfg.val_size:
            out["val_err"] = error_rate(net, *data["val"])
        return out

    diverged_at = None
    try:
        history = fit(
            run,
            name,
            model=model,
            optimizer=opt,
            scheduler=sched,
            steps=cfg.steps,
            step=watched,
            evaluate=evaluate,
            eval_every=cfg.eval_every,
            checkpoint_every=cfg.checkpoint_every,
            log_every=1,
        )
    except DivergenceError as err:
        run.info(str(err))
        diverged_at = seen[-1]["step"]
        history = [h for h in seen if math.isfinite(h["loss"])]
    window = max(1, int(cfg.steps * cfg.final_window))
    tail = [h["loss"] for h in history if h["step"] >= cfg.steps - window and "loss" in h]
    chance = math.log(10)
    return {
        "name": name,
        "arm": arm,
        "depth": depth,
        "params": count_parameters(model),
        "history": history,
        "diverged_at": diverged_at,
        "final_train_loss": chance if diverged_at is not None else float(np.mean(tail)),
        "test_err": 1.0 if diverged_at is not None else history[-1]["test_err"],
        "val_err": 1.0 if diverged_at is not None else history[-1].get("val_err", math.nan),
    }


def plot_curves(run: Run, nets: list[dict], cfg: TrainingConfig) -> None:
    """Training loss per arm (a running mean over 1/20 of the steps), one panel per depth."""
    depths = sorted({n["depth"] for n in nets})
    fig, axes = plots.figure(ncols=len(depths), width=5.5)
    k = max(1, cfg.steps // 20)
    for ax, depth in zip(axes, depths, strict=True):
        for net in (n for n in nets if n["depth"] == depth):
            losses = [h["loss"] for h in net["history"] if "loss" in h]
            steps = [h["step"] for h in net["history"] if "loss" in h]
            if len(losses) >= k:
                losses = np.convolve(losses, np.ones(k) / k, mode="valid")
                steps = steps[k - 1 :]
            ax.plot(steps, losses, lw=1.5, label=net["arm"])
        ax.set_title(f"ResNet-{depth}: training loss (running mean)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("cross-entropy")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
    plots.save(fig, run.plot_path("training_loss.png"))


def training_claims(run: Run, by: dict[str, dict], depth: int) -> None:
    """``a ≤ b`` is tested as "a is not above b by more than the seed-to-seed spread of their
    gap" and ``a < b`` as "b is above a by more than that spread" (:mod:`core.results`)."""
    loss = {arm: by[net_name(depth, arm)]["final_train_loss"] for arm in CLAIM_ARMS}
    run.claim(
        "preact_not_worse",
        f"ResNet-{depth}: full pre-activation's final training loss is not above the "
        "original unit's by more than the seed-to-seed spread of the gap",
        "Fig. 6 (left), Table 2: full pre-activation trains at least as well as the original",
        {"full_preact_loss": loss["full_preact"], "original_loss": loss["original"]},
        "full_preact_loss <= original_loss + spread",
    )
    run.claim(
        "scaling_worse",
        f"ResNet-{depth}: the λ = 0.5 scaled shortcut ends with a higher training loss than "
        "the original identity shortcut, by more than the seed-to-seed spread of the gap",
        "Fig. 3, Table 1: constant scaling (0.5) fails to converge well",
        {"original_loss": loss["original"], "scaling_loss": loss["scaling"]},
        "scaling_loss > original_loss + spread",
    )


def report_errors(run: Run, cfg: TrainingConfig, nets: list[dict]) -> None:
    recal = (
        f", BN statistics recomputed on {cfg.bn_recal_batches} training batches"
        if cfg.bn_recal_batches
        else ""
    )
    for net in nets:
        arm, depth = net["arm"], net["depth"]
        if arm in TABLE2_ERROR:
            paper = (
                f"Table 2: ResNet-110 {TABLE2_ERROR[arm][0]}%, ResNet-164 {TABLE2_ERROR[arm][1]}%"
            )
        else:
            paper = f"Table 1 (ResNet-110): {TABLE1_ERROR.get(arm, 'see the table')}"
        run.report(
            f"{net['name']}_test_error",
            f"{arm} ResNet-{depth}: CIFAR-10 test error after {cfg.steps} steps{recal}",
            paper,
            {"test_err_pct": 100 * net["test_err"], "params": net["params"]},
        )


def run_training(run: Run, cfg: TrainingConfig) -> None:
    data = cifar(cfg.train_size, cfg.val_size, cfg.test_size)
    run.nets_total = len(cfg.depths) * len(cfg.arms)
    nets = [train_net(run, cfg, d, arm, data) for d in cfg.depths for arm in cfg.arms]
    for n in nets:
        keys = ("params", "final_train_loss", "val_err", "test_err", "diverged_at")
        run.summary[n["name"]] = {k: n[k] for k in keys}
    plot_curves(run, nets, cfg)
    by = {n["name"]: n for n in nets}
    if set(CLAIM_ARMS) <= set(cfg.arms):
        for depth in cfg.depths:
            training_claims(run, by, depth)
    else:
        run.notes.append(f"the claims need the arms {CLAIM_ARMS}: not evaluated")
    report_errors(run, cfg, nets)


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's networks, each with its own training step on real CIFAR-10 (the
    scratch run belongs to the first experiment, so the preset is named here)."""
    cfg = QUICK
    data = cifar(cfg.train_size, cfg.val_size, cfg.test_size)
    cases = []
    for depth in cfg.depths:
        for arm in cfg.arms:
            model, opt, _, step = trainer(run, cfg, depth, arm, data)
            cases.append(BenchCase(net_name(depth, arm), model, opt, step, cfg.batch_size, 1))
    return cases


SMOKE = TrainingConfig(
    depths=(8,),
    arms=CLAIM_ARMS,
    steps=4,
    batch_size=8,
    lr_milestones=(),
    warmup_steps=0,
    train_size=64,
    val_size=16,
    test_size=16,
    final_window=0.5,
    eval_every=0,
    bn_recal_batches=2,
    checkpoint_every=2,
)
QUICK = TrainingConfig(
    depths=(56,),
    arms=CLAIM_ARMS,
    steps=100,
    batch_size=32,
    lr=0.02,
    lr_milestones=(),
    warmup_steps=0,
    train_size=10_000,
    val_size=500,
    test_size=500,
    eval_every=0,
    bn_recal_batches=10,
    checkpoint_every=50,
)
FULL = TrainingConfig()

EXPERIMENT = Experiment(
    name="deep_training",
    description="ResNet-56 on CIFAR-10: full pre-activation vs original vs λ=0.5 shortcut",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_training,
    quick_minutes=3.3,
    datasets=("cifar10",),
    quick_seeds=3,
)
