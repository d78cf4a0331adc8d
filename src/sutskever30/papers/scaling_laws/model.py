"""Scaling Laws for Neural Language Models.

Kaplan, McCandlish, Henighan, Brown, Chess, Child, Gray, Radford, Wu, Amodei, 2020,
arXiv:2001.08361.

The idea: the cross-entropy loss of a Transformer language model is a smooth power law in
each of three resources, non-embedding parameters N, training tokens D and training compute
C, when the other two do not bind; the shape (depth against width) matters little. Larger
models are more sample-efficient, so a fixed compute budget is best spent on a large model
stopped well before convergence.

Key equations (N non-embedding parameters, D tokens, C in FLOPs, losses in nats/token):

    L(N) = (N_c / N)^α_N            α_N ≈ 0.076, N_c ≈ 8.8e13             (eq. 1.1)
    L(D) = (D_c / D)^α_D            α_D ≈ 0.095, D_c ≈ 5.4e13             (eq. 1.2)
    L(C_min) = (C_c / C_min)^α_C    α_C^min ≈ 0.050                        (eq. 1.3)
    C ≈ 6 N per trained token       (Table 1: 2N forward, twice that backward)
    N_opt ∝ C_min^0.73              (eq. 1.7 / Fig. 14)
    lr(N) ≈ 0.003239 − 0.0001395 ln N                                      (eq. D.1)

This module is the measuring side of the paper: the sweep of model shapes at a fixed aspect
ratio (the GPT itself is the shared :mod:`sutskever30.nn.gpt`, whose ``non_embedding_params``
is Kaplan's N and ``flops_per_token`` Table 1's C per token), the learning-rate rule and
schedule, the power-law fits in log space with their R², bootstrap confidence intervals,
tokens-to-reach a loss (sample efficiency) and the compute-efficient frontier (the lower
envelope of the learning curves against compute).

Deviations from the paper:
- L(N) is fitted with an irreducible term, (N_c/N)^α_N + L_∞, as the task asks: every size
  here trains on the same, short token budget D, so the largest models are data-limited and
  the curve flattens; Kaplan train to near convergence and fit the pure power law. The pure
  power law's exponent (comparable to their 0.076) is reported beside it.
- L(D) is the single-size law (eq. 1.2 form) fitted to one learning curve, the loss at D
  tokens processed in a single epoch, not the early-stopped loss of runs on D-token subsets.
- The frontier is the envelope of the learning curves of one cosine schedule per size
  (as Kaplan's Fig. 2 right), not of runs whose schedule was tuned to each budget.
- Bytes (vocabulary 256) of Python source, context 64, instead of 1024 BPE tokens of
  WebText2; sizes 10³–10⁵·⁵ instead of 10³–10⁹.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit

from sutskever30.nn.gpt import GPT, GPTConfig

# The paper's fitted values (Sec. 1.2), shown beside ours.
ALPHA_N, N_C = 0.076, 8.8e13
ALPHA_D, D_C = 0.095, 5.4e13
ALPHA_C_MIN = 0.050
N_OPT_EXPONENT = 0.73


def shape(n_layer: int, *, aspect: int, d_head: int, context: int, vocab_size: int) -> GPTConfig:
    """The GPT of depth ``n_layer`` at the fixed aspect ratio d_model / n_layer = ``aspect``
    (Kaplan vary both together and find shape matters little, Fig. 5), heads of ``d_head``."""
    d_model = aspect * n_layer
    if d_model % d_head:
        raise ValueError(f"d_model {d_model} is not a multiple of d_head {d_head}")
    return GPTConfig(
        vocab_size=vocab_size,
        context=context,
        n_layer=n_layer,
        n_head=d_model // d_head,
        d_model=d_model,
    )


def kaplan_lr(n: int) -> float:
    """Eq. D.1: the learning rate Kaplan et al. found best for N non-embedding parameters."""
    return 0.003239 - 0.0001395 * math.log(n)


def counted_flops_per_token(cfg: GPTConfig, batch: int = 2) -> float:
    """Floating-point operations of one training step (forward and backward) per token, as
    ``torch.utils.flop_counter`` counts them, the tied head left out (Kaplan leave the
    embeddings out of C). The math attention kernel is forced so that the counter sees the
    attention matmuls: it computes the full n_ctx × n_ctx scores, twice Table 1's causal half."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = GPT(cfg)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.context))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    tokens = x.numel()
    head = 3 * 2 * cfg.d_model * cfg.vocab_size * tokens
    return (counter.get_total_flops() - head) / tokens


def attention_share(cfg: GPTConfig) -> float:
    """The context-dependent part of Table 1's C per token, 6 n_layer n_ctx d_model, over C."""
    return 6 * cfg.n_layer * cfg.context * cfg.d_model / cfg.flops_per_token()


