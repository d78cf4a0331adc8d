"""Next-token (n = 1) against 4-token prediction at two model sizes, reported beside Fig. 3.

At each size both models have the same blocks in total (n = 4: n_layer − 4 in the trunk and
one per head; n = 1: n_layer − 1 and one head), so the same parameters, and train on the
same batches for the same steps with the same recipe (AdamW, warm-up + cosine; the learning
rate fixed beforehand for every arm, not searched). Compared: head 1's next-token loss on
the same held-out validation windows. The paper finds multi-token prediction *hurts* small
models and helps from ~1B parameters on (Fig. 3, MBPP/HumanEval); ours are far below that,
so the paper's finding predicts n = 4 is worse here. Reported, not asserted.

These runs are shorter than the drafter's in ``speculative`` (the time budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.multi_token_prediction.model import MTPConfig
from sutskever30.papers.multi_token_prediction.training import (
    TrainConfig,
    load_corpus,
    train_model,
)


@dataclass(frozen=True)
class SizesConfig:
    widths: tuple[int, ...] = (64, 128)  # d_model of each size
    n_layer: int = 6  # blocks in total, at every size and n
    n_futures: tuple[int, ...] = (1, 4)
    n_head: int = 4
    context: int = 128
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.widths or not self.n_futures:
            raise ValueError("widths and n_futures must not be empty")
        for d in self.widths:
            for n in self.n_futures:
                self.model(d, n)

    def model(self, d_model: int, n: int) -> MTPConfig:
        return MTPConfig(
            context=self.context,
            n_layer=self.n_layer,
            n_head=self.n_head,
            d_model=d_model,
            n_future=n,
        )


def name(d_model: int, n: int) -> str:
    return f"d{d_model}_n{n}"


def run_sizes(run: Run, cfg: SizesConfig) -> None:
    data = load_corpus()
    lookahead = max(cfg.n_futures)
    run.nets_total = len(cfg.widths) * len(cfg.n_futures)
    results = {}
    for d in cfg.widths:
        for n in cfg.n_futures:
            model, history, scores = train_model(
                run, name(d, n), cfg.model(d, n), cfg.train, data, run.seed, lookahead
            )
            results[(d, n)] = {
                "params": model.cfg.gpt.non_embedding_params,
                "val_loss": scores["loss"][0],
                "history": history,
            }
            run.summary[name(d, n)] = {
                "non_embedding_params": results[(d, n)]["params"],
                "head_val_loss": scores["loss"],
                "head_val_acc": scores["acc"],
            }
    lo, hi = min(cfg.n_futures), max(cfg.n_futures)
    for d in cfg.widths:
        one, many = results[(d, lo)], results[(d, hi)]
        run.report(
            f"next_token_loss_d{d}",
            f"next-token validation loss (nats/byte) of n={lo} vs n={hi} training, d={d}, "
            f"{cfg.n_layer} blocks, {one['params'] / 1e6:.2f}M non-embedding parameters each, "
            f"{cfg.train.steps} steps of {cfg.train.batch_size}×{cfg.context} bytes",
            "Fig. 3: at small sizes (≤ 1B) multi-token prediction is worse than next-token",
            {
                f"loss_n{lo}": one["val_loss"],
                f"loss_n{hi}": many["val_loss"],
                f"n{hi}_minus_n{lo}": many["val_loss"] - one["val_loss"],
                "params_m": one["params"] / 1e6,
            },
        )
    plot_curves(run, cfg, results)


def plot_curves(run: Run, cfg: SizesConfig, results: dict) -> None:
    """Training curves of head 1's loss, one panel per size."""
    fig, axes = plots.figure(ncols=len(cfg.widths))
    for ax, d in zip(axes, cfg.widths, strict=True):
        series = {}
        for n in cfg.n_futures:
            hist = results[(d, n)]["history"]
            series[f"n = {n}"] = (
                [h["step"] for h in hist],
                [h["next_token_loss"] for h in hist],
            )
        plots.draw_lines(
            ax,
            series,
            xlabel="step",
            ylabel="next-token training loss (nats/byte)",
            title=f"d={d}, {cfg.n_layer} blocks",
        )
    plots.save(fig, run.plot_path("next_token_loss.png"))


SMOKE = SizesConfig(
    widths=(16,),
    n_layer=3,
    n_futures=(1, 2),
    n_head=2,
    context=16,
    train=TrainConfig(steps=4, batch_size=4, warmup=1, val_windows=4, checkpoint_every=2),
)
QUICK = SizesConfig(
    widths=(48, 96),
    train=TrainConfig(steps=200, batch_size=16, lr=3e-3, warmup=20, val_windows=32),
)
FULL = SizesConfig(
    widths=(256, 512),
    n_layer=12,
    context=512,
    train=TrainConfig(steps=20_000, batch_size=32, lr=1e-3, warmup=500, checkpoint_every=2000),
)

EXPERIMENT = Experiment(
    name="sizes",
    description="next-token loss of n=1 vs n=4 training at two model sizes (Fig. 3)",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_sizes,
    quick_minutes=1.5,
    datasets=("python_source",),
)
