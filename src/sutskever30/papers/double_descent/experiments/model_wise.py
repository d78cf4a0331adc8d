"""Model-wise double descent of small networks (Nakkiran et al. 2019; Belkin et al. 2019
Fig. 3), reported without a verdict.

Two-layer ReLU perceptrons of growing width on the same kind of noisy MNIST subset as the
random-features experiment (n images, a fraction of the labels flipped), each trained from
its own default initialization with the same recipe and budget: full-batch Adam on the
cross-entropy, no regularization, no early stopping. Test error (clean test split) and
training error (on the noisy labels) against the number of parameters, with Belkin et al.'s
threshold n·K marked: below it no net can fit all n·K targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.papers.double_descent.experiments.common import (
    CLASSES,
    MNIST_TEST,
    MNIST_TRAIN,
    NoisyMnist,
    generator,
    noisy_mnist,
)
from sutskever30.papers.double_descent.model import MLPFamily

WIDTHS = (2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 128)


@dataclass(frozen=True)
class ModelWiseConfig:
    n: int = 1_000
    noise: float = 0.2
    widths: tuple[int, ...] = WIDTHS
    steps: int = 3_000  # full-batch Adam steps (= epochs), the same for every width
    lr: float = 3e-3
    test_size: int = MNIST_TEST
    interpolated: float = 0.01  # a net "interpolates" below this training error
    log_every: int = 100

    def __post_init__(self) -> None:
        if not 2 <= self.n <= MNIST_TRAIN:
            raise ValueError(f"n must be in [2, {MNIST_TRAIN}]")
        if not 0 <= self.noise <= (CLASSES - 1) / CLASSES:
            raise ValueError("noise must be in [0, 0.9]")
        if not self.widths or list(self.widths) != sorted(set(self.widths)) or self.widths[0] < 1:
            raise ValueError("widths must be positive and increasing")
        if self.steps < 1 or self.lr <= 0 or self.log_every < 1:
            raise ValueError("steps, lr and log_every must be positive")
        if not 1 <= self.test_size <= MNIST_TEST:
            raise ValueError(f"test_size must be in [1, {MNIST_TEST}]")
        if not 0 < self.interpolated < 1:
            raise ValueError("interpolated must be in (0, 1)")


def trainer(run: Run, cfg: ModelWiseConfig, data: NoisyMnist):
    """The family of nets, its Adam optimizer and ``step(i)``: one full-batch update of every
    net (what ``fit`` runs and ``s30 bench`` times)."""
    nets = MLPFamily(widths=cfg.widths, classes=CLASSES, generator=generator(run.seed, 2))
    opt = torch.optim.Adam(nets.parameters(), lr=cfg.lr)
    x, y = data.x_train, data.y_train

    def step(i: int) -> dict[str, float]:
        loss = nets.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item() / len(cfg.widths)}  # mean cross-entropy per net

    return nets, opt, step


@torch.no_grad()
def errors(nets: MLPFamily, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Zero-one error of each net: (M,)."""
    return (nets(x).argmax(-1) != y[:, None]).double().mean(0).numpy()


def plot_sweep(run: Run, cfg: ModelWiseConfig, params: list[int], result: dict) -> None:
    threshold = cfg.n * CLASSES
    fig, (ax,) = plots.figure(width=5.5, height=4.2)
    plots.draw_lines(
        ax,
        {
            "test (clean labels)": (params, result["test_err"]),
            "train (noisy labels)": (params, result["train_err"]),
        },
        xlabel="parameters",
        ylabel="zero-one error",
        title=f"two-layer ReLU nets, MNIST n = {cfg.n}, {cfg.noise:.0%} label noise",
        logx=True,
        styles={"test (clean labels)": "C0o-", "train (noisy labels)": "C2s--"},
    )
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label="n·K parameters")
    ax.get_legend().remove()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    plots.save(fig, run.plot_path("model_wise.png"))


def run_model_wise(run: Run, cfg: ModelWiseConfig) -> None:
    data = noisy_mnist(n=cfg.n, noise=cfg.noise, val_size=0, test_size=cfg.test_size, seed=run.seed)
    nets, opt, step = trainer(run, cfg, data)
    fit(
        run,
        "mlp_family",
        model=nets,
        optimizer=opt,
        steps=cfg.steps,
        step=step,
        log_every=cfg.log_every,
    )
    params = nets.parameters_per_net()
    result = {
        "width": list(cfg.widths),
        "params": params,
        "train_err": errors(nets, data.x_train, data.y_train).tolist(),
        "test_err": errors(nets, data.x_test, data.y_test).tolist(),
    }
    run.summary["nets"] = result
    plot_sweep(run, cfg, params, result)

    test, train = np.array(result["test_err"]), np.array(result["train_err"])
    peak = int(test.argmax())
    fits = np.nonzero(train < cfg.interpolated)[0]
    first_fit = int(params[fits[0]]) if len(fits) else -1
    run.report(
        "model_wise_peak",
        f"two-layer ReLU nets of widths {cfg.widths[0]}–{cfg.widths[-1]} ({cfg.steps} "
        f"full-batch Adam steps, {cfg.noise:.0%} label noise): the parameter count of the "
        f"highest test error, beside the threshold n·K and the smallest net with training "
        f"error < {cfg.interpolated:g} (-1: none)",
        "Belkin et al. 2019 Fig. 3 (MNIST, n = 4·10³): peak at n·K = 4·10⁴ parameters; "
        "Nakkiran et al. 2019: peak where the nets start to interpolate",
        {
            "params_peak": params[peak],
            "test_err_peak": float(test[peak]),
            "threshold_nK": cfg.n * CLASSES,
            "first_interpolating_params": first_fit,
            "test_err_smallest": float(test[0]),
            "test_err_largest": float(test[-1]),
        },
    )


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's family of nets, one full-batch step of all widths."""
    cfg = QUICK
    data = noisy_mnist(n=cfg.n, noise=cfg.noise, val_size=0, test_size=1, seed=run.seed)
    nets, opt, step = trainer(run, cfg, data)
    return [BenchCase(f"model_wise {len(cfg.widths)} MLPs", nets, opt, step, cfg.n)]


SMOKE = ModelWiseConfig(n=200, widths=(2, 8, 32), steps=20, test_size=500, log_every=5)
QUICK = ModelWiseConfig()
# Belkin et al. Fig. 3: n = 4·10³ MNIST images, nets up to ~10⁵ parameters, 6000 epochs.
FULL = ModelWiseConfig(
    n=4_000, widths=(4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 100, 128, 256), steps=6_000
)

EXPERIMENT = Experiment(
    name="model_wise",
    description="two-layer ReLU nets of growing width on noisy MNIST: test error vs params",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_model_wise,
    quick_minutes=1.4,  # estimate from CPU time (README: Runtime); the lead re-times
    datasets=("mnist",),
)