# -- power laws --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerLaw:
    """L(x) = A x^(−alpha) + offset = (x_c / x)^alpha + offset, fitted in log space; r2 is
    R² of log L."""

    alpha: float
    log_a: float  # log A = alpha · log x_c
    offset: float
    r2: float

    @property
    def x_c(self) -> float:
        """x_c = A^(1/alpha) (inf where that overflows a float)."""
        with np.errstate(over="ignore", divide="ignore"):
            return float(np.exp(np.float64(self.log_a) / self.alpha))

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return np.exp(self.log_a - self.alpha * np.log(np.asarray(x, dtype=float))) + self.offset


def r_squared(y: np.ndarray, y_hat: np.ndarray) -> float:
    """1 − SS_res / SS_tot."""
    y, y_hat = np.asarray(y, dtype=float), np.asarray(y_hat, dtype=float)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - y_hat) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def fit_power_law(x: Sequence[float], loss: Sequence[float], *, offset: bool) -> PowerLaw:
    """Least squares of log L against log x for L = A x^(−α) (+ L_∞ with ``offset``), with
    x_c = A^(1/α). Without the offset this is a straight line in log-log axes; with it,
    ``scipy.optimize.curve_fit`` from several starting L_∞ (0 … 0.95 min L), the best kept."""
    log_x, log_l = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(loss, dtype=float))
    if len(log_x) < (3 if offset else 2):
        raise ValueError(f"{len(log_x)} points are too few for this fit")
    slope, intercept = np.polyfit(log_x, log_l, 1)
    best = (-slope, intercept, 0.0)
    if offset:

        def model(lx: np.ndarray, alpha: float, log_a: float, l_inf: float) -> np.ndarray:
            return np.log(np.exp(log_a - alpha * lx) + l_inf)

        floor = float(np.exp(log_l.min()))
        lower, upper = [-5.0, -200.0, 0.0], [5.0, 200.0, floor]
        best_sse = float(np.sum((model(log_x, *best) - log_l) ** 2))
        for frac in (0.0, 0.5, 0.8, 0.95):
            l0 = frac * floor
            s, i = np.polyfit(log_x, np.log(np.exp(log_l) - l0), 1)
            try:
                # a flat direction has no covariance but is still a fit; steep trial steps
                # overflow exp to inf, which least squares then rejects
                with warnings.catch_warnings(), np.errstate(over="ignore"):
                    warnings.simplefilter("ignore", OptimizeWarning)
                    p, _ = curve_fit(
                        model,
                        log_x,
                        log_l,
                        p0=np.clip((-s, i, l0), lower, upper),
                        bounds=(lower, upper),
                        maxfev=20_000,
                    )
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((model(log_x, *p) - log_l) ** 2))
            if sse < best_sse:
                best, best_sse = (float(p[0]), float(p[1]), float(p[2])), sse
    alpha, log_a, l_inf = best
    fitted = np.log(np.exp(log_a - alpha * log_x) + l_inf)
    return PowerLaw(alpha=alpha, log_a=log_a, offset=l_inf, r2=r_squared(log_l, fitted))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n_items: int,
    *,
    resamples: int,
    seed: int,
    level: float = 0.9,
) -> tuple[float, float]:
    """Percentile bootstrap: ``statistic`` of ``resamples`` index sets drawn with replacement
    from ``range(n_items)``; the central ``level`` interval of the finite values."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n_items, n_items)) for _ in range(resamples)])
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


# -- sample efficiency and the compute frontier ------------------------------------------------
def tokens_to_reach(tokens: Sequence[float], loss: Sequence[float], level: float) -> float:
    """The tokens processed when the learning curve first reaches ``level``, interpolated
    linearly in (log tokens, loss) between the two evaluations around the crossing; inf if
    the curve never reaches it."""
    tokens, loss = np.asarray(tokens, dtype=float), np.asarray(loss, dtype=float)
    below = np.flatnonzero(loss <= level)
    if not len(below):
        return float("inf")
    i = int(below[0])
    if i == 0:
        return float(tokens[0])
    l0, l1 = loss[i - 1], loss[i]
    t0, t1 = np.log(tokens[i - 1]), np.log(tokens[i])
    return float(np.exp(t0 + (l0 - level) / (l0 - l1) * (t1 - t0)))


def frontier(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The compute-efficient frontier (Fig. 2 right): at each compute C of ``grid``, the lowest
    loss any curve (C_i, L_i) has at C (interpolated in log C, only inside its own range),
    and the index of that curve (−1 where none covers C)."""
    log_grid = np.log(grid)
    at = np.full((len(curves), len(grid)), np.inf)
    for k, (c, loss) in enumerate(curves):
        log_c = np.log(np.asarray(c, dtype=float))
        inside = (log_grid >= log_c[0]) & (log_grid <= log_c[-1])
        at[k, inside] = np.interp(log_grid[inside], log_c, loss)
    best = at.argmin(0)
    envelope = at[best, np.arange(len(grid))]
    return envelope, np.where(np.isfinite(envelope), best, -1)
