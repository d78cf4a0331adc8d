"""ResNet's degradation experiment (Fig. 6, Table 6): plain nets get worse with depth,
residual nets do not.

Every network trains with the same budget and recipe (SGD 0.1, momentum 0.9, weight decay
1e-4, batch 128, 4-pixel pad + 32×32 crop + horizontal flip, per-pixel mean subtracted).
The claims compare training error, as Fig. 6 does; test error is reported beside Table 6.

Deviations from the paper (quick preset; README: Deviations):
- 300 iterations of batch 64 at a constant lr chosen on a held-out validation split, not
  64k iterations of batch 128 at 0.1 with decays; the budget is set by the time limit.
- Before evaluating, BatchNorm's running statistics are recomputed from training batches
  (``bn_recal_batches``): after a few hundred fast-moving steps the running averages lag the
  weights, and eval-mode error says more about that lag than about the network.
- The depth claims are decided over 3 seeds, with the seed-to-seed spread as the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.nn.classifier import error_rate, recalibrate_bn
from sutskever30.papers.resnet.model import ResNetConfig, count_parameters
from sutskever30.papers.resnet.training import load_data, trainer

# Table 6: CIFAR-10 test error (%) of the residual nets, and their parameter counts (M).
TABLE6_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
TABLE6_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
CL = torch.channels_last  # the networks train in this layout (training.trainer)


@dataclass(frozen=True)
class DegradationConfig:
    depths: tuple[int, ...] = (20, 56)
    plain: bool = True  # train the plain counterparts too
    steps: int = 64_000
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: tuple[int, ...] = (32_000, 48_000)  # lr ÷ 10 at each
    warmup_depth: int = 110  # nets this deep start at lr/10 for warmup_steps (Sec. 4.2)
    warmup_steps: int = 400
    augment: bool = True
    train_size: int = 50_000  # training images (paper: 45k, with 5k held out)
    val_size: int = 0  # training images held out (never trained on) for choosing lr
    test_size: int = 10_000
    final_window: float = 0.1  # final training error = mean over this last fraction of steps
    eval_every: int = 2_000  # 0: evaluate after the last step only
    bn_recal_batches: int = 0  # >0: recompute BN statistics on this many batches before eval
    checkpoint_every: int = 1_000

    def __post_init__(self) -> None:
        for d in self.depths:
            ResNetConfig(depth=d)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if not 0 < self.final_window <= 1:
            raise ValueError("final_window must be in (0, 1]")
        if self.val_size < 0 or not 0 < self.train_size <= 50_000 - self.val_size:
            raise ValueError("need val_size ≥ 0 and 1 ≤ train_size ≤ 50000 − val_size")
        if not 0 < self.test_size <= 10_000:
            raise ValueError("test_size must be in [1, 10000]")
        if self.eval_every < 0 or self.bn_recal_batches < 0:
            raise ValueError("eval_every and bn_recal_batches must be ≥ 0")


def net_name(depth: int, residual: bool) -> str:
    return f"{'resnet' if residual else 'plain'}{depth}"


def train_net(run: Run, cfg: DegradationConfig, depth: int, residual: bool, data) -> dict:
    name = net_name(depth, residual)
    model, opt, sched, step = trainer(run, cfg, depth, residual, data)

    def evaluate(_: int) -> dict[str, float]:
        net = model
        if cfg.bn_recal_batches:
            x_cal = data["train"][0]
            net = recalibrate_bn(
                model, x_cal, cfg.batch_size, cfg.bn_recal_batches, memory_format=CL
            )
        out = {"test_err": error_rate(net, *data["test"], memory_format=CL)}
        if cfg.val_size:
            out["val_err"] = error_rate(net, *data["val"], memory_format=CL)
        return out

    history = fit(
        run,
        name,
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        log_every=1,
    )
    window = max(1, int(cfg.steps * cfg.final_window))
    tail = [h for h in history if h["step"] >= cfg.steps - window]
    return {
        "name": name,
        "depth": depth,
        "residual": residual,
        "params": count_parameters(model),
        "history": history,
        "final_train_err": float(np.mean([h["train_err"] for h in tail])),
        "final_train_loss": float(np.mean([h["loss"] for h in tail])),
        "test_err": history[-1]["test_err"],
        "val_err": history[-1].get("val_err", float("nan")),
    }


def smooth(values: list[float], k: int) -> np.ndarray:
    if k <= 1 or len(values) < k:
        return np.asarray(values)
    return np.convolve(values, np.ones(k) / k, mode="valid")


def plot_curves(run: Run, nets: list[dict], cfg: DegradationConfig) -> None:
    """Fig. 6 style: training error (thin) and test error (dots, bold line) vs iterations."""
    k = max(1, cfg.steps // 50)
    fig, axes = plots.figure(ncols=2)
    for ax, residual, title in ((axes[0], False, "plain"), (axes[1], True, "ResNet")):
        for net in (n for n in nets if n["residual"] == residual):
            steps = [h["step"] for h in net["history"]]
            err = smooth([h["train_err"] for h in net["history"]], k)
            line = ax.plot(steps[len(steps) - len(err) :], 100 * err, lw=1, label=f"{net['name']}")
            evals = [h for h in net["history"] if "test_err" in h]
            ax.plot(
                [h["step"] for h in evals],
                [100 * h["test_err"] for h in evals],
                "o-",
                color=line[0].get_color(),
                lw=2.2,
                ms=3,
            )
        ax.set_title(f"{title}: training error (thin), test error (dots)", fontsize=10)
        ax.set_xlabel("iteration")
        ax.set_ylabel("error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    plots.save(fig, run.plot_path("training_curves.png"))


def depth_claims(run: Run, by: dict[str, dict], shallow: int, deep: int, plain: bool) -> None:
    """Degradation = the deeper net's final training error is above the shallower's by more
    than the seed-to-seed spread of that gap; no degradation = it is not (``spread``:
    :mod:`sutskever30.core.results`)."""
    err = {name: net["final_train_err"] for name, net in by.items()}
    p_s, p_d = f"plain{shallow}_train_err", f"plain{deep}_train_err"
    r_s, r_d = f"resnet{shallow}_train_err", f"resnet{deep}_train_err"
    if plain:
        run.claim(
            "plain_degrades",
            f"plain-{deep} ends with higher training error than plain-{shallow} "
            "(by more than the seed-to-seed spread of the gap)",
            "Fig. 6 (left): plain-56 above plain-20 throughout training",
            {p_s: err[net_name(shallow, False)], p_d: err[net_name(deep, False)]},
            f"{p_d} > {p_s} + spread",
        )
        run.claim(
            "resnet_beats_plain",
            f"ResNet-{deep} ends with lower training error than plain-{deep} "
            "(by more than the seed-to-seed spread of the gap)",
            "Fig. 6: the residual net of equal depth trains far better",
            {r_d: err[net_name(deep, True)], p_d: err[net_name(deep, False)]},
            f"{p_d} > {r_d} + spread",
        )
    pair = {r_s: err[net_name(shallow, True)], r_d: err[net_name(deep, True)]}
    run.claim(
        "resnet_deeper_not_worse",
        f"ResNet-{deep} does not degrade: its training error is not above ResNet-{shallow}'s "
        "by more than the seed-to-seed spread of the gap",
        "Fig. 6 (middle): deeper ResNets have lower training error",
        pair,
        f"{r_d} <= {r_s} + spread",
    )
    run.claim(
        "resnet_deeper_lower",
        f"ResNet-{deep} mean training error ≤ ResNet-{shallow}'s (strict, on the mean)",
        "Fig. 6 (middle): ResNet-56 below ResNet-20",
        pair,
        f"{r_d} <= {r_s}",
    )


def run_degradation(run: Run, cfg: DegradationConfig) -> None:
    data = load_data(cfg)
    kinds = ([False] if cfg.plain else []) + [True]
    nets = [train_net(run, cfg, d, r, data) for r in kinds for d in cfg.depths]
    by = {n["name"]: n for n in nets}
    for n in nets:
        keys = ("params", "final_train_err", "final_train_loss", "val_err", "test_err")
        run.summary[n["name"]] = {k: n[k] for k in keys}
    plot_curves(run, nets, cfg)

    shallow, deep = min(cfg.depths), max(cfg.depths)
    if shallow == deep:
        run.notes.append("only one depth trained: the depth comparisons were not evaluated")
    else:
        depth_claims(run, by, shallow, deep, cfg.plain)
    recal = (
        f", BN statistics recomputed on {cfg.bn_recal_batches} training batches"
        if cfg.bn_recal_batches
        else ""
    )
    for d in cfg.depths:
        net = by[net_name(d, True)]
        paper = TABLE6_ERROR.get(d)
        run.report(
            f"resnet{d}_test_error",
            f"ResNet-{d} CIFAR-10 test error after {cfg.steps} steps (paper: 64k steps){recal}",
            f"Table 6: {paper}% with {TABLE6_PARAMS_M.get(d)}M params" if paper else "-",
            {"test_err_pct": 100 * net["test_err"], "params": net["params"]},
        )


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's networks, each with its own training step on real CIFAR-10."""
    cfg = run.cfg
    data = load_data(cfg)
    cases = []
    for residual in (False, True):
        for depth in cfg.depths:
            model, opt, _, step = trainer(run, cfg, depth, residual, data)
            cases.append(BenchCase(net_name(depth, residual), model, opt, step, cfg.batch_size, 1))
    return cases


