"""Hinton & van Camp's experiment on a real small-sample regression task: 128 binary inputs,
105 training cases, 420 test cases, 4 logistic hidden units, one linear output.

The paper's data set is not available; here the inputs are 128-bit Morgan fingerprints
(radius 2) of FreeSolv molecules and the target is the measured hydration free energy.
Each draw takes a random 105 training and 420 test molecules (the rest are unused) and
trains three nets of the same architecture with the same optimiser and the same number of
full-batch steps:

1. no penalty: ordinary weights, sum of squared errors;
2. weight decay: sum of squared errors + λ Σ w², λ from a grid by k-fold cross-validation
   on the 105 training cases only (every fold and λ trained with the same budget);
3. MDL: noisy weights (model.py), minimising data misfit + β · weight cost in nats with
   the adaptive mixture-of-Gaussians prior, β annealed geometrically from ``beta_start``
   to 1 over the first ``anneal_fraction`` of the steps.

Relative test error = mean squared error / variance of the test targets (predicting the
test mean scores 1). The claims compare the draws' mean relative errors; the quick preset
runs 3 seeds of 3 draws each, and the margin for "within reach of weight decay" was fixed
before the first quick run (``within_wd`` = 1.15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.data.molecules import FREESOLV_SIZE, load_freesolv_fingerprints
from sutskever30.papers.mdl_weights.model import LogisticMLP, description_length, misfit_nats
from sutskever30.papers.mdl_weights.training import (
    LN2,
    choose_weight_decay,
    relative_error,
    train_mdl,
    train_plain,
)

# The paper's relative test errors (128 inputs, 105 training / 420 test cases, 4 hidden).
PAPER_REL_ERR = {"none": 0.967, "wd": 0.317, "mdl": 0.286}
ARMS = {"none": "no penalty", "wd": "weight decay\n(λ by CV)", "mdl": "MDL\n(noisy weights)"}


@dataclass(frozen=True)
class MDLConfig:
    n_train: int = 105
    n_test: int = 420
    radius: int = 2  # Morgan fingerprint radius
    n_bits: int = 128  # fingerprint length = number of inputs
    n_hidden: int = 4
    draws: int = 3  # random train/test draws per seed
    steps: int = 3000  # full-batch Adam steps, the same for every net of every arm
    lr: float = 0.01
    init_scale: float = 0.1  # std of the initial weights (means, for MDL)
    init_sigma: float = 0.05  # initial std of every noisy weight
    n_components: int = 5  # Gaussians in the adaptive prior
    prior_range: float = 1.0  # initial prior means spread evenly over ±prior_range
    prior_std: float = 0.5  # initial std of every prior component
    beta_start: float = 0.01  # weight-cost coefficient at step 0, annealed to 1
    anneal_fraction: float = 0.5  # of the steps spent annealing β
    cv_folds: int = 5
    wd_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    quantum: float = 0.01  # kcal/mol: width to which targets are coded (FreeSolv's precision)
    within_wd: float = 1.15  # a priori margin: MDL error ≤ within_wd × weight decay's
    log_every: int = 100

    def __post_init__(self) -> None:
        if self.n_train < 2 * self.cv_folds or self.n_test < 2:
            raise ValueError("need n_train ≥ 2 · cv_folds and n_test ≥ 2")
        if self.n_train + self.n_test > FREESOLV_SIZE:
            raise ValueError(f"n_train + n_test must be ≤ {FREESOLV_SIZE} (FreeSolv's size)")
        if min(self.radius, self.n_bits, self.n_hidden, self.draws, self.n_components) < 1:
            raise ValueError("radius, n_bits, n_hidden, draws and n_components must be ≥ 1")
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be ≥ 2")
        if not self.wd_grid or min(self.wd_grid) <= 0:
            raise ValueError("wd_grid must hold positive weight-decay coefficients")
        if not 0 < self.beta_start <= 1 or not 0 <= self.anneal_fraction <= 1:
            raise ValueError("need 0 < beta_start ≤ 1 and 0 ≤ anneal_fraction ≤ 1")
        positive = (self.init_scale, self.init_sigma, self.prior_range, self.prior_std)
        if min(positive) <= 0 or self.quantum <= 0 or self.within_wd <= 0:
            raise ValueError("init_scale, init_sigma, prior_*, quantum, within_wd must be > 0")
        if self.log_every < 1:
            raise ValueError("log_every must be ≥ 1")


def one_draw(run: Run, cfg: MDLConfig, x: np.ndarray, y: np.ndarray, k: int, bar) -> dict:
    """Train the three arms on draw ``k`` of this seed; their test errors and the MDL net's
    description length."""
    rng = np.random.default_rng([run.seed, k])
    order = rng.permutation(len(y))
    train, test = order[: cfg.n_train], order[cfg.n_train : cfg.n_train + cfg.n_test]
    mean, std = y[train].mean(), y[train].std()

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.from_numpy(x[idx].astype(np.float64))
        return a, torch.from_numpy((y[idx] - mean) / std)

    (a, d), (a_test, d_test) = tensors(train), tensors(test)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    everything = torch.ones(1, len(d), dtype=d.dtype)
    out: dict = {"draw": k}

    none = LogisticMLP(
        n_inputs=a.shape[1], n_hidden=cfg.n_hidden, init_scale=cfg.init_scale, generator=gen
    )
    train_plain(none, a, d, mask=everything, lam=torch.zeros(1, dtype=d.dtype), cfg=cfg)
    with torch.no_grad():
        out["none_rel_err"] = relative_error(none(a_test)[0], d_test)
        out["none_train_rel_err"] = relative_error(none(a)[0], d)
    bar.update()

    lam, cv_err = choose_weight_decay(cfg, a, d, gen)
    wd = LogisticMLP(
        n_inputs=a.shape[1], n_hidden=cfg.n_hidden, init_scale=cfg.init_scale, generator=gen
    )
    train_plain(wd, a, d, mask=everything, lam=torch.tensor([lam], dtype=d.dtype), cfg=cfg)
    with torch.no_grad():
        out["wd_rel_err"] = relative_error(wd(a_test)[0], d_test)
        out["wd_train_rel_err"] = relative_error(wd(a)[0], d)
    out["wd_lambda"], out["wd_cv_mse"] = lam, cv_err
    bar.update()

    quantum = cfg.quantum / std  # coding width in standardized units
    net, prior, history = train_mdl(run, cfg, a, d, quantum=quantum, key=f"mdl/draw{k}", gen=gen)
    with torch.no_grad():
        out["mdl_rel_err"] = relative_error(net(a_test), d_test)
        out["mdl_train_rel_err"] = relative_error(net(a), d)
        misfit, weights = description_length(net, prior, a, d, quantum)
        mu, sigma = net.posterior()
        s = prior.log_s.exp()
        grid = torch.linspace(
            min(mu.min(), (prior.m - 2 * s).min()), max(mu.max(), (prior.m + 2 * s).max()), 800
        ).to(mu.dtype)
        out.update(
            misfit_bits=misfit.item() / LN2,
            weight_bits=weights.item() / LN2,
            no_model_bits=misfit_nats(torch.ones_like(d), quantum).item() / LN2,
            posterior_mu=mu.tolist(),
            prior_grid=grid.tolist(),
            prior_components=prior.log_components(grid).exp().T.tolist(),  # (K, 800)
            prior_density=prior.log_prob(grid).exp().tolist(),
            weights_per_component=torch.bincount(
                prior.responsibilities(mu, sigma).argmax(1), minlength=len(s)
            ).tolist(),
            history=history,
        )
    bar.update()
    bar.set_postfix(
        none=f"{out['none_rel_err']:.3f}",
        wd=f"{out['wd_rel_err']:.3f}",
        mdl=f"{out['mdl_rel_err']:.3f}",
    )
    return out


def plot_test_error(run: Run, cfg: MDLConfig, draws: list[dict]) -> None:
    """Relative test error per arm: mean ± std over this seed's draws, each draw a dot, the
    paper's numbers as crosses."""
    fig, (ax,) = plots.figure(height=4.0)
    xs = np.arange(len(ARMS))
    for i, arm in enumerate(ARMS):
        errs = np.array([r[f"{arm}_rel_err"] for r in draws])
        ax.bar(
            i,
            errs.mean(),
            yerr=errs.std() if len(errs) > 1 else None,
            capsize=5,
            color=f"C{i}",
            alpha=0.6,
            label="mean ± std over draws" if i == 0 else None,
        )
        ax.plot(
            np.full(len(errs), i), errs, "o", color="k", ms=3, label="one draw" if i == 0 else None
        )
    ax.plot(
        xs,
        [PAPER_REL_ERR[a] for a in ARMS],
        "x",
        color="crimson",
        ms=9,
        mew=2,
        label="Hinton & van Camp 1993",
    )
    ax.set_xticks(xs, list(ARMS.values()))
    ax.set_ylabel("relative test error (MSE / var)")
    ax.set_title(f"FreeSolv: {len(draws)} draw(s) of {cfg.n_train} training molecules")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8)
    plots.save(fig, run.plot_path("test_error.png"))


