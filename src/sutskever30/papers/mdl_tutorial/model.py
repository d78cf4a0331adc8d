"""A Tutorial Introduction to the Minimum Description Length Principle.

Peter Grünwald, 2004, arXiv:math/0406077 (https://arxiv.org/abs/math/0406077); the exact
multinomial complexity follows Kontkanen & Myllymäki 2007, "A linear-time algorithm for
computing the multinomial stochastic complexity", Information Processing Letters 103(6).

**Idea.** Any regularity in data can be used to compress it; the model class that lets us
describe the data in the fewest bits is the one to prefer. Every code length is in bits;
the data of a continuous model are coded at a fixed precision ε common to all models, so
−log2 of a *density* is a code length up to the same constant for every model.

**Crude (two-part) MDL** (Sec. 2.4): pick the hypothesis H minimizing L(H) + L(D | H), with
the parameters of H written down at a finite precision.

**Refined MDL** (Sec. 2.5–2.6): code D with one *universal* code for the whole model class
M. The normalized maximum likelihood (NML) code is minimax optimal:

    P_nml(x^n) = P(x^n | θ̂(x^n)) / Σ_{y^n} P(y^n | θ̂(y^n)),
    −log2 P_nml(x^n) = −log2 P(x^n | θ̂(x^n)) + COMP_n(M),
    COMP_n(M) = log2 Σ_{y^n} P(y^n | θ̂(y^n))           (parametric complexity).

For the Bernoulli model the sum groups by the number of ones k:

    COMP_n = log2 Σ_{k=0}^{n} C(n, k) (k/n)^k ((n−k)/n)^(n−k),

and Rissanen's (1996) asymptotic formula (Sec. 2.6) for a k-parameter model,
COMP_n = (k/2) log2(n/2π) + log2 ∫ √det I(θ) dθ + o(1), gives (1/2) log2(nπ/2) for the
Bernoulli model (∫ dθ / √(θ(1−θ)) = π) and, for a multinomial on m symbols,
((m−1)/2) log2(n/2π) + log2(π^{m/2} / Γ(m/2)). The multinomial normalizer C(m, n) (so that
COMP = log2 C(m, n)) obeys Kontkanen & Myllymäki's recursion

    C(m + 2, n) = C(m + 1, n) + (n / m) · C(m, n),   C(1, n) = 1,

which costs O(m) once C(2, n) is known.

**Prequential codes** (Sec. 2.6): L(x^n) = −Σ_i log2 P(x_i | θ̂(x^{i−1})) predicts each
outcome with the parameters estimated from the past. With the Krichevsky–Trofimov
(add-½) estimator this equals the Bayes mixture code under the Jeffreys prior.

**AIC and BIC** for comparison, in bits: −log2 P(D | θ̂) + p·log2 e and
−log2 P(D | θ̂) + (p/2) log2 n for p free parameters.

Deviations from the paper:
- The tutorial has no experiments; the polynomial and Markov-order studies follow its
  running examples (Sec. 1.3, 2.3) with our own settings (README).
- Markov chains are coded by *factorized* NML (Silander et al. 2008): the multinomial NML of
  each context's next-symbol counts, summed over contexts. The exact NML of a k-th order
  chain, which normalizes over all sequences with their random context counts, is not
  computable at these sizes.
- NML is infinite for Gaussian regression with unbounded parameters, so the
  refined code for polynomial regression is the prequential plug-in code (Rissanen's
  predictive MDL); the first points are sent by a code common to all degrees so that each
  plug-in variance has residual degrees of freedom.
- The two-part regression code writes the parameters with Elias δ codes for integers at a
  stated precision (:func:`two_part_code_length`) where the tutorial leaves the parameter
  code open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.polynomial import legendre

LOG2E = 1.0 / math.log(2.0)


def lgamma(x: np.ndarray | float) -> np.ndarray:
    """log Γ(x), elementwise, in float64."""
    return torch.lgamma(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def log2_sum_exp2(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log2 Σ 2^a along ``axis``, without overflow."""
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log2(np.sum(np.exp2(a - top), axis=axis))


def xlog2x(h: np.ndarray) -> np.ndarray:
    """h · log2 h with 0 · log2 0 = 0 (the convention that makes 0^0 = 1)."""
    h = np.asarray(h, dtype=np.float64)
    return np.where(h > 0, h * np.log2(np.where(h > 0, h, 1.0)), 0.0)


