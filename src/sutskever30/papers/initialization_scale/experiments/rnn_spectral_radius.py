"""(c) A recurrent net's state norm over 100 steps against the spectral radius ρ of its
recurrent matrix (free evolution, no training): linear and tanh, Gaussian matrices rescaled
to ρ, and orthogonal ones.

Deviations from the paper: the interview states no experiment; sizes, radii and thresholds
are ours (README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.initialization_scale.model import ElmanRNN, recurrent_matrix


@dataclass(frozen=True)
class RNNConfig:
    hidden_size: int = 256
    steps: int = 100
    rhos: tuple[float, ...] = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)
    draws: int = 4  # recurrent matrices per ρ
    batch_size: int = 8  # initial states per matrix
    decay_below: float = 0.9  # ρ ≤ this must shrink the state by > band
    explode_above: float = 1.1  # ρ ≥ this must grow it by > band
    band: float = 100.0
    # Past the transient (t ≥ rate_from) the norm should grow like ρ^t: the measured per-step
    # log growth rate must equal log ρ within rate_tolerance, which resolves ρ = 0.95 and
    # 1.05 (|log ρ| ≈ 0.05) from ρ = 1.
    rate_from: int = 50
    rate_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.hidden_size < 2 or self.steps < 1 or self.draws < 1 or self.batch_size < 1:
            raise ValueError("hidden_size ≥ 2; steps, draws and batch_size positive")
        if not 0 <= self.rate_from < self.steps:
            raise ValueError("rate_from must be in [0, steps)")
        if 1.0 not in self.rhos or min(self.rhos) > self.decay_below:
            raise ValueError("rhos must contain 1.0 and a value ≤ decay_below")
        if max(self.rhos) < self.explode_above:
            raise ValueError("rhos must contain a value ≥ explode_above")


def rnn_norms(
    w_hh: torch.Tensor, *, activation: str, steps: int, h0: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Free evolution (zero input) from h0 (B, H). Returns, averaged over the batch, the log of
    ||h_t||/||h_0|| for t = 0..T and the log norm of ∂(u·h_T)/∂h_t for a random unit u
    (backpropagation; 0 at t = T)."""
    rnn = ElmanRNN(w_hh=w_hh, input_size=1, activation=activation)
    h0 = h0.clone().requires_grad_(True)
    hs = rnn.states(torch.zeros(steps, h0.shape[0], 1, dtype=w_hh.dtype), h0)
    u = torch.nn.functional.normalize(torch.randn_like(h0), dim=1)  # (B, H)
    grads = torch.autograd.grad((hs[-1] * u).sum(), hs)
    fwd = torch.stack([h.detach().norm(dim=1) for h in hs]) / h0.detach().norm(dim=1)  # (T+1, B)
    bwd = torch.stack([g.norm(dim=1) for g in grads])  # (T+1, B); 1 at t = T
    return fwd.log().mean(1).numpy(), bwd.log().mean(1).numpy()


def measure_rnns(run: Run, cfg: RNNConfig) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """Per (activation, matrix): the forward and backward norm ratios over t = 0..T,
    geometric means over matrices and initial states."""
    results = {}
    cases = [(act, f"ρ={rho:g}", rho, "gaussian") for act in ("linear", "tanh") for rho in cfg.rhos]
    cases += [(act, "orthogonal", 1.0, "orthogonal") for act in ("linear", "tanh")]
    for act, label, rho, kind in cases:
        fwd, bwd = [], []
        for d in range(cfg.draws):
            gen = torch.Generator().manual_seed(run.seed * 7919 + d)
            w = recurrent_matrix(cfg.hidden_size, rho=rho, kind=kind, generator=gen)
            h0 = torch.randn(cfg.batch_size, cfg.hidden_size, dtype=w.dtype, generator=gen)
            f, b = rnn_norms(w, activation=act, steps=cfg.steps, h0=h0)
            fwd.append(f)
            bwd.append(b)
        results[(act, label)] = (np.exp(np.mean(fwd, 0)), np.exp(np.mean(bwd, 0)))
        run.log({"key": f"{act} {label}", "state_norm": results[(act, label)][0].tolist()})
    return results


