"""The coffee automaton, measured: entropy (gzip of the fine-grained state) rises in both
models; apparent complexity (gzip of the coarse-grained state) rises and falls in the
non-interacting model; the interacting model's bump is reported, not asserted.

One experiment, ``mixing``. Both models start from cream over coffee on an n × n grid and run
for ``horizon`` relaxation times τ of the slowest density mode (model.relaxation_time), long
enough for the coarse-grained picture to become uniform. At ``n_measure`` evenly spaced
times each state is measured: entropy, apparent complexity with the paper's 3-level
coarse-graining (Sec. 5) and with the adjusted one (Sec. 6). Grid sizes 32–100 are run too
for the interacting model's peak complexity against n (reported).

The claims use the paper's Sec. 5 measure (3 buckets); the adjusted measure is reported for
both models (README: Claims). Thresholds come from PAPERS.md and are fixed in the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.papers.coffee_automaton.model import (
    InteractingAutomaton,
    NonInteractingAutomaton,
    coarse_grain,
    complexity_bits,
    entropy_bits,
    grain_for,
    relaxation_time,
)

MODELS = ("interacting", "non_interacting")
KEYS = ("t", "entropy", "complexity", "adjusted")  # what each measurement records
UNITS = {"interacting": "swap attempts", "non_interacting": "particle moves"}


@dataclass(frozen=True)
class MixingConfig:
    n: int = 100  # grid side of the main runs (the paper's largest)
    sizes: tuple[int, ...] = (32, 50, 76, 100)  # interacting-model size sweep (reported)
    horizon: float = 3.0  # run length in relaxation times τ of the slowest mode
    n_measure: int = 100  # evenly spaced measurements after t = 0
    grain: int = 0  # g of the coarse-graining; 0: the odd number nearest n/10
    snapshots: tuple[float, ...] = (0.03, 0.2, 1.0)  # fractions of the run drawn
    min_spearman: float = 0.95  # claim: Spearman(t, entropy) > this, both models
    max_fraction: float = 0.5  # claim: non-interacting start and end < this × peak

    def __post_init__(self) -> None:
        for n in (self.n, *self.sizes):
            if n < 4 or n % 2:
                raise ValueError(f"grid sides must be even and ≥ 4, got {n}")
        if self.horizon <= 0 or self.n_measure < 3:
            raise ValueError("horizon must be > 0 and n_measure ≥ 3")
        if self.grain < 0 or (self.grain and (self.grain % 2 == 0 or self.grain > self.n)):
            raise ValueError("grain must be 0 (automatic) or odd and ≤ n")
        if not all(0 < f <= 1 for f in self.snapshots):
            raise ValueError("snapshot fractions must be in (0, 1]")
        if not -1 <= self.min_spearman <= 1 or not 0 < self.max_fraction < 1:
            raise ValueError("min_spearman must be in [-1, 1] and max_fraction in (0, 1)")


def simulate(model: str, n: int, g: int, cfg: MixingConfig, rng, bar=None) -> dict:
    """One run of one model: entropy and both complexities at evenly spaced times, and the
    states at the snapshot times."""
    automaton = InteractingAutomaton if model == "interacting" else NonInteractingAutomaton
    state = automaton.start(n)
    total = round(cfg.horizon * relaxation_time(model, n))  # sub-steps or sweeps
    ticks = np.linspace(0, total, cfg.n_measure + 1).round().astype(int)
    shots = {int(np.abs(ticks - f * total).argmin()) for f in cfg.snapshots}
    rec = {"t": [], "entropy": [], "complexity": [], "adjusted": [], "snapshots": []}
    done = 0
    for k, tick in enumerate(ticks):
        state.advance(rng, int(tick) - done)
        done = int(tick)
        density = state.density()
        rec["t"].append(state.steps)
        rec["entropy"].append(entropy_bits(state))
        rec["complexity"].append(complexity_bits(density, g, adjusted=False))
        rec["adjusted"].append(complexity_bits(density, g, adjusted=True))
        if k in shots:
            rec["snapshots"].append((state.steps, density.copy()))
        if bar is not None:
            bar.update(1)
    return rec


def rise_and_fall(curve: list[int]) -> dict:
    """Start, peak and end of a complexity curve, and where the peak is (fraction of run)."""
    c = np.asarray(curve)
    return {
        "c_start": int(c[0]),
        "c_peak": int(c.max()),
        "c_end": int(c[-1]),
        "peak_at": float(c.argmax() / (len(c) - 1)),
    }


def plateau(t: list[float], entropy: list[int]) -> dict:
    """Where an entropy curve reaches 99% of its maximum, its rank correlation with time up
    to there, and its largest drop between successive measurements."""
    e = np.asarray(entropy, dtype=float)
    k99 = int(np.argmax(e >= 0.99 * e.max()))
    rise = float(spearmanr(t[: k99 + 1], e[: k99 + 1]).statistic) if k99 >= 1 else 1.0
    return {
        "reach99_at": k99 / (len(e) - 1),
        "spearman_rise": rise,
        "max_drop_pct": float(100 * max(0.0, -np.diff(e).min()) / e.max()),
    }


def entropy_claims(run: Run, cfg: MixingConfig, runs: dict) -> None:
    for model in MODELS:
        rec = runs[model]
        run.claim(
            f"entropy_rises_{model}",
            f"{model.replace('_', '-')} model: entropy (gzip of the fine-grained state) rises "
            f"in trend over the run (Spearman ρ with time > {cfg.min_spearman})",
            "Sec. 5: entropy increases monotonically",
            {
                "spearman_t_entropy": float(spearmanr(rec["t"], rec["entropy"]).statistic),
                "threshold": cfg.min_spearman,
            },
            "spearman_t_entropy > threshold",
        )
        run.report(
            f"entropy_plateau_{model}",
            f"{model.replace('_', '-')} model: where the entropy estimate first reaches 99% "
            "of its maximum (fraction of the run), Spearman ρ up to there, and the largest "
            "drop between successive measurements (% of the maximum)",
            "Sec. 5: entropy rises to its equilibrium value and stays there",
            plateau(rec["t"], rec["entropy"]),
        )


def complexity_claims(run: Run, cfg: MixingConfig, runs: dict) -> None:
    shape = rise_and_fall(runs["non_interacting"]["complexity"])
    run.claim(
        "complexity_rise_fall_non_interacting",
        "non-interacting model: apparent complexity (gzip of the 3-bucket coarse-grained "
        f"state) at the start and at the end are both < {cfg.max_fraction} × its peak",
        "Sec. 5: apparent complexity rises, then falls as the liquids mix",
        {**shape, "fraction": cfg.max_fraction},
        "c_start < fraction * c_peak and c_end < fraction * c_peak",
    )
    note = (
        "; Aaronson (blog, June 2014): this bump is likely left-over border pixel "
        "artifacts, and the symmetric exclusion process cannot become complex (Liggett)"
    )
    paper = {
        "complexity": "Sec. 5: with 3 buckets the complexity rises and falls in both models",
        "adjusted": "Sec. 6, Fig. 10: after the adjustment the interacting model keeps a "
        "small bump, the non-interacting one none",
    }
    for measure, label in (("complexity", "3 buckets"), ("adjusted", "adjusted")):
        for model in MODELS:
            run.report(
                f"{model}_{measure}_shape",
                f"{model.replace('_', '-')} model, apparent complexity ({label}): start, "
                f"peak and end in bits, peak position as a fraction of the run"
                + (note if model == "interacting" else ""),
                paper[measure],
                rise_and_fall(runs[model][measure]),
            )


def size_sweep(run: Run, cfg: MixingConfig, main: dict, rng, bar) -> dict:
    """The interacting model's adjusted complexity peak and its time at each grid size
    (the main run ``main`` stands for n = cfg.n)."""
    out = {}
    for n in cfg.sizes:
        if n == cfg.n:
            rec = main
        else:
            rec = simulate("interacting", n, cfg.grain or grain_for(n), cfg, rng, bar)
        shape = rise_and_fall(rec["adjusted"])
        peak_t = rec["t"][int(np.argmax(rec["adjusted"]))]
        out[n] = {**shape, "peak_t": peak_t, "grain": cfg.grain or grain_for(n)}
    sizes = np.asarray(cfg.sizes, dtype=float)
    bumps = [out[n]["c_peak"] - out[n]["c_start"] for n in cfg.sizes]
    measured = {f"bump_bits_n{n}": b for n, b in zip(cfg.sizes, bumps, strict=True)}
    if len(cfg.sizes) > 1:  # a bump of 0 bits counts as 1 on the log scale
        logs = np.log(np.maximum(bumps, 1))
        measured["bump_slope_loglog"] = float(np.polyfit(np.log(sizes), logs, 1)[0])
    run.report(
        "interacting_bump_vs_n",
        "interacting model, adjusted complexity: peak minus start (bits) per grid size n, "
        "and the log-log slope against n",
        "Sec. 6: maximum complexity grows about linearly in n (later attributed to border "
        "pixel artifacts)",
        measured,
    )
    return out


def plot_curves(run: Run, runs: dict) -> None:
    """Entropy (left) and both complexities (right) of each model against time."""
    for model in MODELS:
        rec = runs[model]
        fig, (ax1, ax2) = plots.figure(ncols=2)
        plots.draw_lines(
            ax1,
            {"entropy": (rec["t"], rec["entropy"])},
            xlabel=f"time ({UNITS[model]})",
            ylabel="gzip size of fine-grained state (bits)",
            title=f"{model.replace('_', '-')}: entropy",
        )
        plots.draw_lines(
            ax2,
            {
                "3 buckets (Sec. 5)": (rec["t"], rec["complexity"]),
                "adjusted (Sec. 6)": (rec["t"], rec["adjusted"]),
            },
            xlabel=f"time ({UNITS[model]})",
            ylabel="gzip size of coarse-grained state (bits)",
            title=f"{model.replace('_', '-')}: apparent complexity",
        )
        ax2.legend(loc="upper right")
        plots.save(fig, run.plot_path(f"curves_{model}.png"))


def plot_snapshots(run: Run, runs: dict, g: int) -> None:
    """Rows: fine-grained state, 3-bucket and adjusted coarse-graining; columns: early, mid,
    late."""
    for model in MODELS:
        shots = runs[model]["snapshots"]
        fig, axes = plots.plt.subplots(
            3, len(shots), figsize=(2.6 * len(shots) + 0.8, 7.6), squeeze=False
        )
        vmax = max(float(d.max()) for _, d in shots)
        for col, (t, density) in enumerate(shots):
            views = (
                (density, "cream per cell", vmax),
                (coarse_grain(density, g, adjusted=False), "3 buckets", 2),
                (coarse_grain(density, g, adjusted=True), "adjusted", 2),
            )
            for row, (image, label, top) in enumerate(views):
                ax = axes[row][col]
                im = ax.imshow(image, cmap="copper_r", vmin=0, vmax=top, interpolation="none")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"t = {t:.3g}", fontsize=10)
                if col == 0:
                    ax.set_ylabel(label)
                if col == len(shots) - 1:
                    fig.colorbar(im, ax=axes[row], shrink=0.8)
        fig.suptitle(f"{model.replace('_', '-')} model ({UNITS[model]}), g = {g}")
        fig.savefig(run.plot_path(f"snapshots_{model}.png"), dpi=110)
        plots.plt.close(fig)


def plot_sizes(run: Run, sweep: dict) -> None:
    sizes = list(sweep)
    fig, (ax1, ax2) = plots.figure(ncols=2)
    plots.draw_lines(
        ax1,
        {"peak − start": (sizes, [sweep[n]["c_peak"] - sweep[n]["c_start"] for n in sizes])},
        xlabel="grid side n",
        ylabel="adjusted complexity bump (bits)",
        title="interacting: bump vs n",
        styles={"peak − start": "o-"},
    )
    plots.draw_lines(
        ax2,
        {"peak time": (sizes, [sweep[n]["peak_t"] for n in sizes])},
        xlabel="grid side n",
        ylabel="time of the peak (swap attempts)",
        title="interacting: peak time vs n",
        logx=True,
        logy=True,
        styles={"peak time": "o-"},
    )
    plots.save(fig, run.plot_path("sizes.png"))


def run_mixing(run: Run, cfg: MixingConfig) -> None:
    rng = np.random.default_rng(run.seed)
    g = cfg.grain or grain_for(cfg.n)
    extra = [n for n in cfg.sizes if n != cfg.n]
    with run.progress((2 + len(extra)) * (cfg.n_measure + 1), "measurements") as bar:
        runs = {model: simulate(model, cfg.n, g, cfg, rng, bar) for model in MODELS}
        sweep = size_sweep(run, cfg, runs["interacting"], rng, bar)
    for model in MODELS:
        rec = runs[model]
        for t, e, c, a in zip(*(rec[k] for k in KEYS), strict=True):
            run.log({"key": model, "step": t, "entropy": e, "complexity": c, "adjusted": a})
        run.summary[model] = {k: rec[k] for k in KEYS}
    run.summary["grain"] = g
    run.summary["size_sweep"] = {str(n): v for n, v in sweep.items()}
    entropy_claims(run, cfg, runs)
    complexity_claims(run, cfg, runs)
    plot_curves(run, runs)
    plot_snapshots(run, runs, g)
    plot_sizes(run, sweep)


SMOKE = MixingConfig(n=32, sizes=(16, 32), horizon=2.0, n_measure=20)
QUICK = MixingConfig()
FULL = MixingConfig(sizes=(32, 50, 76, 100, 150, 200), horizon=5.0, n_measure=400)

PAPER = Paper(
    slug="coffee_automaton",
    title="Quantifying the Rise and Fall of Complexity in Closed Systems: The Coffee Automaton",
    authors="Aaronson, Carroll, Ouellette",
    year=2014,
    arxiv="1405.6903",
    experiments=(
        Experiment(
            name="mixing",
            description="interacting and non-interacting coffee automata: gzip entropy and "
            "apparent complexity (3-bucket and adjusted coarse-graining) over time",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_mixing,
            quick_minutes=0.4,
            quick_seeds=3,
        ),
    ),
)