SMOKE = DegradationConfig(
    depths=(8, 14),
    steps=4,
    batch_size=16,
    lr_milestones=(),
    train_size=256,
    val_size=64,
    test_size=64,
    final_window=0.5,
    eval_every=2,
    bn_recal_batches=2,
    checkpoint_every=2,
)
# The budget: 3 seeds side by side (--jobs 3) within the 15-min bar. 300 steps measured
# 15.1 min on the idle 2-core machine, so 270 steps plus the final evaluation. Batch 64 for
# twice the updates per image; lr from {0.01, 0.02, 0.05, 0.1} by mean validation error of
# the four nets at this budget (README: Deviations).
QUICK = DegradationConfig(
    depths=(20, 56),
    steps=270,
    batch_size=64,
    lr=0.02,
    lr_milestones=(),
    train_size=48_000,
    val_size=2_000,
    test_size=2_000,
    eval_every=0,
    bn_recal_batches=20,
    checkpoint_every=100,
)
FULL = DegradationConfig(depths=(20, 32, 44, 56, 110))

PAPER = Paper(
    slug="resnet",
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    year=2015,
    arxiv="1512.03385",
    bench=bench,
    experiments=(
        Experiment(
            name="degradation",
            description="plain vs residual nets of two depths, equal budget, CIFAR-10 (Fig. 6)",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_degradation,
            quick_minutes=15.1,
            datasets=("cifar10",),
            quick_seeds=3,
        ),
    ),
)
