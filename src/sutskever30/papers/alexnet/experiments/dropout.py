"""Sec. 4.2: dropout 0.5 in fc6 and fc7 keeps the network from overfitting ("Without
dropout, our network exhibits substantial overfitting. Dropout roughly doubles the number
of iterations required to converge.").

The CIFAR-sized AlexNet trains twice per seed with the same recipe, data, initialization
and budget, once with dropout 0.5 and once without. The overfitting gap is training
accuracy minus test accuracy, both measured in eval mode on centre crops: the training
accuracy on (a fixed part of) the images trained on, the test accuracy on the CIFAR-10
test split. The recipe is the paper's (lr 0.01, momentum 0.9, weight decay 5e-4); nothing
is chosen by looking at the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.papers.alexnet.experiments.common import (
    CifarNetConfig,
    cifar_trainer,
    error_rate,
    load_data,
)

PAPER = "Sec. 4.2: without dropout the network exhibits substantial overfitting"


@dataclass(frozen=True)
class DropoutConfig(CifarNetConfig):
    dropout: float = 0.5  # the paper's, on fc6's and fc7's outputs
    augment: bool = False  # crops, reflections and PCA colour while training
    eval_every: int = 0  # also measure the gap every this many steps (0: at the end only)
    final_window: int = 20  # final training loss: mean over the last this many steps

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.dropout < 1:
            raise ValueError("dropout must be in (0, 1): it is compared with no dropout")
        if self.eval_every < 0 or not 0 < self.final_window <= self.steps:
            raise ValueError("need eval_every ≥ 0 and 1 ≤ final_window ≤ steps")


def name(p: float) -> str:
    return "dropout" if p > 0 else "no_dropout"


def train_arm(run: Run, cfg: DropoutConfig, p: float, data) -> dict:
    net = cfg.net(dropout=p)
    model, opt, step = cifar_trainer(run, cfg, net, data, augmented=cfg.augment)
    x_train, y_train = data.train
    x_fit, y_fit = x_train[: cfg.eval_train_size], y_train[: cfg.eval_train_size]

    def evaluate(_: int) -> dict[str, float]:
        train_acc = 1 - error_rate(model, x_fit, y_fit, net.image_size)
        test_acc = 1 - error_rate(model, *data.test, net.image_size)
        return {"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc}

    history = fit(
        run,
        name(p),
        model=model,
        optimizer=opt,
        steps=cfg.steps,
        step=step,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        log_every=1,
    )
    final = history[-1]
    tail = [h["loss"] for h in history if h["step"] >= cfg.steps - cfg.final_window]
    return {
        "history": history,
        "train_acc": final["train_acc"],
        "test_acc": final["test_acc"],
        "gap": final["gap"],
        "final_loss": float(np.mean(tail)),
    }


def plot_curves(run: Run, arms: dict[str, dict]) -> None:
    """Training loss per step (left) and training/test accuracy at each evaluation (right)."""
    fig, (ax_loss, ax_acc) = plots.figure(ncols=2)
    for label, arm in arms.items():
        steps = [h["step"] for h in arm["history"]]
        k = max(1, len(steps) // 50)
        loss = np.convolve([h["loss"] for h in arm["history"]], np.ones(k) / k, mode="valid")
        line = ax_loss.plot(steps[k - 1 :], loss, lw=1.5, label=label)
        evals = [h for h in arm["history"] if "test_acc" in h]
        at = [h["step"] for h in evals]
        color = line[0].get_color()
        ax_acc.plot(at, [h["train_acc"] for h in evals], "o-", color=color, label=f"{label} train")
        ax_acc.plot(at, [h["test_acc"] for h in evals], "s--", color=color, label=f"{label} test")
    plots.draw_lines(ax_loss, {}, xlabel="iteration", ylabel="training loss (smoothed)")
    ax_loss.legend(loc="upper right")
    plots.draw_lines(ax_acc, {}, xlabel="iteration", ylabel="accuracy (centre crop)")
    ax_acc.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plots.save(fig, run.plot_path("dropout_gap.png"))


def run_dropout(run: Run, cfg: DropoutConfig) -> None:
    data = load_data(cfg.train_size, cfg.val_size, cfg.test_size)
    run.nets_total = 2
    arms = {name(p): train_arm(run, cfg, p, data) for p in (0.0, cfg.dropout)}
    for label, arm in arms.items():
        run.summary[label] = {k: arm[k] for k in ("train_acc", "test_acc", "gap", "final_loss")}
    plot_curves(run, arms)
    run.claim(
        "dropout_smaller_gap",
        f"with dropout {cfg.dropout:g} in fc6/fc7 the train − test accuracy gap is smaller "
        f"than without (by more than the seed-to-seed spread), same budget ({cfg.steps} steps)",
        PAPER,
        {"gap_dropout": arms["dropout"]["gap"], "gap_no_dropout": arms["no_dropout"]["gap"]},
        "gap_no_dropout > gap_dropout + spread",
    )
    run.report(
        "dropout_accuracies",
        "training and test accuracy (centre crop) with and without dropout",
        "Sec. 4.2: dropout stops overfitting, at ~2× the iterations to converge",
        {
            "train_acc_dropout": arms["dropout"]["train_acc"],
            "train_acc_no_dropout": arms["no_dropout"]["train_acc"],
            "test_acc_dropout": arms["dropout"]["test_acc"],
            "test_acc_no_dropout": arms["no_dropout"]["test_acc"],
        },
    )


SMOKE = DropoutConfig(
    channels=(8, 8, 16, 16, 8),
    hidden=32,
    steps=4,
    batch_size=16,
    train_size=128,
    test_size=64,
    eval_train_size=64,
    eval_every=2,
    final_window=2,
)
QUICK = DropoutConfig(
    steps=400,
    batch_size=64,
    train_size=2_000,
    test_size=2_000,
    eval_train_size=1_000,
    eval_every=200,
)
FULL = DropoutConfig(steps=40_000, eval_every=2_000, augment=True)

EXPERIMENT = Experiment(
    name="dropout",
    description="Sec. 4.2: train − test accuracy gap with and without dropout in fc6/fc7",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_dropout,
    quick_minutes=2.9,
    datasets=("cifar10",),
    quick_seeds=3,
)