# -- exact parametric complexity ------------------------------------------------------------
def bernoulli_complexity(n: int) -> float:
    """COMP_n of the Bernoulli model in bits: log2 Σ_k C(n,k) (k/n)^k ((n−k)/n)^(n−k),
    every term in log space (memory O(n): n up to ~10^7)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return 0.0
    k = np.arange(n + 1, dtype=np.float64)
    log2_binom = (lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0)) * LOG2E
    log2_ml = xlog2x(k) + xlog2x(n - k) - n * math.log2(n)  # log2 (k/n)^k ((n−k)/n)^(n−k)
    return float(log2_sum_exp2(log2_binom + log2_ml))


def bernoulli_normalizer(n: int, digits: int = 16) -> float:
    """C(2, n) = Σ_{k=0}^{n} n! / ((n−k)! n^k) (the sub-linear series of Mononen &
    Myllymäki 2008, equal to the binomial sum above). Its terms fall like e^{−k²/2n}, so
    ⌈2 + √(2 n · digits · ln 10)⌉ of them give ``digits`` correct digits."""
    if n == 0:
        return 1.0
    terms = min(n, math.ceil(2 + math.sqrt(2 * n * digits * math.log(10))))
    ratios = (n - np.arange(terms, dtype=np.float64)) / n  # (n − i) / n, i = 0 … terms−1
    return float(1.0 + np.sum(np.cumprod(ratios)))


def multinomial_complexity(m: int, n: np.ndarray | int) -> np.ndarray:
    """COMP of the m-symbol multinomial for sample sizes ``n`` (bits, elementwise):
    log2 C(m, n) by Kontkanen & Myllymäki's recursion C(j+2) = C(j+1) + (n/j) C(j),
    carried out in log space so that m in the hundreds and n in the millions do not
    overflow."""
    if m < 1:
        raise ValueError("the alphabet needs m >= 1 symbols")
    n = np.asarray(n, dtype=np.int64)
    if np.any(n < 0):
        raise ValueError("sample sizes must be >= 0")
    flat = n.ravel()
    sizes, where = np.unique(flat, return_inverse=True)
    log_c = np.zeros_like(sizes, dtype=np.float64)  # log C(1, n) = 0
    if m >= 2:
        log_prev, log_c = log_c, np.log([bernoulli_normalizer(int(s)) for s in sizes])
        with np.errstate(divide="ignore"):
            log_n = np.log(sizes.astype(np.float64))  # −inf at n = 0: that term vanishes
        for j in range(1, m - 1):  # C(j+2) from C(j+1) and C(j)
            log_prev, log_c = log_c, np.logaddexp(log_c, log_n - math.log(j) + log_prev)
    return (log_c * LOG2E)[where].reshape(n.shape)


def multinomial_complexity_direct(m: int, n: int) -> float:
    """log2 C(m, n) straight from the definition Σ_{h_1+…+h_m=n} n!/Πh_i! Π(h_i/n)^{h_i},
    as the m-fold convolution of a_h = h^h / h! (the reference for the recursion)."""
    if n == 0:
        return 0.0
    h = np.arange(n + 1, dtype=np.float64)
    log_a = xlog2x(h) / LOG2E - lgamma(h + 1.0)  # ln(h^h / h!)
    a = np.exp(log_a - h)  # scaled by e^{−h}: Σ h = n, so the product carries e^{−n}
    total = np.zeros(n + 1)
    total[0] = 1.0
    for _ in range(m):
        total = np.convolve(total, a)[: n + 1]
    log_c = math.log(total[n]) + n + float(lgamma(n + 1.0)) - n * math.log(n)
    return log_c * LOG2E


def nml_complexity_brute_force(m: int, n: int) -> float:
    """log2 Σ over all m^n sequences of P(y^n | θ̂(y^n)): the definition itself, for small n."""
    if m**n > 2**22:
        raise ValueError("brute force enumerates m^n sequences: keep m^n <= 2^22")
    if n == 0:
        return 0.0
    codes = np.arange(m**n)
    digits = (codes[:, None] // m ** np.arange(n)) % m  # (m^n, n): every sequence
    counts = np.stack([(digits == a).sum(axis=1) for a in range(m)], axis=1)  # (m^n, m)
    log2_ml = (xlog2x(counts) - counts * math.log2(n)).sum(axis=1)
    return float(log2_sum_exp2(log2_ml))


def rissanen_asymptotic(m: int, n: np.ndarray | float) -> np.ndarray:
    """((m−1)/2) log2(n/2π) + log2(π^{m/2}/Γ(m/2)): the asymptotic COMP of the m-symbol
    multinomial; for m = 2 it is (1/2) log2(nπ/2)."""
    n = np.asarray(n, dtype=np.float64)
    fisher_volume = (m / 2) * math.log2(math.pi) - float(lgamma(m / 2)) * LOG2E
    return (m - 1) / 2 * np.log2(n / (2 * math.pi)) + fisher_volume


# -- Markov chains of text ------------------------------------------------------------------
@dataclass(frozen=True)
class ContextCounts:
    """Next-symbol counts of an order-k Markov chain: ``h[j]`` times symbol ``symbol[j]``
    followed context ``context[j]`` (nonzero counts only); ``n_context`` per distinct
    context."""

    order: int
    m: int
    context: np.ndarray  # (J,) index into n_context
    symbol: np.ndarray  # (J,)
    h: np.ndarray  # (J,)
    n_context: np.ndarray  # (C,)

    @property
    def n(self) -> int:
        return int(self.n_context.sum())


def context_counts(x: np.ndarray, order: int, m: int, start: int | None = None) -> ContextCounts:
    """Counts of x[i] after x[i−order:i] for i = start … len(x)−1 (``start`` ≥ ``order``;
    the same ``start`` for every order codes the same symbols)."""
    start = order if start is None else start
    if not 0 <= order <= start < len(x):
        raise ValueError("need 0 <= order <= start < len(x)")
    if order > 0 and m**order > 2**62 // m:
        raise ValueError(f"{m}^{order + 1} contexts overflow int64")
    x = np.asarray(x, dtype=np.int64)
    key = np.zeros(len(x) - start, dtype=np.int64)  # base-m code of (context, symbol)
    for lag in range(order, -1, -1):
        key = key * m + x[start - lag : len(x) - lag]
    pairs, h = np.unique(key, return_counts=True)
    _, context = np.unique(pairs // m, return_inverse=True)
    n_context = np.bincount(context, weights=h).astype(np.int64)
    return ContextCounts(order, m, context, pairs % m, h, n_context)


def ml_code_length(c: ContextCounts) -> float:
    """−log2 P(x | θ̂): each context's symbols coded with their own relative frequencies."""
    return float(xlog2x(c.n_context).sum() - xlog2x(c.h).sum())


