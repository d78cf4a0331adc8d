"""kNN vs a two-layer net vs a small convnet on the same CIFAR-10 images (assignments 1–2).

All three classifiers see the same training subset and are scored on the same held-out
test images; the networks' hyperparameters (learning rate, and the epoch through the
Solver's best-validation checkpoint) are chosen on a validation split taken from the
remaining training images, with the same grid and epoch budget for both networks; k is
chosen by cross-validation. The initial softmax loss of each classifier is checked
against ln 10 (notes: "Linear Classification", softmax; assignments' sanity checks).

Deviations: the networks train on the kNN's 5,000-image subset (the assignments train
them on 49,000) so that the comparison is at equal data and fits the time budget; inputs
are standardized (mean image subtracted, divided by one pixel std); Adam for both nets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.cs231n.experiments.common import (
    cifar_subsets,
    preprocess,
)
from sutskever30.papers.cs231n.experiments.knn import ASSIGNMENT_K, knn_test_accuracy
from sutskever30.papers.cs231n.layers import softmax_loss
from sutskever30.papers.cs231n.linear import LinearClassifier
from sutskever30.papers.cs231n.nets import ThreeLayerConvNet, TwoLayerNet
from sutskever30.papers.cs231n.solver import UPDATE_RULES, Solver

NETS = ("two_layer_net", "convnet")


@dataclass(frozen=True)
class NetsConfig:
    num_train: int = 5000
    num_val: int = 1000
    num_test: int = 500
    num_folds: int = 5  # kNN's cross-validation
    k_choices: tuple[int, ...] = ASSIGNMENT_K
    hidden_dim: int = 100  # both nets' fully connected hidden layer
    num_filters: int = 16
    filter_size: int = 5
    weight_scale: float = 1e-2
    reg: float = 1e-3
    update_rule: str = "adam"
    learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3)  # the same grid for both nets
    num_epochs: int = 10
    batch_size: int = 50
    lr_decay: float = 0.9
    num_train_samples: int = 1000  # training images scored after each epoch
    init_loss_tol: float = 0.01  # |initial softmax loss - ln 10|

    def __post_init__(self) -> None:
        if self.num_train < self.num_folds or self.num_val < 1 or self.num_test < 1:
            raise ValueError("need num_train ≥ num_folds, num_val ≥ 1 and num_test ≥ 1")
        if self.num_train + self.num_val > 50_000 or self.num_test > 10_000:
            raise ValueError("num_train + num_val must be ≤ 50000 and num_test ≤ 10000")
        if self.update_rule not in UPDATE_RULES:
            raise ValueError(f"update_rule must be one of {sorted(UPDATE_RULES)}")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ValueError("learning_rates must be a non-empty tuple of positive numbers")
        if self.filter_size % 2 == 0 or self.filter_size < 1:
            raise ValueError("filter_size must be odd")
        if min(self.hidden_dim, self.num_filters, self.num_epochs, self.batch_size) < 1:
            raise ValueError("hidden_dim, num_filters, num_epochs, batch_size must be ≥ 1")
        if self.weight_scale <= 0 or self.reg < 0 or not 0 < self.lr_decay <= 1:
            raise ValueError("need weight_scale > 0, reg ≥ 0 and 0 < lr_decay ≤ 1")
        if self.init_loss_tol <= 0:
            raise ValueError("init_loss_tol must be > 0")


def make_net(name: str, cfg: NetsConfig, rng: np.random.Generator):
    common = dict(weight_scale=cfg.weight_scale, reg=cfg.reg, hidden_dim=cfg.hidden_dim, rng=rng)
    if name == "two_layer_net":
        return TwoLayerNet(**common)
    return ThreeLayerConvNet(num_filters=cfg.num_filters, filter_size=cfg.filter_size, **common)


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 250) -> float:
    preds = [model.loss(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(preds) == y))


def initial_losses(data: dict[str, np.ndarray], cfg: NetsConfig, seed: int) -> dict[str, float]:
    """Softmax data loss at initialization on the training images: a linear classifier with
    W ~ 1e-4·N(0, 1) (the assignment's check) and both nets before training."""
    x, y = data["X_train"], data["y_train"]
    linear = LinearClassifier(
        loss="softmax", dim=x[0].size, num_classes=10, rng=np.random.default_rng(seed)
    )
    out = {"linear_softmax_init_loss": linear.loss(x.reshape(len(x), -1), y, 0.0)[0]}
    for name in NETS:
        net = make_net(name, cfg, np.random.default_rng(seed))
        scores = np.concatenate([net.loss(x[i : i + 250]) for i in range(0, len(x), 250)])
        out[f"{name}_init_loss"] = softmax_loss(scores.astype(np.float64), y)[0]
    return {k: float(v) for k, v in out.items()}


def train_grid(
    run: Run, name: str, data: dict[str, np.ndarray], cfg: NetsConfig, bar: Any
) -> dict[str, Any]:
    """Train one net per learning rate (same seed, same epochs); keep the one with the best
    validation accuracy and score it on the test images."""
    trials = []
    for lr in cfg.learning_rates:
        model = make_net(name, cfg, np.random.default_rng(run.seed))
        solver = Solver(
            model,
            data,
            update_rule=cfg.update_rule,
            optim_config={"learning_rate": lr},
            lr_decay=cfg.lr_decay,
            batch_size=cfg.batch_size,
            num_epochs=cfg.num_epochs,
            num_train_samples=cfg.num_train_samples,
            seed=run.seed,
            on_iteration=lambda it, loss: bar.update(1),
        ).train()
        trials.append({"lr": lr, "solver": solver, "val_acc": solver.best_val_acc})
        run.log({"key": name, "lr": lr, "best_val_acc": solver.best_val_acc})
        for epoch, (tr, va) in enumerate(
            zip(solver.train_acc_history, solver.val_acc_history, strict=True), start=1
        ):
            run.log({"key": f"{name}-lr{lr:g}", "epoch": epoch, "train_acc": tr, "val_acc": va})
    best = max(trials, key=lambda t: t["val_acc"])
    model = best["solver"].model
    return {
        "lr": best["lr"],
        "val_acc": best["val_acc"],
        "test_acc": accuracy(model, data["X_test"], data["y_test"]),
        "solver": best["solver"],
        "grid_val_acc": {f"{t['lr']:g}": t["val_acc"] for t in trials},
    }


def plot_curves(run: Run, results: dict[str, dict[str, Any]]) -> None:
    """The assignments' Solver plots: training loss per iteration, accuracy per epoch."""
    fig, (ax_loss, ax_acc) = plots.figure(ncols=2)
    for (name, res), color in zip(results.items(), ("tab:blue", "tab:orange"), strict=True):
        solver = res["solver"]
        loss = np.asarray(solver.loss_history)
        ax_loss.plot(loss, color=color, alpha=0.25, lw=0.6)
        k = max(1, solver.iterations_per_epoch // 4)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax_loss.plot(np.arange(len(smooth)) + k - 1, smooth, color=color, label=f"{name}")
        epochs = np.arange(1, len(solver.val_acc_history) + 1)
        ax_acc.plot(epochs, solver.train_acc_history, "--", color=color, label=f"{name} train")
        ax_acc.plot(epochs, solver.val_acc_history, "-o", ms=3, color=color, label=f"{name} val")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("loss (chosen learning rate)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("training (dashed) and validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")
    ax_acc.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    plots.save(fig, run.plot_path("training_curves.png"))


def tile(weights: np.ndarray) -> np.ndarray:
    """Filters (F, 3, h, w) as one RGB image grid, each filter scaled to [0, 1] on its own."""
    f, _, h, w = weights.shape
    cols = math.ceil(math.sqrt(f))
    rows = math.ceil(f / cols)
    grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, 3))
    for i in range(f):
        img = weights[i].transpose(1, 2, 0)
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = img
    return grid


def plot_filters(run: Run, results: dict[str, dict[str, Any]]) -> None:
    """First-layer weights as images: the convnet's filters and the two-layer net's W1
    columns (each a 32×32 colour template)."""
    conv_w1 = results["convnet"]["solver"].model.params["W1"]
    two_w1 = results["two_layer_net"]["solver"].model.params["W1"]  # (3072, H)
    two_imgs = two_w1.T.reshape(-1, 3, 32, 32)  # the preprocessed images are (3, 32, 32)
    fig, (ax_conv, ax_two) = plots.figure(ncols=2, height=4.6)
    ax_conv.imshow(tile(conv_w1), interpolation="nearest")
    ax_conv.set_title(f"convnet: first-layer filters ({conv_w1.shape[2]}×{conv_w1.shape[3]})")
    ax_two.imshow(tile(two_imgs), interpolation="nearest")
    ax_two.set_title("two-layer net: W1 as 32×32 images")
    for ax in (ax_conv, ax_two):
        ax.axis("off")
    plots.save(fig, run.plot_path("first_layer_weights.png"))


def run_nets(run: Run, cfg: NetsConfig) -> None:
    raw = cifar_subsets(cfg.num_train, cfg.num_val, cfg.num_test)
    knn = knn_test_accuracy(raw, cfg.k_choices, cfg.num_folds)
    data = preprocess(raw)
    init = initial_losses(data, cfg, run.seed)
    iters = cfg.num_epochs * max(cfg.num_train // cfg.batch_size, 1) * len(cfg.learning_rates)
    results = {}
    with run.progress(len(NETS) * iters, "two-layer net, convnet (lr grid)") as bar:
        for name in NETS:
            results[name] = train_grid(run, name, data, cfg, bar)
    for name, res in results.items():
        run.summary[name] = {k: v for k, v in res.items() if k != "solver"}
    run.summary["knn"] = {"best_k": knn["best_k"], "test_acc": knn["test_acc"]}
    run.summary["initial_losses"] = init
    plot_curves(run, results)
    plot_filters(run, results)

    run.claim(
        "initial_softmax_loss_ln10",
        f"with small random weights every classifier's initial softmax loss is ln 10 ≈ 2.303 "
        f"(within {cfg.init_loss_tol:g})",
        "notes/assignments: initial loss should be close to -ln(0.1) = 2.302",
        {**init, "tol": cfg.init_loss_tol},
        " and ".join(f"abs({k} - log(10)) < tol" for k in init),
    )
    knn_acc, two_acc = knn["test_acc"], results["two_layer_net"]["test_acc"]
    run.claim(
        "two_layer_net_beats_knn",
        f"a two-layer net beats kNN (k = {knn['best_k']} by CV) in test accuracy, same "
        f"{cfg.num_train} training and {cfg.num_test} test images (by more than the "
        "seed-to-seed spread of the gap)",
        "assignment 1: kNN ≈ 27–28% (5k), two-layer net > 48% (49k)",
        {"two_layer_net_test_acc": two_acc, "knn_test_acc": knn_acc},
        "two_layer_net_test_acc > knn_test_acc + spread",
    )
    run.claim(
        "convnet_beats_two_layer_net",
        "a small convnet (conv-ReLU-pool-affine-ReLU-affine) beats the two-layer net in test "
        "accuracy at equal data, grid and epochs (by more than the seed-to-seed spread of "
        "the gap)",
        "assignment 2: the three-layer convnet (~50–60%) above the fully connected nets",
        {"convnet_test_acc": results["convnet"]["test_acc"], "two_layer_net_test_acc": two_acc},
        "convnet_test_acc > two_layer_net_test_acc + spread",
    )


EXPERIMENT = Experiment(
    name="nets",
    description="kNN vs two-layer net vs small convnet, same CIFAR-10 subset (assignments 1-2)",
    presets={
        "smoke": NetsConfig(
            num_train=200,
            num_val=50,
            num_test=50,
            k_choices=(1, 3),
            num_filters=4,
            hidden_dim=20,
            learning_rates=(1e-3,),
            num_epochs=1,
        ),
        "quick": NetsConfig(),
        "full": NetsConfig(
            num_train=49_000,
            num_val=1_000,
            num_test=10_000,
            num_filters=32,
            filter_size=7,
            learning_rates=(1e-4, 3e-4, 1e-3, 3e-3),
            num_epochs=20,
        ),
    },
    run=run_nets,
    quick_minutes=3.0,
    datasets=("cifar10",),
    quick_seeds=3,
)
