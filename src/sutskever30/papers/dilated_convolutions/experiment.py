"""Yu & Koltun's context module: its receptive field (Table 1), and what dilation and
identity initialization buy on a dense-labelling task that needs context.

``receptive_field``: the gradient of one output pixel of the context module with respect
to its input is non-zero on exactly a 67×67 square (Table 1), 15×15 for the undilated
stack with the same weights.

``context``: per-pixel digit classes on canvases of scattered MNIST digits (``task.py``).
A small front end (four 3×3 layers: receptive field 9, under half a digit) is trained
until every digit class scores positive on its digits, then scores every pixel; three
context modules are trained on its frozen scores with the same budget: the dilated basic
module with identity initialization (the paper's), the same weights undilated (an
equal-parameter stack with a 15×15 receptive field), and the dilated module with standard
random initialization. Test mIoU is measured on canvases of MNIST's test digits.

Deviations from the paper (README: Deviations): MNIST canvases instead of Pascal VOC, a
small front end instead of VGG-16, Adam instead of SGD, a few hundred steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.papers.dilated_convolutions.model import (
    DILATIONS,
    TABLE1_RECEPTIVE_FIELD,
    UNDILATED,
    ContextModule,
    count_parameters,
    count_weights,
    input_gradient,
    large_widths,
    positive_weights_,
    receptive_field,
)
from sutskever30.papers.dilated_convolutions.task import BACKGROUND, N_CLASSES, mean_iou
from sutskever30.papers.dilated_convolutions.training import (
    ARMS,
    evaluate,
    frontend_trainer,
    load_data,
    module_trainer,
    predict,
)

# Table 3/4 of the paper, Pascal VOC 2012 test mIoU (%), and the module's gain.
PAPER_VOC = (
    "VOC-2012 test mIoU: front end 67.6 vs FCN-8s 62.2 and DeepLab 62.1; context module +1.5–2"
)

# -- receptive field ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveFieldConfig:
    C: int = 11  # channels of the basic module (the receptive field does not depend on it)
    large_C: int = 2  # C of the large module (widths 2C … 32C)
    size: int = 99  # input side; must hold the 67×67 field around the centre pixel

    def __post_init__(self) -> None:
        if self.C < 1 or self.large_C < 1:
            raise ValueError("C and large_C must be ≥ 1")
        if self.size < TABLE1_RECEPTIVE_FIELD[-1] + 2 or self.size % 2 == 0:
            raise ValueError("size must be odd and ≥ 69, so the 67×67 field fits with a border")


def measure_field(net: torch.nn.Module, channels: int, size: int) -> dict[str, object]:
    grad = input_gradient(net, channels=channels, size=size)
    height, width = receptive_field(grad > 0)
    return {"height": height, "width": width, "support": int((grad > 0).sum()), "grad": grad}


def run_receptive_field(run: Run, cfg: ReceptiveFieldConfig) -> None:
    gen = torch.Generator().manual_seed(run.seed)
    dilated = positive_weights_(ContextModule(C=cfg.C), generator=gen)
    undilated = positive_weights_(ContextModule(C=cfg.C, dilations=UNDILATED), generator=gen)
    large = positive_weights_(
        ContextModule(C=cfg.large_C, widths=large_widths(cfg.large_C)), generator=gen
    )
    basic = measure_field(dilated, cfg.C, cfg.size)
    plain = measure_field(undilated, cfg.C, cfg.size)
    big = measure_field(large, cfg.large_C, cfg.size)
    per_layer = [
        measure_field(dilated.prefix(n), cfg.C, cfg.size)["height"]
        for n in range(1, len(DILATIONS) + 2)
    ]
    run.summary.update(
        {
            "rf_after_layer": per_layer,
            "basic": {k: v for k, v in basic.items() if k != "grad"},
            "undilated": {k: v for k, v in plain.items() if k != "grad"},
            "large": {k: v for k, v in big.items() if k != "grad"},
            "weights_basic": count_weights(dilated),
            "weights_undilated": count_weights(undilated),
        }
    )
    run.claim(
        "receptive_field_67",
        "the basic context module's centre output has a non-zero gradient on exactly a "
        "67×67 square of its input (every pixel of it)",
        "Table 1: receptive field 67×67 after the dilations 1,1,2,4,8,16,1 and the 1×1 layer",
        {"rf_height": basic["height"], "rf_width": basic["width"], "support": basic["support"]},
        "rf_height == 67 and rf_width == 67 and support == 67 ** 2",
    )
    rule = " and ".join(f"rf_after_layer[{i}] == {r}" for i, r in enumerate(TABLE1_RECEPTIVE_FIELD))
    run.claim(
        "receptive_field_per_layer",
        "receptive field after each of the eight layers, measured by gradients",
        "Table 1: 3, 5, 9, 17, 33, 65, 67, 67",
        {"rf_after_layer": per_layer},
        rule,
    )
    run.claim(
        "large_module_67",
        "the large module (widths 2C … 32C, C) has the same 67×67 receptive field",
        "Table 1: the two modules differ only in width",
        {"rf_height": big["height"], "rf_width": big["width"], "support": big["support"]},
        "rf_height == 67 and rf_width == 67 and support == 67 ** 2",
    )
    run.claim(
        "undilated_15",
        "the same seven 3×3 layers undilated (equal weights) see only 15×15",
        "seven 3×3 layers: 1 + 7·2 = 15",
        {"rf_height": plain["height"], "rf_width": plain["width"], "support": plain["support"]},
        "rf_height == 15 and rf_width == 15 and support == 15 ** 2",
    )
    plot_fields(run, basic["grad"], plain["grad"])


def plot_fields(run: Run, dilated: torch.Tensor, undilated: torch.Tensor) -> None:
    fig, axes = plots.figure(ncols=2, width=4.4, height=4.0)
    for ax, grad, title in (
        (axes[0], dilated, "dilated 1,1,2,4,8,16,1"),
        (axes[1], undilated, "undilated (all 1)"),
    ):
        logged = np.where(grad > 0, np.log10(grad.clamp(min=1e-300).numpy()), np.nan)
        image = ax.imshow(logged, cmap="viridis")
        h, w = receptive_field(grad > 0)
        ax.set_title(f"{title}: {h}×{w}")
        ax.set_xlabel("input column")
        ax.set_ylabel("input row")
        fig.colorbar(image, ax=ax, fraction=0.046, label="log10 |∂y_centre / ∂x|")
    plots.save(fig, run.plot_path("receptive_field.png"))


# -- the dense-labelling task --------------------------------------------------------------


@dataclass(frozen=True)
class ContextConfig:
    canvas: int = 64  # side of a canvas (the paper's front end outputs 64×64 score maps)
    digits: int = 4  # MNIST digits per canvas
    ink: float = 0.5  # a pixel brighter than this belongs to its digit
    val_canvases: int = 500  # from MNIST's validation digits, for choosing hyperparameters
    test_canvases: int = 1000  # from MNIST's test digits
    batch_size: int = 16
    frontend_width: int = 16
    frontend_depth: int = 4  # 3×3 layers: receptive field 2·depth + 1 = 9, half a digit
    frontend_steps: int = 5000
    frontend_lr: float = 1e-3
    module: str = "basic"  # or "large" (Table 1)
    module_steps: int = 20_000
    # Adam learning rate of each arm, in the order of ``training.ARMS`` (dilated identity,
    # undilated identity, dilated random); each chosen on validation canvases (README)
    module_lrs: tuple[float, ...] = (1e-3, 1e-3, 1e-3)
    identity_noise: float = 0.01  # σ / (C / c_{i+1}) of Eq. 5 (large module only)

    def __post_init__(self) -> None:
        if self.canvas < 32:
            raise ValueError("canvas must be ≥ 32 pixels (digits are 28×28)")
        if not 1 <= self.digits <= (self.canvas // 20) ** 2:
            raise ValueError(f"digits must be in [1, {(self.canvas // 20) ** 2}] for this canvas")
        if not 0 < self.ink < 1:
            raise ValueError("ink must be in (0, 1)")
        if min(self.val_canvases, self.test_canvases, self.batch_size) < 1:
            raise ValueError("val_canvases, test_canvases and batch_size must be ≥ 1")
        if min(self.frontend_width, self.frontend_depth) < 1:
            raise ValueError("frontend_width and frontend_depth must be ≥ 1")
        if min(self.frontend_steps, self.module_steps) < 1:
            raise ValueError("frontend_steps and module_steps must be ≥ 1")
        if len(self.module_lrs) != len(ARMS):
            raise ValueError(f"module_lrs needs one learning rate for each of {len(ARMS)} arms")
        if min(self.frontend_lr, *self.module_lrs) <= 0 or self.identity_noise < 0:
            raise ValueError("learning rates must be > 0 and identity_noise ≥ 0")
        if self.module not in ("basic", "large"):
            raise ValueError(f"module must be 'basic' or 'large', got {self.module!r}")


def train_frontend(run: Run, cfg: ContextConfig, data) -> tuple[torch.nn.Module, list]:
    model, opt, step = frontend_trainer(run, cfg, data)

    def val(_: int) -> dict[str, float]:
        return {"val_miou": mean_iou(evaluate(model, None, data["val"]).sum(0))}

    history = fit(
        run,
        "frontend",
        model=model,
        optimizer=opt,
        steps=cfg.frontend_steps,
        step=step,
        evaluate=val,
        log_every=10,
    )
    return model, history


def train_modules(run: Run, cfg: ContextConfig, data, frontend) -> dict[str, dict]:
    out = {}
    for arm in ARMS:
        module, opt, step = module_trainer(run, cfg, data, frontend, arm)

        def val(_: int, module=module) -> dict[str, float]:
            return {"val_miou": mean_iou(evaluate(frontend, module, data["val"]).sum(0))}

        history = fit(
            run,
            arm.name,
            model=module,
            optimizer=opt,
            steps=cfg.module_steps,
            step=step,
            evaluate=val,
            log_every=10,
        )
        out[arm.name] = {"module": module, "history": history}
    return out


@torch.no_grad()
def live_score_maps(frontend: torch.nn.Module, canvases, bs: int = 100) -> int:
    """How many of the front end's digit-score maps are positive somewhere on the canvases.
    A map that is negative everywhere is zero after the identity-initialized module's first
    truncation, and stays dead: max(·, 0) passes it no gradient."""
    frontend.eval()
    x = canvases[0]
    device = next(frontend.parameters()).device
    live = torch.zeros(N_CLASSES, dtype=torch.bool)
    for i in range(0, len(x), bs):
        scores = frontend(x[i : i + bs].to(device)).cpu()  # (B, C, H, W)
        live |= (scores > 0).flatten(2).any(dim=2).any(dim=0)
    return int(live[:BACKGROUND].sum())


@torch.no_grad()
def positive_on_own_digits(frontend: torch.nn.Module, canvases, bs: int = 100) -> list[float]:
    """For each digit class k: the fraction of the pixels labelled k on which the front
    end's score for k is positive, i.e. on which map k survives the module's first
    truncation where it matters."""
    frontend.eval()
    x, y = canvases
    device = next(frontend.parameters()).device
    hits = torch.zeros(BACKGROUND)
    for i in range(0, len(x), bs):
        scores = frontend(x[i : i + bs].to(device)).cpu()  # (B, C, H, W)
        target = y[i : i + bs]  # (B, H, W)
        own = scores.gather(1, target[:, None]).squeeze(1)  # (B, H, W) score of the true class
        digit = target < BACKGROUND
        hits += torch.bincount(target[digit & (own > 0)], minlength=N_CLASSES)[:BACKGROUND]
    totals = torch.bincount(y[y < BACKGROUND], minlength=N_CLASSES)[:BACKGROUND]
    return (hits / totals.clamp(min=1)).tolist()


def context_claims(run: Run, miou: dict[str, float]) -> None:
    run.claim(
        "dilated_beats_undilated",
        "test mIoU: the dilated basic module beats the undilated stack with as many weights "
        "(both identity-initialized; by more than the seed-to-seed spread of the gap)",
        "Sec. 3: dilation aggregates multi-scale context without losing resolution",
        {"miou_dilated": miou["dilated_identity"], "miou_undilated": miou["undilated_identity"]},
        "miou_dilated > miou_undilated + spread",
    )
    run.claim(
        "identity_beats_random",
        "test mIoU: identity initialization beats standard random (He) initialization of "
        "the dilated module (by more than the seed-to-seed spread of the gap)",
        "Sec. 3: standard initialization procedures did not readily support training the module",
        {"miou_identity": miou["dilated_identity"], "miou_random": miou["dilated_random"]},
        "miou_identity > miou_random + spread",
    )
    run.report(
        "context_gain",
        "test mIoU of the front end alone and with the dilated module on top",
        PAPER_VOC,
        {"miou_frontend": miou["frontend"], "miou_with_module": miou["dilated_identity"]},
    )


def run_context(run: Run, cfg: ContextConfig) -> None:
    run.nets_total = 1 + len(ARMS)
    data = load_data(cfg)
    frontend, fe_history = train_frontend(run, cfg, data)
    trained = train_modules(run, cfg, data, frontend)
    cms = {"frontend": evaluate(frontend, None, data["test"])}
    cms.update({name: evaluate(frontend, t["module"], data["test"]) for name, t in trained.items()})
    miou = {name: mean_iou(cm.sum(0)) for name, cm in cms.items()}
    histories = {"frontend": fe_history, **{n: t["history"] for n, t in trained.items()}}
    for name, hist in histories.items():
        module = trained[name]["module"] if name in trained else frontend
        run.summary[name] = {
            "test_miou": miou[name],
            "val_miou": hist[-1]["val_miou"],
            "final_loss": hist[-1]["loss"],
            "parameters": count_parameters(module),
        }
    context_claims(run, miou)
    run.report(
        "live_digit_maps",
        "digit-score maps of the front end that are positive somewhere on the validation "
        "canvases (of 10; the rest are dead under identity init and truncation), and the "
        "smallest fraction, over the ten digit classes, of a class's pixels on which its "
        "own score is positive",
        "- (the paper's VGG front end is far stronger)",
        {
            "live_digit_maps": live_score_maps(frontend, data["val"]),
            "min_positive_on_own": min(positive_on_own_digits(frontend, data["val"])),
        },
    )
    plot_predictions(run, frontend, trained, data["test"])
    plot_miou(run, cms)
    plots.line_plot(
        run.plot_path("training_loss.png"),
        {
            n: ([h["step"] for h in hist], [h["loss"] for h in hist])
            for n, hist in histories.items()
        },
        xlabel="step",
        ylabel="per-pixel cross-entropy",
        title="training loss (modules: on the frozen front end)",
        logy=True,
    )


# -- plots ---------------------------------------------------------------------------------

CLASS_COLOURS = ListedColormap([*plt.get_cmap("tab10").colors, (0.0, 0.0, 0.0)])


def plot_predictions(run: Run, frontend, trained: dict[str, dict], test, index: int = 0) -> None:
    """One test canvas: input, ground truth, the front end's and each module's labels."""
    x, y = test
    x1 = x[index : index + 1]
    panels = [("input", x1[0, 0]), ("ground truth", y[index])]
    panels.append(("front end", predict(frontend, None, x1)[0]))
    panels += [
        (arm.label.replace("\n", " "), predict(frontend, trained[arm.name]["module"], x1)[0])
        for arm in ARMS
    ]
    fig, axes = plots.figure(ncols=len(panels), width=2.6, height=3.0)
    for ax, (title, image) in zip(axes, panels, strict=True):
        if title == "input":
            ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            shown = ax.imshow(image.numpy(), cmap=CLASS_COLOURS, vmin=-0.5, vmax=N_CLASSES - 0.5)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, ax=axes, fraction=0.02, ticks=range(N_CLASSES))
    bar.ax.set_yticklabels([*(str(d) for d in range(BACKGROUND)), "bg"])
    bar.set_label("class")
    fig.savefig(run.plot_path("predictions.png"), dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_miou(run: Run, cms: dict[str, torch.Tensor], resamples: int = 200) -> None:
    """Test mIoU of the front end and of each module (this seed). Error bars: the standard
    deviation over bootstrap resamples of the test canvases (the test set's sampling noise);
    the seed-to-seed spread is in results.json and the README's table."""
    gen = torch.Generator().manual_seed(0)
    n = next(iter(cms.values())).shape[0]
    draws = torch.randint(0, n, (resamples, n), generator=gen)  # canvases of each resample
    names = list(cms)
    values = [100 * mean_iou(cms[k].sum(0)) for k in names]
    errors = [
        100 * float(np.std([mean_iou(cms[k][d].sum(0)) for d in draws], ddof=1)) for k in names
    ]
    labels = ["front end", *(arm.label for arm in ARMS)]
    fig, (ax,) = plots.figure(width=6.0, height=3.8)
    ax.bar(range(len(names)), values, yerr=errors, capsize=5, color="#7aa6c2", edgecolor="black")
    for i, v in enumerate(values):
        ax.text(i + 0.12, v + 1.5, f"{v:.1f}", fontsize=9)
    ax.set_xticks(range(len(names)), labels)
    ax.set_ylabel("test mIoU (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"seed {run.seed}, ± bootstrap std over {n} test canvases", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    plots.save(fig, run.plot_path("miou.png"))


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's training steps: the front end's and each context module's."""
    cfg = PRESETS["quick"]
    data = load_data(cfg)
    frontend, fe_opt, fe_step = frontend_trainer(run, cfg, data)
    cases = [BenchCase("frontend", frontend, fe_opt, fe_step, cfg.batch_size)]
    for arm in ARMS:
        module, opt, step = module_trainer(run, cfg, data, frontend, arm)
        cases.append(BenchCase(arm.name, module, opt, step, cfg.batch_size))
    return cases


RF_PRESETS = {
    "smoke": ReceptiveFieldConfig(),
    "quick": ReceptiveFieldConfig(),
    "full": ReceptiveFieldConfig(large_C=11),
}
PRESETS = {
    "smoke": ContextConfig(
        digits=3,
        val_canvases=8,
        test_canvases=8,
        batch_size=4,
        frontend_steps=3,
        module_steps=3,
    ),
    "quick": ContextConfig(
        val_canvases=300,
        test_canvases=500,
        frontend_steps=1000,  # depth and steps chosen on validation canvases (README)
        module_steps=200,
        module_lrs=(1e-3, 1e-3, 3e-3),  # each arm's best of {1e-3, 3e-3} on validation
    ),
    "full": ContextConfig(module="large"),
}

PAPER = Paper(
    slug="dilated_convolutions",
    title="Multi-Scale Context Aggregation by Dilated Convolutions",
    authors="Yu, Koltun",
    year=2016,
    arxiv="1511.07122",
    bench=bench,
    experiments=(
        Experiment(
            name="receptive_field",
            description="the context module's receptive field by gradients: 67×67 (Table 1)",
            presets=RF_PRESETS,
            run=run_receptive_field,
            quick_minutes=0.1,
        ),
        Experiment(
            name="context",
            description="scattered-MNIST segmentation: dilated vs undilated, identity vs "
            "random init (mIoU)",
            presets=PRESETS,
            run=run_context,
            quick_minutes=4.3,
            datasets=("mnist",),
            quick_seeds=3,
        ),
    ),
)
