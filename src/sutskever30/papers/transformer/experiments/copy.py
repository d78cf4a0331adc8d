"""The Annotated Transformer's copy task: a 2-layer Transformer learns to output its input
(V = 11, 10 symbols), and greedy decoding with cached keys and values copies held-out
sequences exactly. Plots: the training loss and the encoder–decoder attention of one test
sequence (the diagonal: output i reads input i)."""

from __future__ import annotations

import dataclasses

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.transformer.experiments.symbols import (
    BOS,
    SymbolsConfig,
    accuracy,
    cross_attention,
    test_set,
    train,
)

TASK = "copy"


def run_copy(run: Run, cfg: SymbolsConfig) -> None:
    run.nets_total = 1
    model, history, train_s = train(run, "copy", cfg, TASK)
    src, tgt = test_set(TASK, cfg, run.seed)
    acc = accuracy(model, src, tgt)
    run.summary.update(
        {
            "params": model.num_params(),
            "train_s": train_s,
            "final_loss": history[-1]["loss"],
            "test_sequences": len(src),
        }
    )
    run.claim(
        "copy_solved_exactly",
        f"greedy decoding (KV cache) copies every one of {len(src)} held-out random "
        f"sequences of {cfg.length} symbols exactly, after {cfg.steps} steps of "
        f"{cfg.batch_size}",
        "The Annotated Transformer: after 20 epochs the copy model's greedy decoding "
        "returns its input (V = 11, N = 2)",
        {"exact_match": acc["exact"], "symbol_accuracy": acc["token"]},
        "exact_match == 1",
    )
    fig, (ax_loss, ax_attn) = plots.figure(ncols=2)
    plots.draw_lines(
        ax_loss,
        {"copy": ([r["step"] for r in history], [r["loss"] for r in history])},
        xlabel="step",
        ylabel="training loss (nats/symbol)",
        title="Copy task: training loss",
    )
    weights = cross_attention(model, src[:1], tgt[:1, :-1])[0]  # (T_y, T_x)
    ax_attn.imshow(weights.cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    ax_attn.set_xlabel("source position")
    ax_attn.set_ylabel(f"output position (after <s> = {BOS})")
    ax_attn.set_title("Encoder–decoder attention, last layer")
    plots.save(fig, run.plot_path("copy.png"))


SMOKE = dataclasses.replace(SymbolsConfig(), d_model=16, d_ff=32, steps=10, test_size=50)
QUICK = SymbolsConfig()
# The Annotated Transformer's copy model: d_model 512, 8 heads, d_ff 2048, N = 2.
FULL = dataclasses.replace(
    SymbolsConfig(), d_model=512, n_heads=8, d_ff=2048, factor=1.0, steps=400
)

EXPERIMENT = Experiment(
    name="copy",
    description="the Annotated Transformer's copy task (V = 11, N = 2): held-out sequences "
    "copied exactly by greedy decoding with a KV cache",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_copy,
    quick_minutes=1.8,
    quick_seeds=3,
)
