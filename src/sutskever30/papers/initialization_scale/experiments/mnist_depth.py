"""(b) Trainability vs initialization gain: a 20-layer ReLU MLP trained on MNIST from gains
0.25× to 2× He, every gain with the same recipe and budget (SGD lr 0.01, momentum 0.9,
batch 128, 600 steps). Small gains stay at chance (the signal and the gradient decay), large
ones explode (the loss diverges), and a band around 1× He trains.

A net whose loss becomes non-finite stops there (``DivergenceError``) and is scored as it is:
an output with a non-finite logit is never a correct prediction.

Deviations from the paper: the interview states no experiment; the network, the recipe (not
tuned per gain), the gains and the thresholds are ours (README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.errors import DivergenceError
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.papers.initialization_scale.experiments.common import HE, mnist
from sutskever30.papers.initialization_scale.model import DeepMLP, MLPConfig

LN10 = math.log(10.0)  # cross-entropy of a uniform guess over 10 classes
# Gains 2^(k/4) × He from 0.25× to 2×, denser near 1×.
SWEEP = tuple(round(2 ** (k / 4), 3) for k in (-8, -6, -4, -3, -2, -1, 0, 1, 2, 4))


@dataclass(frozen=True)
class MnistConfig:
    depth: int = 20
    width: int = 256
    scales: tuple[float, ...] = SWEEP  # gain = scale · sqrt(2); He is 1.0
    steps: int = 600
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    train_size: int = 50_000
    test_size: int = 10_000
    eval_every: int = 200
    final_window: int = 50  # final training loss = mean over the last this many steps
    target_acc: float = 0.90  # the claims' thresholds, fixed before measuring
    chance_band: float = 0.05  # 0.5× He: final loss within this of ln 10
    sweet_band: tuple[float, float] = (0.7, 1.42)  # the interior band around 1× He
    fail_acc: float = 0.2  # the sweep's ends "fail": test accuracy below this (chance 0.1)

    def __post_init__(self) -> None:
        MLPConfig(depth=self.depth, width=self.width)
        if not {0.5, 1.0} <= set(self.scales):
            raise ValueError("scales must contain 1.0 (He) and 0.5 (the claims compare them)")
        lo, hi = self.sweet_band
        if not min(self.scales) < lo <= 1.0 <= hi < max(self.scales):
            raise ValueError("sweet_band must hold 1.0 and lie strictly inside the scales' range")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")
        if not 0 < self.final_window <= self.steps:
            raise ValueError("final_window must be in [1, steps]")
        if not 0 < self.train_size <= 50_000 or not 0 < self.test_size <= 10_000:
            raise ValueError("train_size must be in [1, 50000] and test_size in [1, 10000]")


def key(scale: float) -> str:
    """A measured name for a gain: 0.354 → ``acc_0p354``."""
    return "acc_" + f"{scale:g}".replace(".", "p")


@torch.no_grad()
def scores(net: DeepMLP, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Test loss and accuracy; a row with a non-finite logit counts as wrong."""
    logits = net(x)
    right = (logits.argmax(1) == y) & logits.isfinite().all(1)
    return {
        "test_loss": float(F.cross_entropy(logits, y)),
        "test_acc": float(right.float().mean()),
    }


def trainer(run: Run, cfg: MnistConfig, scale: float, x_train, y_train):
    """The net at ``scale`` × He, its SGD optimizer and ``step(i)``: one update on the i-th
    minibatch (what ``fit`` runs and ``s30 bench`` times)."""
    torch.manual_seed(run.seed)
    net = DeepMLP(config=MLPConfig(depth=cfg.depth, width=cfg.width, gain=scale * HE))
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return net, opt, step


