"""Kaplan et al.'s sweep: GPTs of several sizes on one token budget, the loss against
non-embedding parameters N, tokens D and compute C, with power-law fits (Fig. 1, Fig. 2).

Every size sees the same batches in the same order, one epoch at most (no token twice), of
the Python standard library's source as bytes; its validation loss (nats/token) is measured
on a fixed sample of held-out files at log-spaced steps. The learning rate is eq. D.1 for
each size's N, warmed up linearly and decayed by a cosine to zero (App. D.1).

Deviations from the paper (README: Deviations): one fixed budget D for all sizes instead of
training to near convergence (so L(N) gets an irreducible term L_∞); bytes, context 64,
batch 32 × 64 tokens; sizes 3e3 … 4e5 non-embedding parameters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.data.python_source import VOCAB_SIZE
from sutskever30.nn.gpt import GPTConfig
from sutskever30.papers.scaling_laws.model import (
    ALPHA_C_MIN,
    ALPHA_D,
    ALPHA_N,
    N_C,
    N_OPT_EXPONENT,
    attention_share,
    bootstrap_ci,
    counted_flops_per_token,
    fit_power_law,
    frontier,
    shape,
    tokens_to_reach,
)
from sutskever30.papers.scaling_laws.training import load_corpus, train_size, trainer


@dataclass(frozen=True)
class SweepConfig:
    n_layers: tuple[int, ...] = (1, 2, 3, 4, 5)  # one model per depth, d_model = aspect·n
    aspect: int = 16  # d_model / n_layer, fixed across the sweep
    d_head: int = 16
    context: int = 64  # n_ctx, bytes
    batch_size: int = 32  # sequences per step
    steps: int = 700  # the same for every size: D = steps · batch_size · context tokens
    warmup_frac: float = 0.05  # linear warmup over this fraction of the steps
    lr_scale: float = 1.0  # × eq. D.1's learning rate
    grad_clip: float = 1.0
    n_evals: int = 40  # validation evaluations, log-spaced in steps
    val_seqs: int = 128  # sequences of the fixed validation sample
    final_window: float = 0.05  # the final training loss: mean over this last fraction
    bootstrap: int = 300  # resamples for each confidence interval
    frontier_points: int = 40
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        if len(set(self.n_layers)) < 3 or list(self.n_layers) != sorted(set(self.n_layers)):
            raise ValueError("n_layers must be ≥ 3 distinct depths in increasing order")
        for n in self.n_layers:
            shape(n, aspect=self.aspect, d_head=self.d_head, context=self.context, vocab_size=2)
        if min(self.n_layers) < 1 or self.context < 2 or self.batch_size < 1:
            raise ValueError("n_layers ≥ 1, context ≥ 2 and batch_size ≥ 1 are needed")
        if not 2 <= self.n_evals <= self.steps:
            raise ValueError("need 2 ≤ n_evals ≤ steps")
        if not 0 < self.warmup_frac < 1 or not 0 < self.final_window <= 1:
            raise ValueError("warmup_frac must be in (0, 1) and final_window in (0, 1]")
        if self.lr_scale <= 0 or self.grad_clip <= 0:
            raise ValueError("lr_scale and grad_clip must be > 0")
        if self.val_seqs < 2 or self.bootstrap < 0 or self.frontier_points < 2:
            raise ValueError("need val_seqs ≥ 2, bootstrap ≥ 0 and frontier_points ≥ 2")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be ≥ 0")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context

    @property
    def warmup(self) -> int:
        return max(1, round(self.warmup_frac * self.steps))

    def gpt(self, n_layer: int) -> GPTConfig:
        return shape(
            n_layer,
            aspect=self.aspect,
            d_head=self.d_head,
            context=self.context,
            vocab_size=VOCAB_SIZE,
        )

    def eval_steps(self) -> list[int]:
        """Steps (1-based counts) after which the validation loss is measured: log-spaced
        from 2% of the run to its end, as Fig. 2 plots against log tokens."""
        first = max(1, self.steps // 50)
        grid = np.geomspace(first, self.steps, self.n_evals).round().astype(int)
        return sorted(set(grid.tolist()))


# -- fits and claims ---------------------------------------------------------------------------
def loss_vs_n(run: Run, cfg: SweepConfig, sizes: list[dict]) -> dict:
    """L(N) = (N_c/N)^α_N + L_∞ on the final validation losses; the CI resamples the
    validation sequences (the same resample for every size)."""
    n = np.array([s["N"] for s in sizes], dtype=float)
    per_seq = np.stack([s["seq_losses"] for s in sizes], 1)  # (S, sizes)
    final = per_seq.mean(0)
    law = fit_power_law(n, final, offset=True)
    pure = fit_power_law(n, final, offset=False)
    total = fit_power_law([s["N_total"] for s in sizes], final, offset=True)
    lo, hi = bootstrap_ci(
        lambda idx: fit_power_law(n, per_seq[idx].mean(0), offset=True).alpha,
        len(per_seq),
        resamples=cfg.bootstrap,
        seed=run.seed,
    )
    decades = float(np.log10(n.max() / n.min()))
    run.claim(
        "loss_power_law_in_n",
        f"the final validation loss of {len(sizes)} sizes over {decades:.2f} decades of "
        "non-embedding N fits L(N) = (N_c/N)^α_N + L_∞ (log-space R² ≥ 0.95) with α_N > 0, "
        "the sizes spanning ≥ 1.5 decades",
        f"eq. 1.1, Fig. 1 right: α_N ≈ {ALPHA_N}, N_c ≈ {N_C:.1e} (trained to convergence)",
        {
            "r2": law.r2,
            "alpha_n": law.alpha,
            "alpha_n_ci90": [lo, hi],
            "n_c": law.x_c,
            "l_inf": law.offset,
            "decades": decades,
        },
        "r2 >= 0.95 and alpha_n > 0 and decades >= 1.5",
    )
    run.report(
        "loss_vs_n_pure_power_law",
        "the same final losses fitted by the pure power law (N_c/N)^α_N, as Kaplan fit it; "
        "and by (N_c/N)^α + L_∞ against all parameters, embeddings included (Fig. 6 left: "
        "counting them bends the curve)",
        f"α_N ≈ {ALPHA_N}",
        {
            "alpha_n_pure": pure.alpha,
            "r2_pure": pure.r2,
            "alpha_total_params": total.alpha,
            "r2_total_params": total.r2,
        },
    )
    return {"law": law, "pure": pure, "n": n, "final": final}


def sample_efficiency(run: Run, sizes: list[dict]) -> None:
    """The level is the smallest model's final validation loss (fixed before the run):
    tokens processed until each size first reaches it must fall as N grows, each step down
    by more than the seed-to-seed spread of that gap (over the quick preset's 3 seeds;
    strictly, with one seed)."""
    level = float(sizes[0]["val_curve"][-1])
    depths = ", ".join(str(s["n_layer"]) for s in sizes)
    ns = ", ".join(f"{s['N']:.2g}" for s in sizes)
    reach = {
        f"tokens_l{s['n_layer']}": tokens_to_reach(s["tokens"], s["val_curve"], level)
        for s in sizes
    }
    reached = sum(np.isfinite(t) for t in reach.values())
    budget = float(sizes[0]["tokens"][-1])
    reach = {k: min(t, budget) for k, t in reach.items()}  # not reached: the whole budget
    run.claim(
        "larger_models_more_sample_efficient",
        "to reach the smallest model's final validation loss (`level`), each larger model "
        "needs fewer training tokens than the next smaller one, by more than the "
        f"seed-to-seed spread of the gap (sizes by depth {depths}; N = {ns}; a size that "
        "never reaches it is shown at the whole budget and not counted in `reached`)",
        "Fig. 2 left: larger models reach the same loss with fewer tokens",
        {**reach, "level": level, "reached": reached, "sizes": len(sizes)},
        " and ".join(
            ["reached == sizes", *(f"{a} > {b} + spread" for a, b in itertools.pairwise(reach))]
        ),
    )


def loss_vs_data(run: Run, cfg: SweepConfig, sizes: list[dict]) -> dict:
    """Eq. 1.2's form L(D) = (D_c/D)^α_D on the largest model's learning curve after warmup;
    the CI resamples its evaluation points."""
    big = sizes[-1]
    keep = big["tokens"] > cfg.warmup * cfg.tokens_per_step
    tokens, curve = big["tokens"][keep], big["val_curve"][keep]
    law = fit_power_law(tokens, curve, offset=False)
    lo, hi = bootstrap_ci(
        lambda idx: fit_power_law(tokens[idx], curve[idx], offset=False).alpha,
        len(tokens),
        resamples=cfg.bootstrap,
        seed=run.seed,
    )
    run.report(
        "loss_vs_tokens",
        f"L(D) = (D_c/D)^α_D fitted to the largest model's (N = {big['N']:.2g}) validation "
        "loss against tokens processed, after warmup (one epoch: every token new)",
        f"eq. 1.2: α_D ≈ {ALPHA_D} (early-stopped, data-limited runs)",
        {"alpha_d": law.alpha, "alpha_d_ci90": [lo, hi], "d_c": law.x_c, "r2": law.r2},
    )
    return {"law": law, "tokens": tokens}


def compute_frontier(run: Run, cfg: SweepConfig, sizes: list[dict]) -> dict:
    """The lower envelope of all learning curves against C = flops_per_token · tokens, from
    the end of the smallest model's warmup to the largest model's last step; L(C_min) =
    (C_c/C)^α_C fitted on it (CI: resampled frontier points), and the exponent of the
    size on the frontier against C."""
    c_lo = cfg.warmup * cfg.tokens_per_step * sizes[0]["flops_per_token"]
    c_hi = sizes[-1]["compute"][-1]
    grid = np.geomspace(max(c_lo, sizes[0]["compute"][0]), c_hi, cfg.frontier_points)
    envelope, best = frontier([(s["compute"], s["val_curve"]) for s in sizes], grid)
    ok = best >= 0
    grid, envelope, best = grid[ok], envelope[ok], best[ok]
    law = fit_power_law(grid, envelope, offset=False)
    lo, hi = bootstrap_ci(
        lambda idx: fit_power_law(grid[idx], envelope[idx], offset=False).alpha,
        len(grid),
        resamples=cfg.bootstrap,
        seed=run.seed,
    )
    n_opt = np.array([sizes[k]["N"] for k in best], dtype=float)
    n_exp = float(np.polyfit(np.log(grid), np.log(n_opt), 1)[0])
    run.report(
        "compute_frontier",
        "L(C_min) = (C_c/C)^α_C on the compute-efficient frontier (the lowest loss of any "
        "size at each compute C), and the exponent of N on the frontier against C",
        f"eq. 1.3: α_C^min ≈ {ALPHA_C_MIN}; N_opt ∝ C^{N_OPT_EXPONENT}",
        {
            "alpha_c": law.alpha,
            "alpha_c_ci90": [lo, hi],
            "r2": law.r2,
            "n_opt_exponent": n_exp,
            "sizes_on_frontier": len(set(best.tolist())),
        },
    )
    return {"law": law, "grid": grid, "envelope": envelope}


def flop_accounting(run: Run, sizes: list[dict], cfg: SweepConfig) -> None:
    """C per token of Table 1 beside torch's flop counter (full, non-causal attention and
    no bias FLOPs), and the share of C that is attention rather than 6N."""
    measured = {}
    for s in sizes:
        gpt_cfg = cfg.gpt(s["n_layer"])
        key = f"l{s['n_layer']}"
        measured[f"counted_over_kaplan_{key}"] = (
            counted_flops_per_token(gpt_cfg) / s["flops_per_token"]
        )
        measured[f"attention_share_{key}"] = attention_share(gpt_cfg)
    run.report(
        "flops_per_token",
        "training FLOPs per token: torch.utils.flop_counter over Table 1's "
        "6N + 6 n_layer n_ctx d_model (the counter sees full rather than causal attention), "
        "and the attention share of C per size",
        "Table 1: C ≈ 6N per token when d_model > n_ctx/12",
        measured,
    )


# -- plots -------------------------------------------------------------------------------------
def _loss_axes(ax, xlabel: str) -> None:
    """Log-log axes as Kaplan draw them, the loss ticks as plain numbers."""
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="validation loss (nats/token)")
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(mticker.FormatStrFormatter("%.2g"))
    ax.grid(alpha=0.3, which="both")


def plot_loss_vs_n(run: Run, fit_n: dict) -> None:
    """Fig. 1 right: final validation loss against non-embedding N, the fit and the paper's
    slope through the smallest model."""
    fig, (ax,) = plots.figure(height=4.2)
    n, final, law = fit_n["n"], fit_n["final"], fit_n["law"]
    ax.plot(n, final, "o", color="C0", label="final validation loss")
    xs = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    fit_label = f"(N_c/N)^{law.alpha:.3f} + {law.offset:.2f}, R² {law.r2:.3f}"
    ax.plot(xs, law(xs), "-", color="C1", label=fit_label)
    anchor = final[0] * (xs / n[0]) ** -ALPHA_N
    ax.plot(xs, anchor, ":", color="grey", label=f"the paper's slope, α_N = {ALPHA_N}")
    _loss_axes(ax, "non-embedding parameters N")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2))
    plots.save(fig, run.plot_path("loss_vs_n.png"))


def plot_curves(run: Run, sizes: list[dict], fit_d: dict, front: dict) -> None:
    """Fig. 2: validation loss against tokens processed (left) and against compute with the
    frontier and its fit (right), each size coloured by N (colour bar)."""
    norm = mcolors.LogNorm(sizes[0]["N"], sizes[-1]["N"])
    cmap = mpl.colormaps["viridis"]
    fig, axes = plots.figure(ncols=2, height=4.0)
    fig.set_layout_engine("constrained")
    for s in sizes:
        colour = cmap(norm(s["N"]))
        axes[0].plot(s["tokens"], s["val_curve"], "-", color=colour, lw=1.5)
        axes[1].plot(s["compute"], s["val_curve"], "-", color=colour, lw=1.2)
    law_d, law_c = fit_d["law"], front["law"]
    d_label = f"largest size: L(D) ∝ D^-{law_d.alpha:.3f}"
    axes[0].plot(fit_d["tokens"], law_d(fit_d["tokens"]), "--", color="C3", label=d_label)
    axes[1].plot(
        front["grid"],
        front["envelope"],
        "-",
        color="k",
        lw=4,
        alpha=0.25,
        label="frontier (lower envelope)",
    )
    c_label = f"fit: L(C_min) ∝ C^-{law_c.alpha:.3f}"
    axes[1].plot(front["grid"], law_c(front["grid"]), "--", color="C3", label=c_label)
    _loss_axes(axes[0], "tokens processed D")
    _loss_axes(axes[1], "compute C (FLOPs, 6N + attention per token)")
    for ax in axes:
        ax.legend(loc="lower left")
    mappable = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=axes, label="non-embedding parameters N")
    fig.savefig(run.plot_path("loss_vs_tokens_and_compute.png"), dpi=110)
    plt.close(fig)


# -- the run -----------------------------------------------------------------------------------
def run_sweep(run: Run, cfg: SweepConfig) -> None:
    corpus = load_corpus(cfg)
    run.nets_total = len(cfg.n_layers)
    sizes = [train_size(run, cfg, n, corpus) for n in cfg.n_layers]
    big = sizes[-1]
    for s in sizes:
        run.summary[f"L{s['n_layer']}"] = {
            "N": s["N"],
            "N_total": s["N_total"],
            "d_model": s["d_model"],
            "lr": s["lr"],
            "final_val_loss": float(s["seq_losses"].mean()),
            "final_train_loss": s["final_train_loss"],
            "tokens": float(s["tokens"][-1]),
            "compute_flops": float(s["compute"][-1]),
        }
    fit_n = loss_vs_n(run, cfg, sizes)
    sample_efficiency(run, sizes)
    fit_d = loss_vs_data(run, cfg, sizes)
    front = compute_frontier(run, cfg, sizes)
    flop_accounting(run, sizes, cfg)
    run.report(
        "largest_model_train_val_gap",
        f"the largest model (N = {big['N']:.2g}) after {big['tokens'][-1]:,.0f} tokens, one "
        "epoch: training loss on its last fresh batches against held-out validation loss",
        "Sec. 3: no overfitting while every token is new",
        {
            "train_loss": big["final_train_loss"],
            "val_loss": float(big["seq_losses"].mean()),
            "train_tokens_used_fraction": big["tokens"][-1] / (corpus["n_seq"] * cfg.context),
        },
    )
    plot_loss_vs_n(run, fit_n)
    plot_curves(run, sizes, fit_d, front)


def bench(run: Run) -> list[BenchCase]:
    """The quick sweep's smallest and largest models with the experiment's own step."""
    cfg = run.cfg
    corpus = load_corpus(cfg)
    cases = []
    for n in (cfg.n_layers[0], cfg.n_layers[-1]):
        gpt_cfg, model, opt, _, step = trainer(run, cfg, n, corpus)
        name = f"L{n} d{gpt_cfg.d_model} N={gpt_cfg.non_embedding_params:,}"
        cases.append(BenchCase(name, model, opt, step, cfg.tokens_per_step, 1))
    return cases


SMOKE = SweepConfig(
    n_layers=(1, 2, 3),
    aspect=8,
    d_head=8,
    context=16,
    batch_size=4,
    steps=24,
    n_evals=6,
    val_seqs=8,
    bootstrap=20,
    frontier_points=8,
)
QUICK = SweepConfig()
# Kaplan's setting: 2.5e5 steps of 512 × 1024 tokens (far beyond this corpus), sizes 1e3 … 1e9.
FULL = SweepConfig(
    n_layers=(2, 4, 6, 8, 12),
    aspect=64,
    d_head=64,
    context=256,
    batch_size=64,
    steps=600,
    n_evals=60,
    val_seqs=512,
    bootstrap=1000,
)

PAPER = Paper(
    slug="scaling_laws",
    title="Scaling Laws for Neural Language Models",
    authors="Kaplan, McCandlish, Henighan, Brown, Chess, Child, Gray, Radford, Wu, Amodei",
    year=2020,
    arxiv="2001.08361",
    bench=bench,
    experiments=(
        Experiment(
            name="sweep",
            description="GPT sizes over ≥ 1.5 decades of N on one token budget: L(N), L(D), "
            "L(C) and the compute frontier (Fig. 1, 2)",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_sweep,
            quick_minutes=12.9,
            datasets=("python_source",),
            quick_seeds=3,
        ),
    ),
)
