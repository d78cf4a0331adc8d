"""Complexodynamics, measured: rule 30's compressed state climbs to the incompressible bound
while the program that prints it grows only as log t.

One experiment, ``eca``: elementary automata on a ring of n cells from one live cell; at
log-spaced times t the state x_t is compressed with zlib, bz2 and lzma and set beside the
incompressible bound (n bits) and the explicit generating program (model.GENERATOR + the
codes of rule, n, t). Rule 30 carries the claims; rules 90, 110, 250 and 4 are reported as
context (nested, class 4, and two simple rules).

Thresholds (fixed before any run, README: Claims): the best compressor's size of the rule-30
state at the last step is ≥ 0.9 n bits and ≥ 10× the program bound; over the measured times
the best compressed size rises with t (Spearman ρ ≥ 0.95).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.nn.compression import COMPRESSORS
from sutskever30.papers.complexodynamics.model import (
    compressed_sizes,
    program_bits,
    rule_table,
    space_time,
    states_at,
)


@dataclass(frozen=True)
class ECAConfig:
    width: int = 2**18  # n: cells on the ring, the incompressible bound in bits
    steps: int = 2**18  # T: the last time measured (the pattern fills the ring at n/2)
    n_times: int = 64  # log-spaced measurement times in [1, T] (plus t = 0)
    rule: int = 30  # the rule the claims are about
    other_rules: tuple[int, ...] = (90, 110, 250, 4)  # reported beside it
    min_fraction: float = 0.9  # claim: |C(x_T)| ≥ min_fraction · n
    min_program_factor: float = 10.0  # claim: |C(x_T)| ≥ factor · program bits
    min_spearman: float = 0.95  # claim: Spearman(t, |C(x_t)|) ≥ this
    diagram_steps: int = 96  # rows of the space-time diagrams

    def __post_init__(self) -> None:
        if self.width < 16 or self.steps < 1:
            raise ValueError("need width ≥ 16 cells and steps ≥ 1")
        if self.n_times < 3:
            raise ValueError("n_times must be ≥ 3 (a rank correlation needs several points)")
        for r in (self.rule, *self.other_rules):
            rule_table(r)
        if not 0 < self.min_fraction <= 1:
            raise ValueError("min_fraction must be in (0, 1]")
        if self.min_program_factor <= 0 or not -1 <= self.min_spearman <= 1:
            raise ValueError("min_program_factor must be > 0 and min_spearman in [-1, 1]")
        if self.diagram_steps < 1:
            raise ValueError("diagram_steps must be ≥ 1")


def measure_times(cfg: ECAConfig) -> list[int]:
    """t = 0 and ``n_times`` log-spaced integer times in [1, T] (duplicates dropped)."""
    spaced = np.geomspace(1, cfg.steps, cfg.n_times).round().astype(int)
    return [0, *sorted(set(spaced.tolist()))]


def measure_rule(run: Run, cfg: ECAConfig, rule: int, times: list[int]) -> dict:
    """Compressed sizes (bits) of x_t for every compressor, and the program bound."""
    states = states_at(rule, cfg.width, times)  # (len(times), n)
    sizes = {name: [] for name in COMPRESSORS}
    for x in states:
        for name, bits in compressed_sizes(x).items():
            sizes[name].append(bits)
    best = np.min([sizes[name] for name in COMPRESSORS], axis=0)
    program = [program_bits(rule, cfg.width, t) for t in times]
    for k, t in enumerate(times):
        run.log({"key": f"rule{rule}", "step": t, "best_bits": int(best[k]), "program": program[k]})
    return {"rule": rule, "sizes": sizes, "best": best.tolist(), "program": program}


def rule30_claims(run: Run, cfg: ECAConfig, main: dict, times: list[int]) -> None:
    best_final, program_final = main["best"][-1], main["program"][-1]
    r = cfg.rule
    run.claim(
        f"rule{r}_near_incompressible",
        f"rule {r} from one cell: the best of zlib/bz2/lzma compresses the state at the last "
        f"step to ≥ {cfg.min_fraction} of the incompressible bound (n bits)",
        "Aaronson 2011: a compressor sees a chaotic deterministic state as random",
        {
            "best_bits_final": best_final,
            "incompressible_bits": cfg.width,
            "fraction": cfg.min_fraction,
            "steps": cfg.steps,
        },
        "best_bits_final >= fraction * incompressible_bits",
    )
    run.claim(
        f"rule{r}_size_grows",
        f"rule {r}: the best compressed size of x_t rises with t (Spearman ρ over "
        f"{len(times)} log-spaced times ≥ {cfg.min_spearman})",
        "Aaronson 2011: the entropy estimate rises as the system evolves",
        {
            "spearman_t_size": float(spearmanr(times, main["best"]).statistic),
            "threshold": cfg.min_spearman,
        },
        "spearman_t_size >= threshold",
    )
    run.claim(
        f"rule{r}_program_far_below",
        f"rule {r}: the compressed state at the last step is ≥ {cfg.min_program_factor:g}× "
        "longer than an explicit program that prints it (program text + codes of r, n, t)",
        "Aaronson 2011: K(x_t) ≤ K(x_0) + log t + O(1), so compressor estimates can be "
        "wildly loose",
        {
            "best_bits_final": best_final,
            "program_bits_final": program_final,
            "factor": cfg.min_program_factor,
        },
        "best_bits_final >= factor * program_bits_final",
    )


def report_rules(run: Run, cfg: ECAConfig, measured: list[dict]) -> None:
    for m in measured:
        final = {name: m["sizes"][name][-1] / cfg.width for name in COMPRESSORS}
        run.report(
            f"rule{m['rule']}_final_fraction",
            f"rule {m['rule']} from one cell: compressed size at t = {cfg.steps} as a "
            "fraction of n bits, per compressor",
            "context: nested (90), class 4 (110) and simple (250, 4) rules stay far below",
            {f"{name}_fraction": v for name, v in final.items()},
        )


def plot_sizes(run: Run, cfg: ECAConfig, main: dict, measured: list[dict], times) -> None:
    """Left: rule 30 per compressor with both bounds; right: every rule's best size."""
    t = np.maximum(np.asarray(times), 0.5)  # t = 0 drawn at 0.5 on the log axis
    fig, (ax1, ax2) = plots.figure(ncols=2, width=5.5, height=4.0)
    series = {name: (t, main["sizes"][name]) for name in COMPRESSORS}
    series["program bound"] = (t, main["program"])
    series["incompressible (n bits)"] = (t, np.full(len(t), cfg.width))
    plots.draw_lines(
        ax1,
        series,
        xlabel="time step t",
        ylabel="bits",
        title=f"rule {cfg.rule}, n = {cfg.width}",
        logx=True,
        logy=True,
        styles={"program bound": "k--", "incompressible (n bits)": "k:"},
    )
    rules = {f"rule {m['rule']}": (t, m["best"]) for m in [main, *measured]}
    rules["incompressible (n bits)"] = (t, np.full(len(t), cfg.width))
    plots.draw_lines(
        ax2,
        rules,
        xlabel="time step t",
        ylabel="best compressed size (bits)",
        title="other rules (best of zlib/bz2/lzma)",
        logx=True,
        logy=True,
        styles={"incompressible (n bits)": "k:"},
    )
    for ax in (ax1, ax2):
        ax.legend(loc="upper left", fontsize=8)
    plots.save(fig, run.plot_path("compressed_size.png"))