def train_gain(run: Run, cfg: MnistConfig, scale: float, data) -> dict:
    """Train one gain; return its loss curve, final training loss (None if it diverged),
    the step it diverged at (None if it did not) and its test scores."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    net, opt, step = trainer(run, cfg, scale, x_train, y_train)
    seen: list[tuple[int, float]] = []  # every step's loss: where a divergence happened

    def watched(i: int) -> dict[str, float]:
        out = step(i)
        seen.append((i, out["loss"]))
        return out

    diverged_at = None
    try:
        history = fit(
            run,
            f"scale{scale:g}",
            model=net,
            optimizer=opt,
            steps=cfg.steps,
            step=watched,
            evaluate=lambda i: scores(net, x_test, y_test),
            eval_every=cfg.eval_every,
        )
    except DivergenceError as err:
        run.info(str(err))
        history, diverged_at = [], seen[-1][0]
    if diverged_at is None:
        curve = [(h["step"], h["loss"]) for h in history if "loss" in h]  # every 10 steps
        train_loss = float(np.mean([v for i, v in curve if i >= cfg.steps - cfg.final_window]))
    else:
        curve, train_loss = [(i, v) for i, v in seen if math.isfinite(v)], None
    result = {"scale": scale, "curve": curve, "train_loss": train_loss, "diverged_at": diverged_at}
    result.update(scores(net, x_test, y_test))
    run.info(f"{scale:g}× He: test accuracy {result['test_acc']:.4f}")
    return result


def depth_claims(run: Run, cfg: MnistConfig, by: dict[float, dict]) -> None:
    """He trains; half of He stays at chance (the sweep's two named points)."""
    he, small = by[1.0], by[0.5]
    run.claim(
        "he_trains",
        f"{cfg.depth}-layer ReLU MLP from He init reaches test accuracy > {cfg.target_acc:g}",
        "deep nets train once the init scale is right",
        {"test_acc": he["test_acc"], "target": cfg.target_acc},
        "test_acc > target",
    )
    run.claim(
        "small_gain_stuck",
        f"the same net from 0.5× He init stays at chance: final training loss within "
        f"{cfg.chance_band:g} of ln 10 = {LN10:.4f}",
        "10-layer nets were believed untrainable; the mistake was the init scale",
        {
            "final_train_loss": small["train_loss"],
            "test_acc": small["test_acc"],
            "ln10": LN10,
            "band": cfg.chance_band,
        },
        "abs(final_train_loss - ln10) < band",
    )


def sweep_claims(run: Run, cfg: MnistConfig, by: dict[float, dict]) -> None:
    """The trainability curve: the best gains lie in the band, both ends fail."""
    lo, hi = cfg.sweet_band
    acc = {key(s): r["test_acc"] for s, r in sorted(by.items())}
    inside = [key(s) for s in sorted(by) if lo <= s <= hi]
    outside = [key(s) for s in sorted(by) if not lo <= s <= hi]
    best = "max(" + ", ".join(inside) + ")" if len(inside) > 1 else inside[0]
    rest = "max(" + ", ".join(outside) + ")" if len(outside) > 1 else outside[0]
    run.claim(
        "sweet_spot",
        f"trainability vs gain ({min(by):g}×–{max(by):g}× He, one recipe for all): the best "
        f"test accuracy inside {lo:g}×–{hi:g}× He beats the best outside it by more than the "
        "seed-to-seed spread",
        "a 'sweet spot' where the random matrices' eigenvalues are 'around one'",
        acc,
        f"{best} > {rest} + spread",
    )
    ends = {"acc_smallest": by[min(by)]["test_acc"], "acc_largest": by[max(by)]["test_acc"]}
    run.claim(
        "both_ends_fail",
        f"both ends of the sweep fail: test accuracy below {cfg.fail_acc:g} (chance 0.1) at "
        f"{min(by):g}× He (the signal decays) and at {max(by):g}× He (it explodes)",
        "too small: no gradient can 'latch on'; too large: it explodes",
        {**ends, "fail_acc": cfg.fail_acc},
        "acc_smallest < fail_acc and acc_largest < fail_acc",
    )


def _gain_axis(ax, scales: list[float]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(scales, [f"{s:g}" for s in scales], rotation=60, fontsize=7)
    ax.minorticks_off()


def plot_sweep(run: Run, cfg: MnistConfig, nets: list[dict]) -> None:
    """Loss curves of every gain; final training loss and test accuracy against the gain."""
    scales = [n["scale"] for n in nets]
    fig, (ax_curve, ax_loss, ax_acc) = plots.figure(ncols=3)
    plots.draw_lines(
        ax_curve,
        {f"{n['scale']:g}× He": tuple(zip(*n["curve"], strict=True)) for n in nets if n["curve"]},
        xlabel="step",
        ylabel="training loss",
        title=f"{cfg.depth}-layer ReLU MLP on MNIST (diverging gains leave the top)",
        logy=True,
    )
    ax_curve.axhline(LN10, color="gray", linestyle=":", linewidth=1)
    ax_curve.set_ylim(top=10 * LN10)
    trained = [n for n in nets if n["diverged_at"] is None]
    label = "final training loss"
    plots.draw_lines(
        ax_loss,
        {label: ([n["scale"] for n in trained], [n["train_loss"] for n in trained])},
        xlabel="gain (× He)",
        ylabel=label,
        title="x: diverged (non-finite loss); dotted: ln 10",
        styles={label: "o-"},
    )
    ax_loss.axhline(LN10, color="gray", linestyle=":", linewidth=1)
    top = max([LN10, *(n["train_loss"] for n in trained)]) * 1.1
    for n in (n for n in nets if n["diverged_at"] is not None):
        ax_loss.plot([n["scale"]], [top], "rx", markersize=8)
    _gain_axis(ax_loss, scales)
    label = "test accuracy"
    plots.draw_lines(
        ax_acc,
        {label: (scales, [n["test_acc"] for n in nets])},
        xlabel="gain (× He)",
        ylabel=label,
        title=f"shaded: the band {cfg.sweet_band[0]:g}×–{cfg.sweet_band[1]:g}×; dotted: chance",
        styles={label: "o-"},
    )
    ax_acc.axvspan(*cfg.sweet_band, color="C2", alpha=0.15)
    ax_acc.axhline(0.1, color="gray", linestyle=":", linewidth=1)
    _gain_axis(ax_acc, scales)
    plots.save(fig, run.plot_path("trainability_vs_gain.png"))


def run_mnist(run: Run, cfg: MnistConfig) -> None:
    data = mnist(cfg.train_size, cfg.test_size)
    nets = [train_gain(run, cfg, scale, data) for scale in sorted(cfg.scales)]
    by = {n["scale"]: n for n in nets}
    run.summary["by_gain"] = {
        f"{n['scale']:g}": {k: n[k] for k in ("test_acc", "train_loss", "diverged_at")}
        for n in nets
    }
    depth_claims(run, cfg, by)
    sweep_claims(run, cfg, by)
    plot_sweep(run, cfg, nets)


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's network at 1× He (every gain runs the same step; the diverging
    ones would stop the timing loop)."""
    cfg = QUICK
    x_train, y_train = mnist(cfg.train_size, 1)["train"]
    net, opt, step = trainer(run, cfg, 1.0, x_train, y_train)
    return [BenchCase(f"mnist_depth {cfg.depth}x{cfg.width}", net, opt, step, cfg.batch_size)]


SMOKE = MnistConfig(
    depth=4,
    width=32,
    scales=(0.25, 0.5, 1.0, 4.0),
    steps=20,
    eval_every=10,
    final_window=10,
    test_size=500,
)
QUICK = MnistConfig()
FULL = MnistConfig(depth=30, width=512, steps=10_000, eval_every=1_000)

EXPERIMENT = Experiment(
    name="mnist_depth",
    description="20-layer ReLU MLP on MNIST, gains 0.25×–2× He: the trainability curve",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_mnist,
    quick_minutes=2.0,
    datasets=("mnist",),
    quick_seeds=3,
)
