"""Positional encodings are what lets attention see order: the same Transformer, trained the
same way to reverse 10 symbols, with and without the sinusoidal encodings. Without them
the encoder is permutation-equivariant and the encoder–decoder attention sums over a set,
so the decoder sees which symbols the source holds but not where (the tests check this
exactly); it cannot reverse. Plots: both training losses and both models' encoder–decoder
attention (the anti-diagonal with positions)."""

from __future__ import annotations

import dataclasses

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.transformer.experiments.symbols import (
    SymbolsConfig,
    accuracy,
    cross_attention,
    test_set,
    train,
)

TASK = "reverse"
ARMS = {"sinusoidal": True, "no_positions": False}


def run_reversal(run: Run, cfg: SymbolsConfig) -> None:
    run.nets_total = len(ARMS)
    src, tgt = test_set(TASK, cfg, run.seed)
    trained = {arm: train(run, arm, cfg, TASK, positions=pe) for arm, pe in ARMS.items()}
    acc = {arm: accuracy(model, src, tgt) for arm, (model, _, _) in trained.items()}
    run.summary.update(
        {
            "params": trained["sinusoidal"][0].num_params(),
            "train_s": {arm: t[2] for arm, t in trained.items()},
            "symbol_accuracy": {arm: a["token"] for arm, a in acc.items()},
            "test_sequences": len(src),
        }
    )
    run.claim(
        "positions_needed_to_reverse",
        f"reversing {cfg.length} symbols ({len(src)} held-out sequences, greedy): with "
        "sinusoidal positional encodings ≥ 90% are reversed exactly; the same model "
        "trained the same way without them reverses ≤ 10%",
        "§3.5: attention has no notion of order, so 'we must inject some information "
        "about the relative or absolute position of the tokens'",
        {
            "exact_sinusoidal": acc["sinusoidal"]["exact"],
            "exact_none": acc["no_positions"]["exact"],
        },
        "exact_sinusoidal >= 0.9 and exact_none <= 0.1",
    )
    fig, axes = plots.figure(ncols=3)
    plots.draw_lines(
        axes[0],
        {
            arm: ([r["step"] for r in h], [r["loss"] for r in h])
            for arm, (_, h, _) in trained.items()
        },
        xlabel="step",
        ylabel="training loss (nats/symbol)",
        title="Reversal: training loss",
    )
    for ax, (arm, (model, _, _)) in zip(axes[1:], trained.items(), strict=True):
        weights = cross_attention(model, src[:1], tgt[:1, :-1])[0]  # (T_y, T_x)
        ax.imshow(weights.cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xlabel("source position")
        ax.set_ylabel("output position")
        ax.set_title(f"{arm}: encoder–decoder attention")
    plots.save(fig, run.plot_path("reversal.png"))


SMOKE = dataclasses.replace(SymbolsConfig(), d_model=16, d_ff=32, steps=10, test_size=50)
QUICK = SymbolsConfig()
FULL = dataclasses.replace(
    SymbolsConfig(), d_model=512, n_heads=8, d_ff=2048, factor=1.0, steps=2000
)

EXPERIMENT = Experiment(
    name="reversal",
    description="reversing 10 symbols with and without positional encodings (the ablation of §3.5)",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_reversal,
    quick_minutes=3.7,
    quick_seeds=3,
)
