"""Peak activation memory with and without re-materialization (§2.3).

The bytes autograd saves for backward are counted by a ``saved_tensors_hooks`` pack hook
(each storage once, parameters left out), task by task along the schedule; the peak is the
largest total held at any point of one mini-batch's forward and backward, over all K
stages (what a single device holding the whole network, the paper's O(N × L) baseline,
would hold), and the largest one stage holds (one accelerator's share). Without
re-materialization every stage keeps every micro-batch's activations until its backward;
with it a stage keeps only its boundary inputs and, during one backward, one micro-batch's
recomputed activations: O(N + L/K · N/M).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.gpipe.experiments.common import (
    GPTSize,
    check_grid,
    gpt_and_batch,
    one_thread,
)
from sutskever30.papers.gpipe.model import GPipe, split_stages
from sutskever30.papers.gpipe.pipeline import lm_loss


@dataclass(frozen=True)
class MemoryConfig:
    size: GPTSize = field(
        default_factory=lambda: GPTSize(batch_size=32, context=64, n_layer=8, d_model=64)
    )
    stages: tuple[int, ...] = (2, 4)
    micro_batches: tuple[int, ...] = (1, 2, 4, 8, 16)

    def __post_init__(self) -> None:
        check_grid(self.size, self.stages, self.micro_batches)


@one_thread()
def run_memory(run: Run, cfg: MemoryConfig) -> None:
    gpt, x, y = gpt_and_batch(cfg.size, run.seed)
    model = gpt.sequential()
    grid = [(k, m, r) for k in cfg.stages for m in cfg.micro_batches for r in (False, True)]
    peak: dict[tuple[int, int, bool], int] = {}
    stage_peak: dict[tuple[int, int, bool], int] = {}
    bar = run.progress(len(grid), "pipelined steps")
    for k, m, remat in grid:
        model.zero_grad(set_to_none=True)
        pipe = GPipe(split_stages(model, k), micro_batches=m, loss_fn=lm_loss, remat=remat)
        stats = pipe.step(x, y)
        peak[(k, m, remat)] = stats.peak_activation_bytes
        stage_peak[(k, m, remat)] = max(stats.stage_peak_bytes)
        bar.update(1)
    bar.close()
    ratios = {(k, m): peak[(k, m, True)] / peak[(k, m, False)] for k, m, _ in grid}
    run.summary["peak_bytes"] = {
        f"K{k}_M{m}_{'remat' if r else 'plain'}": b for (k, m, r), b in peak.items()
    }
    run.summary["stage_peak_bytes"] = {
        f"K{k}_M{m}_{'remat' if r else 'plain'}": b for (k, m, r), b in stage_peak.items()
    }
    worst = max(ratios, key=ratios.get)
    run.claim(
        "remat_lowers_peak_memory",
        "re-materialization lowers the peak bytes of activations held for backward, for "
        f"every K ∈ {list(cfg.stages)}, M ∈ {list(cfg.micro_batches)} (largest remat/plain "
        "ratio)",
        "§2.3: peak activation memory O(N × L) without, O(N + L/K × N/M) with re-materialization",
        {
            "max_ratio": ratios[worst],
            "worst_K": worst[0],
            "worst_M": worst[1],
            "plain_bytes": peak[(*worst, False)],
            "remat_bytes": peak[(*worst, True)],
        },
        "max_ratio < 1",
    )
    k, m_lo, m_hi = max(cfg.stages), min(cfg.micro_batches), max(cfg.micro_batches)
    # O(N + L/K × N/M) with its constants: a stage's boundary inputs (N × T × d floats) and
    # one micro-batch's share of what the stage holds without re-materialization
    size = cfg.size
    boundary = size.batch_size * size.context * size.d_model * gpt.embed.wte.weight.element_size()
    run.report(
        "stage_peak_vs_m",
        f"one stage's peak activation bytes at K = {k}, without and with re-materialization, "
        f"at M = {m_lo} and M = {m_hi}; predicted: N·T·d floats of boundary inputs plus the "
        f"stage's no-remat bytes / M",
        "§2.3: with re-materialization a stage holds O(N + L/K × N/M), falling with M",
        {
            f"plain_M{m_lo}": stage_peak[(k, m_lo, False)],
            f"plain_M{m_hi}": stage_peak[(k, m_hi, False)],
            f"remat_M{m_lo}": stage_peak[(k, m_lo, True)],
            f"remat_M{m_hi}": stage_peak[(k, m_hi, True)],
            f"predicted_remat_M{m_hi}": boundary + stage_peak[(k, m_hi, False)] / m_hi,
        },
    )
    plot_memory(run, cfg, peak, stage_peak)


def plot_memory(run: Run, cfg: MemoryConfig, peak, stage_peak) -> None:
    fig, axes = plots.figure(ncols=2)
    for ax, data, title in ((axes[0], peak, "all stages"), (axes[1], stage_peak, "one stage")):
        series = {}
        styles = {}
        for i, k in enumerate(cfg.stages):
            for remat in (False, True):
                label = f"K={k}, {'remat' if remat else 'no remat'}"
                ms = list(cfg.micro_batches)
                series[label] = (ms, [data[(k, m, remat)] / 2**20 for m in ms])
                styles[label] = f"C{i}{'o-' if remat else 's--'}"
        plots.draw_lines(
            ax,
            series,
            xlabel="micro-batches M",
            ylabel="peak activations (MiB)",
            title=f"peak held for backward, {title}",
            logx=True,
            styles=styles,
        )
        ax.set_xticks(list(cfg.micro_batches), [str(m) for m in cfg.micro_batches])
    axes[0].legend(loc="center right")
    axes[1].get_legend().remove()  # the same curves as on the left
    plots.save(fig, run.plot_path("memory.png"))


SMOKE = MemoryConfig(
    size=GPTSize(batch_size=8, context=8, n_layer=2, d_model=16), micro_batches=(1, 4)
)
QUICK = MemoryConfig()
FULL = MemoryConfig(
    size=GPTSize(batch_size=64, context=256, n_layer=24, d_model=256),
    stages=(2, 4, 8),
    micro_batches=(1, 2, 4, 8, 16, 32),
)
PRESETS = {"smoke": SMOKE, "quick": QUICK, "full": FULL}

EXPERIMENT = Experiment(
    name="memory",
    description="peak activation bytes held for backward with and without re-materialization",
    presets=PRESETS,
    run=run_memory,
    quick_minutes=0.1,
    datasets=("tinyshakespeare",),
)