def plot_prior(run: Run, draw: dict) -> None:
    """The learned mixture prior over the histogram of the posterior means (one draw); each
    component's label says how many weights it codes (their most probable component)."""
    mu, w = np.array(draw["posterior_mu"]), np.array(draw["prior_grid"])
    fig, (ax,) = plots.figure(height=4.6)
    ax.hist(mu, bins=60, density=True, color="0.7", label=f"posterior means μ ({len(mu)})")
    ax.plot(w, draw["prior_density"], "C3", lw=2, label="learned prior P(w)")
    parts = zip(draw["prior_components"], draw["weights_per_component"], strict=True)
    for k, (part, n) in enumerate(parts):
        colour = f"C{k if k < 3 else k + 1}"  # C3 is the prior's
        ax.plot(w, part, "--", color=colour, lw=1, label=f"component {k + 1}: {n} weights")
    ax.set_yscale("log")
    ax.set_ylim(1e-3, None)
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.set_title("adaptive mixture prior (draw 0)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    plots.save(fig, run.plot_path("prior_mixture.png"))


def plot_description_length(run: Run, cfg: MDLConfig, draw: dict) -> None:
    """Misfit and weight bits of the MDL net during training, with the annealed β."""
    hist = draw["history"]
    steps = [h["step"] for h in hist]
    fig, (ax,) = plots.figure()
    plots.draw_lines(
        ax,
        {
            "data misfit": (steps, [h["misfit_bits"] for h in hist]),
            "weights": (steps, [h["weight_bits"] for h in hist]),
            "total": (steps, [h["misfit_bits"] + h["weight_bits"] for h in hist]),
        },
        xlabel="step",
        ylabel="bits",
        title=f"description length of the {cfg.n_train} training targets (draw 0)",
    )
    ax.get_legend().remove()
    twin = ax.twinx()
    twin.plot(steps, [h["beta"] for h in hist], "k:", lw=1.2, label="β (right axis)")
    twin.set_ylabel("β")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(
        lines,
        [ln.get_label() for ln in lines],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        ncol=4,
        fontsize=8,
    )
    plots.save(fig, run.plot_path("description_length.png"))


def run_freesolv(run: Run, cfg: MDLConfig) -> None:
    x, y = load_freesolv_fingerprints(radius=cfg.radius, n_bits=cfg.n_bits)
    bar = run.progress(3 * cfg.draws, "mdl_weights: no penalty, weight decay, MDL")
    draws = [one_draw(run, cfg, x, y, k, bar) for k in range(cfg.draws)]
    bar.close()

    def mean(name: str) -> float:
        return float(np.mean([r[name] for r in draws]))

    keys = (
        "none_rel_err",
        "wd_rel_err",
        "mdl_rel_err",
        "none_train_rel_err",
        "wd_train_rel_err",
        "mdl_train_rel_err",
        "misfit_bits",
        "weight_bits",
        "no_model_bits",
        "wd_lambda",
    )
    run.summary["draws"] = [{k: r[k] for k in (*keys, "wd_cv_mse")} for r in draws]
    run.summary["mean"] = {k: mean(k) for k in keys}
    plot_test_error(run, cfg, draws)
    plot_prior(run, draws[0])
    plot_description_length(run, cfg, draws[0])

    anchor = "Hinton & van Camp 1993 (128 inputs, 105 training / 420 test cases, 4 hidden)"
    run.claim(
        "mdl_beats_no_penalty",
        "noisy-weight MDL has lower relative test error than the same net trained with no "
        "penalty (by more than the seed-to-seed spread of the gap)",
        f"{anchor}: 0.286 vs 0.967",
        {"mdl_rel_err": mean("mdl_rel_err"), "none_rel_err": mean("none_rel_err")},
        "none_rel_err > mdl_rel_err + spread",
    )
    run.claim(
        "mdl_near_weight_decay",
        f"MDL relative test error within {cfg.within_wd}× that of weight decay with λ chosen "
        f"by {cfg.cv_folds}-fold cross-validation on the training cases (margin fixed "
        "before the first run)",
        f"{anchor}: 0.286 (MDL) vs 0.317 (weight decay by cross-validation)",
        {
            "mdl_rel_err": mean("mdl_rel_err"),
            "wd_rel_err": mean("wd_rel_err"),
            "within": cfg.within_wd,
        },
        "mdl_rel_err <= within * wd_rel_err",
    )
    run.report(
        "description_length_bits",
        f"description length of the {cfg.n_train} training targets (coded to "
        f"{cfg.quantum} kcal/mol) by the MDL net: data misfit + weights, beside coding "
        "them with a single Gaussian (no model)",
        "the paper minimises misfit + weight bits; it quotes no totals",
        {
            "misfit_bits": mean("misfit_bits"),
            "weight_bits": mean("weight_bits"),
            "total_bits": mean("misfit_bits") + mean("weight_bits"),
            "no_model_bits": mean("no_model_bits"),
        },
    )


SMOKE = MDLConfig(
    n_train=30,
    n_test=40,
    draws=1,
    steps=30,
    cv_folds=2,
    wd_grid=(0.01, 1.0),
    log_every=10,
)
QUICK = MDLConfig()
FULL = MDLConfig(draws=10, steps=20_000)

EXPERIMENT = Experiment(
    name="freesolv",
    description="noisy-weight MDL vs no penalty vs CV weight decay, 105 FreeSolv molecules",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_freesolv,
    quick_minutes=1.6,  # measured, idle 2-core machine, 3 seeds side by side
    datasets=("freesolv",),
    quick_seeds=3,
)

PAPER = Paper(
    slug="mdl_weights",
    title="Keeping Neural Networks Simple by Minimizing the Description Length of the Weights",
    authors="Hinton, van Camp",
    year=1993,
    arxiv="",
    experiments=(EXPERIMENT,),
)