def rnn_claims(run: Run, cfg: RNNConfig, results: dict) -> None:
    final = {key: float(v[0][-1]) for key, v in results.items()}
    small = {r: final[("linear", f"ρ={r:g}")] for r in cfg.rhos if r <= cfg.decay_below}
    large = {r: final[("linear", f"ρ={r:g}")] for r in cfg.rhos if r >= cfg.explode_above}
    run.claim(
        "rnn_decays_or_explodes",
        f"linear RNN, {cfg.steps} steps: ||h_T||/||h_0|| < 1/{cfg.band:g} for ρ ≤ "
        f"{cfg.decay_below:g} and > {cfg.band:g} for ρ ≥ {cfg.explode_above:g}",
        "too small: the signal decays; too large: it explodes",
        {
            **{f"rho{r:g}": v for r, v in {**small, **large}.items()},
            **{f"theory_rho{r:g}": r**cfg.steps for r in {**small, **large}},
            "largest_decaying": max(small.values()),
            "smallest_exploding": min(large.values()),
            "band": cfg.band,
        },
        "largest_decaying < 1 / band and smallest_exploding > band",
    )
    span = cfg.steps - cfg.rate_from
    norms = {r: results[("linear", f"ρ={r:g}")][0] for r in cfg.rhos}
    rates = {r: float(np.log(v[-1] / v[cfg.rate_from]) / span) for r, v in norms.items()}
    deviation = max(abs(rate - math.log(r)) for r, rate in rates.items())
    run.claim(
        "rnn_rate_is_log_rho",
        f"linear RNN: the per-step log growth of ||h_t|| over steps {cfg.rate_from}–{cfg.steps} "
        f"equals log ρ within {cfg.rate_tolerance:g} for every ρ (no exponential trend at ρ = 1)",
        "the state scales with the eigenvalues: a 'sweet spot' where they are 'around one'",
        {
            **{f"rate_rho{r:g}": v for r, v in rates.items()},
            "max_abs_deviation": deviation,
            "tolerance": cfg.rate_tolerance,
        },
        "max_abs_deviation < tolerance",
    )
    one, ortho = final[("linear", "ρ=1")], final[("linear", "orthogonal")]
    run.claim(
        "orthogonal_keeps_norm",
        f"orthogonal W (every eigenvalue on the unit circle) keeps ||h_T|| = ||h_0|| over "
        f"{cfg.steps} steps (|ratio - 1| < 1e-9); Gaussian W at ρ = 1 loses the components on "
        "its interior eigenvalues",
        "eigenvalues 'around one'",
        {"orthogonal": ortho, "gaussian_rho1": one},
        "abs(orthogonal - 1) < 1e-9",
    )
    tanh = {label: v for (act, label), v in results.items() if act == "tanh"}
    run.summary.update(
        rho1_state_ratio=one,
        max_rate_deviation=deviation,
        tanh_state_ratio={label: float(f[-1]) for label, (f, _) in tanh.items()},
        tanh_grad_ratio={label: float(b[0]) for label, (_, b) in tanh.items()},
    )
    run.notes.append(
        "tanh RNN, reported not asserted: summary keys tanh_state_ratio (||h_T||/||h_0||) and "
        "tanh_grad_ratio (||∂(u·h_T)/∂h_0||, u a random unit vector) per spectral radius."
    )


def plot_norms(run: Run, cfg: RNNConfig, results: dict) -> None:
    t = np.arange(cfg.steps + 1)
    fig, axes = plots.figure(ncols=3)
    for ax, act, idx, ylabel in (
        (axes[0], "linear", 0, "||h_t|| / ||h_0||"),
        (axes[1], "tanh", 0, "||h_t|| / ||h_0||"),
        (axes[2], "tanh", 1, "||∂(u·h_T)/∂h_t||"),
    ):
        plots.draw_lines(
            ax,
            {label: (t, v[idx]) for (a, label), v in results.items() if a == act},
            xlabel="step t",
            ylabel=ylabel,
            title=f"{act} RNN, H={cfg.hidden_size}" + (" (backprop from T)" if idx else ""),
            logy=True,
        )
    plots.save(fig, run.plot_path("rnn_norm_vs_step.png"))


def run_rnn(run: Run, cfg: RNNConfig) -> None:
    results = measure_rnns(run, cfg)
    rnn_claims(run, cfg, results)
    plot_norms(run, cfg, results)


EXPERIMENT = Experiment(
    name="rnn_spectral_radius",
    description="RNN hidden-state norm over 100 steps vs the recurrent spectral radius",
    presets={
        "smoke": RNNConfig(hidden_size=32, steps=100, draws=1, batch_size=2),
        "quick": RNNConfig(),
        "full": RNNConfig(hidden_size=1024, draws=16),
    },
    run=run_rnn,
    quick_minutes=0.05,
)