def plot_diagrams(run: Run, cfg: ECAConfig, rules: list[int]) -> None:
    """Space-time diagrams from one cell (time runs down), on a ring wide enough not to wrap."""
    width = 2 * cfg.diagram_steps + 1
    fig, axes = plots.figure(ncols=len(rules), width=3.2, height=2.0)
    for ax, rule in zip(axes, rules, strict=True):
        ax.imshow(space_time(rule, width, cfg.diagram_steps), cmap="Greys", interpolation="none")
        ax.set_title(f"rule {rule}")
        ax.set_xlabel("cell")
        ax.set_ylabel("t")
    plots.save(fig, run.plot_path("space_time.png"))


def run_eca(run: Run, cfg: ECAConfig) -> None:
    times = measure_times(cfg)
    rules = [cfg.rule, *cfg.other_rules]
    measured = []
    with run.progress(len(rules), "rules") as bar:
        for rule in rules:
            measured.append(measure_rule(run, cfg, rule, times))
            bar.update(1)
    main, others = measured[0], measured[1:]
    run.summary["times"] = times
    for m in measured:
        run.summary[f"rule{m['rule']}"] = {"best_bits": m["best"], "sizes": m["sizes"]}
    run.summary["program_bits"] = main["program"]
    rule30_claims(run, cfg, main, times)
    report_rules(run, cfg, others)
    plot_sizes(run, cfg, main, others, times)
    plot_diagrams(run, cfg, rules[:3])


SMOKE = ECAConfig(width=1024, steps=1024, n_times=12, diagram_steps=32)
QUICK = ECAConfig(width=2**16, steps=2**16, n_times=64)
FULL = ECAConfig()

PAPER = Paper(
    slug="complexodynamics",
    title="The First Law of Complexodynamics",
    authors="Scott Aaronson",
    year=2011,
    arxiv="",
    experiments=(
        Experiment(
            name="eca",
            description="elementary automata from one cell: compressed state vs the "
            "incompressible bound and the O(log t) generating program",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_eca,
            quick_minutes=0.9,
        ),
    ),
)