def fnml_code_length(c: ContextCounts) -> float:
    """Factorized NML: ML code length + Σ over contexts of the multinomial COMP of that
    context's count (unseen contexts have n = 0 and COMP 0)."""
    return ml_code_length(c) + float(multinomial_complexity(c.m, c.n_context).sum())


def kt_code_length(c: ContextCounts) -> float:
    """The prequential add-½ (Krichevsky–Trofimov) code in closed form, per context
    log2 [Γ(n + m/2) Γ(½)^m / (Γ(m/2) Π_a Γ(h_a + ½))]: the Bayes code with Jeffreys prior."""
    per_context = lgamma(c.n_context + c.m / 2) - lgamma(c.m / 2)
    per_count = lgamma(c.h + 0.5) - lgamma(0.5)
    return float((per_context.sum() - per_count.sum()) * LOG2E)


def _occurrence_index(keys: np.ndarray) -> np.ndarray:
    """For each entry, how many equal keys come before it (0, 1, 2, … within each key)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
    index = np.empty(len(keys), dtype=np.int64)
    index[order] = np.arange(len(keys)) - group_start
    return index


def prequential_code_length(
    x: np.ndarray, order: int, m: int, start: int | None = None, alpha: float = 0.5
) -> float:
    """−Σ_i log2 P(x_i | x^{i−1}) with the plug-in (h(ctx, x_i) + α) / (n(ctx) + mα), the
    counts taken over the past only (α = ½: Krichevsky–Trofimov)."""
    start = order if start is None else start
    x = np.asarray(x, dtype=np.int64)
    ctx = np.zeros(len(x) - start, dtype=np.int64)
    for lag in range(order, 0, -1):
        ctx = ctx * m + x[start - lag : len(x) - lag]
    pair = ctx * m + x[start:]
    h_past = _occurrence_index(pair)  # times this symbol followed this context before
    n_past = _occurrence_index(ctx)  # times this context was seen before
    return float(-np.log2((h_past + alpha) / (n_past + m * alpha)).sum())


def markov_parameters(order: int, m: int) -> float:
    """Free parameters of an order-k chain on m symbols: m^k contexts × (m − 1)."""
    return float(m) ** order * (m - 1)


def aic_code_length(ml_bits: np.ndarray | float, p: np.ndarray | float) -> np.ndarray:
    """AIC in bits: −log2 P(D | θ̂) + p log2 e (AIC/2 = −ln P + p, Akaike 1973)."""
    return np.asarray(ml_bits) + np.asarray(p) * LOG2E


def bic_code_length(ml_bits: np.ndarray | float, p: np.ndarray | float, n: int) -> np.ndarray:
    """BIC in bits: −log2 P(D | θ̂) + (p/2) log2 n (Schwarz 1978)."""
    return np.asarray(ml_bits) + np.asarray(p) / 2 * math.log2(n)


# -- integer codes (for the two-part code's parameters) -------------------------------------
def elias_delta_length(N: np.ndarray | int) -> np.ndarray:
    """Bits of Elias δ's codeword for the integer N ≥ 1: ⌊log2 N⌋ + 2⌊log2(⌊log2 N⌋ + 1)⌋ + 1.
    A prefix code for all positive integers, so Σ_N 2^−L(N) ≤ 1."""
    N = np.asarray(N, dtype=np.int64)
    if np.any(N < 1):
        raise ValueError("Elias δ codes the integers N >= 1")
    bits = np.floor(np.log2(N.astype(np.float64))).astype(np.int64)
    return bits + 2 * np.floor(np.log2(bits + 1.0)).astype(np.int64) + 1


def signed_integer_length(i: np.ndarray | int) -> np.ndarray:
    """Bits for any integer: 0, −1, 1, −2, 2, … ↦ 1, 2, 3, 4, 5, … then Elias δ."""
    i = np.asarray(i, dtype=np.int64)
    return elias_delta_length(np.where(i >= 0, 2 * i + 1, -2 * i))


# -- polynomial regression ------------------------------------------------------------------
def orthonormal_design(x: np.ndarray, max_degree: int) -> np.ndarray:
    """Q (…, n, D = max_degree + 1) with orthonormal columns spanning 1, x, …, x^k for every
    k ≤ max_degree in its first k + 1 columns (QR of the Legendre–Vandermonde matrix)."""
    q, _ = np.linalg.qr(legendre.legvander(x, max_degree))
    return q


@dataclass(frozen=True)
class PolynomialFits:
    """Least-squares fits of every degree 0 … D−1 at once; in the orthonormal basis the ML
    coefficients of degree k are the first k + 1 of ``beta`` and the fits are nested."""

    n: int
    beta: np.ndarray  # (T, D): Q^T y
    rss: np.ndarray  # (T, D): residual sum of squares of degree k = column k

    @property
    def n_coefficients(self) -> np.ndarray:
        return np.arange(1, self.beta.shape[-1] + 1)


def fit_polynomials(x: np.ndarray, y: np.ndarray, max_degree: int) -> PolynomialFits:
    """ML (least-squares) fits of degrees 0 … max_degree to each row of (x, y), (T, n)."""
    q = orthonormal_design(x, max_degree)  # (T, n, D)
    beta = np.einsum("tnd,tn->td", q, y)  # (T, D)
    rss = (y**2).sum(axis=1, keepdims=True) - np.cumsum(beta**2, axis=1)
    return PolynomialFits(n=y.shape[1], beta=beta, rss=np.maximum(rss, 1e-300))


def gaussian_ml_code_length(rss: np.ndarray, n: int) -> np.ndarray:
    """−log2 p(y | θ̂, σ̂²) = (n/2) log2(2πe σ̂²), σ̂² = RSS/n (bits, up to the precision ε)."""
    return n / 2 * np.log2(2 * math.pi * math.e * rss / n)


def two_part_code_length(fits: PolynomialFits, precision: float = 1.0) -> np.ndarray:
    """L(k) + L(σ̄) + L(β̄ | σ̄) + L(y | β̄, σ̄) in bits, (T, D), for each degree k:

    - k as the integer k + 1 (Elias δ);
    - ln σ̄ on the grid of step 1/√n (the ML estimate's standard error is ~1/√(2n));
    - each coefficient along the orthonormal design directions, where every ML coefficient
      has standard error σ, on the grid of step ``precision`` · σ̄ (natural-scale precision
      ~σ/√n: the tutorial's 1/√n per parameter), as a signed integer (Elias δ);
    - the data with the rounded parameters: since Q has orthonormal columns,
      ‖y − Qβ̄‖² = RSS + ‖β̂ − β̄‖², so the rounding costs ‖β̂ − β̄‖²/(2σ̄²) nats.

    Every part is a prefix code that the receiver decodes in this order, so the total is a
    code length, not a penalty."""
    if precision <= 0:
        raise ValueError("precision must be > 0")
    n, n_coef = fits.n, fits.n_coefficients
    sigma_index = np.rint(0.5 * np.log(fits.rss / n) * math.sqrt(n))  # (T, D)
    sigma_bar = np.exp(sigma_index / math.sqrt(n))
    step = precision * sigma_bar[..., None]  # (T, D, 1): grid of degree k's coefficients
    beta_index = np.rint(fits.beta[:, None, :] / step)  # (T, D, D): row k, coefficients j
    used = np.arange(fits.beta.shape[1])[None, :] < n_coef[:, None]  # (D, D): j ≤ k
    coef_bits = np.where(used, signed_integer_length(beta_index), 0).sum(axis=-1)
    rounding = np.where(used, (fits.beta[:, None, :] - beta_index * step) ** 2, 0).sum(-1)
    data_bits = (
        n / 2 * np.log2(2 * math.pi * sigma_bar**2)
        + (fits.rss + rounding) / (2 * sigma_bar**2) * LOG2E
    )
    header = elias_delta_length(n_coef) + signed_integer_length(sigma_index)
    return header + coef_bits + data_bits


def prequential_gaussian_code_length(
    x: np.ndarray, y: np.ndarray, max_degree: int, start: int
) -> np.ndarray:
    """Prequential plug-in code of y_start … y_{n−1} for every degree, (T, D) bits: y_i is
    coded with N(ŷ_i, s²) where ŷ_i and s² = RSS/(i − k − 1) come from the least-squares
    fit of degree k to the first i points only (y_0 … y_{start−1} are sent by a code
    common to all degrees). Needs start ≥ max_degree + 2 so every s² has a degree of
    freedom."""
    if start < max_degree + 2 or start >= y.shape[1]:
        raise ValueError("need max_degree + 2 <= start < n")
    v = torch.as_tensor(legendre.legvander(x, max_degree))  # (T, n, D)
    y_t = torch.as_tensor(y, dtype=torch.float64)  # (T, n)
    # sums over the first i points, i = 0 … n−1 (exclusive of point i)
    gram = (
        torch.cumsum(v[..., :, None] * v[..., None, :], dim=1) - v[..., :, None] * v[..., None, :]
    )
    moment = torch.cumsum(v * y_t[..., None], dim=1) - v * y_t[..., None]  # (T, n, D)
    energy = torch.cumsum(y_t**2, dim=1) - y_t**2  # (T, n)
    gram, moment, energy = gram[:, start:], moment[:, start:], energy[:, start:]
    v_next, y_next = v[:, start:], y_t[:, start:]  # the points being predicted
    past = torch.arange(start, y.shape[1], dtype=torch.float64)  # i, points seen
    out = []
    for d in range(1, max_degree + 2):  # d = k + 1 coefficients
        theta = torch.linalg.solve(gram[..., :d, :d], moment[..., :d])  # (T, P, d)
        rss = (energy - (theta * moment[..., :d]).sum(-1)).clamp_min(1e-300)
        s2 = rss / (past - d)
        resid = y_next - (v_next[..., :d] * theta).sum(-1)
        bits = 0.5 * torch.log2(2 * math.pi * s2) + resid**2 / (2 * s2) * LOG2E
        out.append(bits.sum(-1))
    return torch.stack(out, dim=-1).numpy()
