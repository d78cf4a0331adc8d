"""The bubble: the idle fraction of the fill–drain schedule, (K − 1) / (M + K − 1) (§2.3),
measured on real work.

Every task F_{k,m}, B_{k,m} of the GPT's pipeline runs for real (forward or backward of its
stage on its micro-batch) and is timed; the timeline is then replayed with those durations
under the schedule's dependencies (a stage starts a task when it is free and its input has
arrived), and each stage's idle time is read off it. Threads on this 2-core machine would
measure the machine, not the schedule: K stages would compete for two cores.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.gpipe.experiments.common import (
    GPTSize,
    check_grid,
    gpt_and_batch,
    one_thread,
)
from sutskever30.papers.gpipe.model import (
    GPipe,
    bubble_formula,
    fill_drain_schedule,
    replay,
    split_stages,
    timed_costs,
)
from sutskever30.papers.gpipe.pipeline import lm_loss

TOLERANCE = 0.05  # |measured − (K − 1)/(M + K − 1)| for every (K, M), absolute


@dataclass(frozen=True)
class BubbleConfig:
    size: GPTSize = field(
        default_factory=lambda: GPTSize(batch_size=32, context=32, n_layer=16, d_model=128)
    )
    stages: tuple[int, ...] = (2, 4)
    micro_batches: tuple[int, ...] = (1, 2, 4, 8, 16)
    repeats: int = 3  # timed steps per (K, M); each task's duration is the median
    gantt: tuple[int, int] = (4, 4)  # (K, M) of the timeline figure, the paper's Fig. 2c

    def __post_init__(self) -> None:
        check_grid(self.size, self.stages, self.micro_batches)
        if self.repeats < 1:
            raise ValueError(f"repeats must be ≥ 1, got {self.repeats}")
        if min(self.gantt) < 1:
            raise ValueError(f"gantt must be a (K ≥ 1, M ≥ 1) pair, got {self.gantt}")


def measure_bubble(stages, x, y, *, m: int, repeats: int):
    """Run the pipeline ``repeats`` times after a warm-up and replay the timeline. Each
    task's duration is its stage's median F (or B) time over all micro-batches and repeats:
    the stages' real costs, imbalance included, without the scheduling jitter of the other
    jobs on this shared machine. Returns (that bubble fraction, its timeline, the bubble of
    the raw per-task durations of the last repeat)."""
    pipe = GPipe(stages, micro_batches=m, loss_fn=lm_loss)
    runs = []
    for i in range(repeats + 1):
        for s in stages:
            s.zero_grad(set_to_none=True)
        stats = pipe.step(x, y)
        if i:  # the first step warms up the allocator and kernels
            runs.append(stats.durations)
    k = len(stages)
    typical = {
        (kind, s): statistics.median(r[(kind, s, j)] for r in runs for j in range(m))
        for kind in ("F", "B")
        for s in range(k)
    }
    durations = {key: typical[key[:2]] for key in runs[0]}
    times, bubble = replay(pipe.schedule, durations, k)
    _, raw = replay(pipe.schedule, runs[-1], k)
    return bubble, times, raw


@one_thread()
def run_bubble(run: Run, cfg: BubbleConfig) -> None:
    gpt, x, y = gpt_and_batch(cfg.size, run.seed)
    model = gpt.sequential()
    costs = timed_costs(list(model), x)
    grid = [(k, m) for k in cfg.stages for m in cfg.micro_batches]
    measured: dict[tuple[int, int], float] = {}
    raw: dict[str, float] = {}
    gantt_times = None
    bar = run.progress(len(grid), "pipelines timed")
    for k, m in grid:
        stages = split_stages(model, k, costs)
        measured[(k, m)], times, raw[f"K{k}_M{m}"] = measure_bubble(
            stages, x, y, m=m, repeats=cfg.repeats
        )
        if (k, m) == tuple(cfg.gantt):
            gantt_times = times
        run.log({"key": f"K{k}", "step": m, "bubble": measured[(k, m)]})
        bar.update(1)
    bar.close()
    errors = {km: abs(b - bubble_formula(*km)) for km, b in measured.items()}
    run.summary["bubble"] = {f"K{k}_M{m}": b for (k, m), b in measured.items()}
    run.summary["bubble_raw_durations"] = raw
    run.summary["formula"] = {f"K{k}_M{m}": bubble_formula(k, m) for k, m in measured}
    worst = max(errors, key=errors.get)
    run.claim(
        "bubble_matches_formula",
        f"the measured idle fraction of the fill–drain schedule is within {TOLERANCE} of "
        f"(K − 1)/(M + K − 1) for every K ∈ {list(cfg.stages)}, M ∈ "
        f"{list(cfg.micro_batches)} (GPT of {cfg.size.n_layer} blocks, cut by measured time)",
        "§2.3: the bubble overhead is O((K − 1)/(M + K − 1)), negligible when M ≥ 4K",
        {
            "max_abs_error": errors[worst],
            "tolerance": TOLERANCE,
            "worst_K": worst[0],
            "worst_M": worst[1],
            "worst_measured": measured[worst],
            "worst_formula": bubble_formula(*worst),
        },
        "max_abs_error <= tolerance",
    )
    large = [(k, m) for k, m in measured if m >= 4 * k]
    if large:
        run.report(
            "bubble_small_when_m_ge_4k",
            "the largest measured bubble among the (K, M) with M ≥ 4K",
            "§2.3: negligible when M ≥ 4K (formula at M = 4K: (K − 1)/(5K − 1), 0.16 for K = 4)",
            {"max_bubble_m_ge_4k": max(measured[km] for km in large)},
        )
    plot_bubble(run, cfg, measured)
    if gantt_times is not None:
        plot_gantt(run, cfg, gantt_times)


def plot_bubble(run: Run, cfg: BubbleConfig, measured: dict[tuple[int, int], float]) -> None:
    fig, (ax,) = plots.figure()
    fine = torch.linspace(1, max(cfg.micro_batches), 200).tolist()
    for i, k in enumerate(cfg.stages):
        colour = f"C{i}"
        ax.plot(
            fine,
            [bubble_formula(k, m) for m in fine],
            "-",
            color=colour,
            label=f"(K−1)/(M+K−1), K={k}",
        )
        ms = list(cfg.micro_batches)
        ax.plot(ms, [measured[(k, m)] for m in ms], "o", color=colour, label=f"measured, K={k}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(cfg.micro_batches), [str(m) for m in cfg.micro_batches])
    ax.set_xlabel("micro-batches M")
    ax.set_ylabel("bubble (idle fraction)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    plots.save(fig, run.plot_path("bubble.png"))


def plot_gantt(run: Run, cfg: BubbleConfig, measured_times) -> None:
    """The timeline as the paper's Fig. 2(c): the unit-time schedule of the simulator and
    the replay of the measured durations, one row per stage (stage 0 on top)."""
    k, m = cfg.gantt
    unit = {(t.kind, t.k, t.m): (t.clock, t.clock + 1) for t in fill_drain_schedule(k, m)}
    fig, axes = plots.figure(ncols=2, width=5.0, height=2.8)
    for ax, times, unit_label in (
        (axes[0], unit, "clock tick"),
        (axes[1], {key: (a * 1e3, b * 1e3) for key, (a, b) in measured_times.items()}, "ms"),
    ):
        for (kind, s, j), (a, b) in times.items():
            colour = "C0" if kind == "F" else "C1"
            ax.broken_barh(
                [(a, b - a)],
                (k - 1 - s - 0.4, 0.8),
                facecolors=colour,
                edgecolors="white",
                linewidth=0.5,
            )
            if m <= 8:
                ax.text(
                    (a + b) / 2,
                    k - 1 - s,
                    f"{kind}{j}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white",
                )
        ax.set_yticks(range(k), [f"stage {k - 1 - i}" for i in range(k)])
        ax.set_xlabel(unit_label)
    axes[0].set_title(f"schedule, K={k}, M={m}")
    axes[1].set_title("measured durations replayed")
    plots.save(fig, run.plot_path("timeline.png"))


SMOKE = BubbleConfig(
    size=GPTSize(batch_size=8, context=8, n_layer=4, d_model=16),
    micro_batches=(1, 4),
    repeats=1,
    gantt=(2, 4),
)
QUICK = BubbleConfig()
FULL = BubbleConfig(
    size=GPTSize(batch_size=64, context=128, n_layer=24, d_model=256),
    stages=(2, 4, 8),
    micro_batches=(1, 2, 4, 8, 16, 32),
    repeats=5,
)
PRESETS = {"smoke": SMOKE, "quick": QUICK, "full": FULL}

EXPERIMENT = Experiment(
    name="bubble",
    description="measured idle fraction of the fill–drain schedule vs (K−1)/(M+K−1)",
    presets=PRESETS,
    run=run_bubble,
    quick_minutes=0.3,
    datasets=("tinyshakespeare",),
)
