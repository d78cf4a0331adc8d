"""Training for the three arms of the FreeSolv experiment: the ordinary nets (no penalty;
weight decay with λ by k-fold cross-validation, every fold and λ one batch of nets) and the
noisy-weight net minimising its description length with the annealed cost coefficient."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from sutskever30.core.run import Run
from sutskever30.papers.mdl_weights.model import (
    LogisticMLP,
    MixturePrior,
    NoisyWeightNet,
    description_length,
)

if TYPE_CHECKING:
    from sutskever30.papers.mdl_weights.experiment import MDLConfig

LN2 = math.log(2.0)


def beta_at(step: int, cfg: MDLConfig) -> float:
    """The annealed cost coefficient: beta_start → 1 geometrically over the first
    anneal_fraction of the steps, then 1."""
    ramp = cfg.anneal_fraction * cfg.steps
    if step >= ramp:
        return 1.0
    return cfg.beta_start ** (1.0 - step / ramp)


def relative_error(pred: torch.Tensor, d: torch.Tensor) -> float:
    """Mean squared error / variance of the targets."""
    return float(((d - pred) ** 2).mean() / d.var(unbiased=False))


def train_plain(
    net: LogisticMLP,
    a: torch.Tensor,
    d: torch.Tensor,
    *,
    mask: torch.Tensor,
    lam: torch.Tensor,
    cfg: MDLConfig,
) -> None:
    """Full-batch Adam on Σ_n mask_en (d_n − y_en)² + λ_e Σ w² for every net e at once
    (mask (E, N) picks each net's training cases)."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, foreach=True)
    for _ in range(cfg.steps):
        opt.zero_grad()
        sq_err = ((d - net(a)) ** 2 * mask).sum(1)  # (E,)
        (sq_err + lam * net.sum_squared_weights()).sum().backward()
        opt.step()


def cv_masks(n: int, k: int, n_lambdas: int, gen: torch.Generator) -> torch.Tensor:
    """(E, N) 0/1 training masks of the E = n_lambdas · k cross-validation nets: net e =
    (λ index e // k, fold e % k) trains on every case outside its fold. Folds are a random
    partition of the N cases into k near-equal parts."""
    fold = torch.randperm(n, generator=gen) % k  # (N,) each case's validation fold
    net_fold = torch.arange(k).repeat(n_lambdas)  # (E,)
    return (fold[None, :] != net_fold[:, None]).to(torch.float64)


def choose_weight_decay(
    cfg: MDLConfig, a: torch.Tensor, d: torch.Tensor, gen: torch.Generator
) -> tuple[float, list[float]]:
    """λ with the lowest k-fold cross-validation error on the training cases, and the mean
    validation MSE of every λ in the grid. All folds × λ train as one batch of nets."""
    grid = torch.tensor(cfg.wd_grid, dtype=d.dtype)
    k = cfg.cv_folds
    mask = cv_masks(len(d), k, len(grid), gen).to(d.dtype)  # (E, N) 1 = trained on
    net = LogisticMLP(
        n_inputs=a.shape[1],
        n_hidden=cfg.n_hidden,
        n_nets=len(grid) * k,
        init_scale=cfg.init_scale,
        generator=gen,
    )
    train_plain(net, a, d, mask=mask, lam=grid.repeat_interleave(k), cfg=cfg)
    with torch.no_grad():
        held_out = 1 - mask
        val = ((d - net(a)) ** 2 * held_out).sum(1) / held_out.sum(1)  # (E,)
    val_per_lambda = val.view(len(grid), k).mean(1)
    return float(grid[val_per_lambda.argmin()]), val_per_lambda.tolist()


def train_mdl(
    run: Run,
    cfg: MDLConfig,
    a: torch.Tensor,
    d: torch.Tensor,
    *,
    quantum: float,
    key: str,
    gen: torch.Generator,
) -> tuple[NoisyWeightNet, MixturePrior, list[dict]]:
    """Minimise L_D + β L_W (nats) over the noisy weights and the prior's parameters,
    logging the description length in bits under ``key`` every ``log_every`` steps."""
    net = NoisyWeightNet(
        n_inputs=a.shape[1],
        n_hidden=cfg.n_hidden,
        init_scale=cfg.init_scale,
        init_sigma=cfg.init_sigma,
        generator=gen,
    )
    k = cfg.n_components
    prior = MixturePrior(
        means=torch.linspace(-cfg.prior_range, cfg.prior_range, k, dtype=d.dtype),
        stds=torch.full((k,), cfg.prior_std, dtype=d.dtype),
    )
    opt = torch.optim.Adam([*net.parameters(), *prior.parameters()], lr=cfg.lr, foreach=True)
    history = []
    for step in range(cfg.steps + 1):
        beta = beta_at(step, cfg)
        misfit, weights = description_length(net, prior, a, d, quantum)
        if step % cfg.log_every == 0 or step == cfg.steps:
            record = {
                "key": key,
                "step": step,
                "beta": beta,
                "misfit_bits": misfit.item() / LN2,
                "weight_bits": weights.item() / LN2,
            }
            run.log(record)
            history.append(record)
        if step == cfg.steps:
            break
        opt.zero_grad()
        (misfit + beta * weights).backward()
        opt.step()
    return net, prior, history
