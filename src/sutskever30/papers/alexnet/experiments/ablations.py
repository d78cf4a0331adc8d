"""Secs. 3.3, 3.4 and 4.1: what local response normalization, overlapping pooling and data
augmentation are worth, reported beside the paper's deltas (not asserted: the paper's are
ImageNet top-1/top-5 differences of 0.3–1.4 points, below what one short CIFAR-10 run
resolves).

The CIFAR-sized AlexNet trains once as the paper builds it (LRN, 3/2 max-pooling, random
crops + reflections + PCA colour, dropout) and once with each piece taken out, with the
same recipe, initialization seed and budget. Test error is the paper's test procedure:
the softmax averaged over ten crops (four corners, centre, and their reflections); the
paper network's centre-crop error is reported beside it.
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

# arm → (what is taken out, the paper's effect of keeping it)
ARMS = {
    "paper": ("nothing", "-"),
    "no_lrn": (
        "local response normalization",
        "Sec. 3.3: LRN lowers top-1/top-5 error by 1.4/1.2 points (ImageNet); a four-layer "
        "CIFAR-10 net: 13% test error without, 11% with",
    ),
    "no_overlap": (
        "overlapping pooling (3/2 → 2/2, maps of the same size)",
        "Sec. 3.4: overlapping pooling lowers top-1/top-5 error by 0.4/0.3 points",
    ),
    "no_augment": (
        "all augmentation (centre crops only)",
        "Sec. 4.1: without crops and reflections the network 'suffers from substantial "
        "overfitting'",
    ),
    "no_pca": (
        "the PCA colour shift (crops and reflections kept)",
        "Sec. 4.1: PCA colour augmentation lowers top-1 error by over 1 point",
    ),
}


@dataclass(frozen=True)
class AblationConfig(CifarNetConfig):
    arms: tuple[str, ...] = tuple(ARMS)
    final_window: int = 20  # final training error: mean over the last this many steps

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or "paper" not in self.arms:
            raise ValueError(f"arms must include 'paper' and come from {list(ARMS)}")
        if not 0 < self.final_window <= self.steps:
            raise ValueError("final_window must be in [1, steps]")


def train_arm(run: Run, cfg: AblationConfig, arm: str, data) -> dict:
    net = cfg.net(lrn=arm != "no_lrn", overlapping_pool=arm != "no_overlap")
    model, opt, step = cifar_trainer(
        run, cfg, net, data, augmented=arm != "no_augment", pca=arm != "no_pca"
    )
    history = fit(run, arm, model=model, optimizer=opt, steps=cfg.steps, step=step, log_every=1)
    tail = [h["train_err"] for h in history if h["step"] >= cfg.steps - cfg.final_window]
    return {
        "history": history,
        "train_err": float(np.mean(tail)),
        "test_err": error_rate(model, *data.test, net.image_size, ten_crop=True),
        "test_err_centre": error_rate(model, *data.test, net.image_size),
    }


def plot_errors(run: Run, results: dict[str, dict]) -> None:
    """Final training error (augmented minibatches) and ten-crop test error per arm."""
    fig, (ax,) = plots.figure(width=6.0)
    names = list(results)
    x = np.arange(len(names))
    ax.bar(
        x - 0.2,
        [100 * results[n]["train_err"] for n in names],
        0.4,
        label="training (minibatches, dropout on)",
    )
    ax.bar(x + 0.2, [100 * results[n]["test_err"] for n in names], 0.4, label="test (10 crops)")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("error (%)")
    ax.set_title("CIFAR-sized AlexNet, one piece taken out at a time")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plots.save(fig, run.plot_path("ablations.png"))


def run_ablations(run: Run, cfg: AblationConfig) -> None:
    data = load_data(cfg.train_size, cfg.val_size, cfg.test_size)
    run.nets_total = len(cfg.arms)
    results = {arm: train_arm(run, cfg, arm, data) for arm in cfg.arms}
    for arm, r in results.items():
        run.summary[arm] = {k: r[k] for k in ("train_err", "test_err", "test_err_centre")}
    plot_errors(run, results)
    base = results["paper"]
    run.report(
        "paper_net",
        f"the CIFAR-sized network as the paper builds it, {cfg.steps} steps: test error "
        "(%) with ten-crop averaging and with the centre crop alone",
        "Sec. 4.1: test predictions average the softmax over ten patches",
        {
            "test_err_pct": 100 * base["test_err"],
            "test_err_centre_pct": 100 * base["test_err_centre"],
            "train_err_pct": 100 * base["train_err"],
        },
    )
    for arm in cfg.arms:
        if arm == "paper":
            continue
        what, paper = ARMS[arm]
        r = results[arm]
        run.report(
            arm,
            f"without {what}: test error (%, ten crops) and its change from the paper's "
            "network (positive: the piece helps)",
            paper,
            {
                "test_err_pct": 100 * r["test_err"],
                "delta_pct": 100 * (r["test_err"] - base["test_err"]),
                "train_err_pct": 100 * r["train_err"],
            },
        )


SMOKE = AblationConfig(
    channels=(8, 8, 16, 16, 8),
    hidden=32,
    steps=3,
    batch_size=16,
    train_size=128,
    test_size=32,
    eval_train_size=32,
    arms=("paper", "no_lrn"),
    final_window=2,
)
QUICK = AblationConfig(
    steps=150,
    batch_size=64,
    train_size=10_000,
    test_size=500,
    arms=("paper", "no_lrn", "no_overlap", "no_augment"),
)
FULL = AblationConfig(steps=40_000)

EXPERIMENT = Experiment(
    name="ablations",
    description="Secs. 3.3-4.1: LRN, overlapping pooling, augmentation taken out one at a time",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_ablations,
    quick_minutes=1.0,
    datasets=("cifar10",),
)
