"""Numeric gradient checking (CS231n notes, "Neural Networks 3: gradient checks").

The analytic gradient is compared with the centered difference
``df/dx_i ≈ (f(x + h e_i) - f(x - h e_i)) / 2h``, whose error is O(h²), by the relative
error ``|a - n| / max(|a| + |n|, 1e-8)`` (maximum over elements). The notes' reading:
above 1e-2 the gradient is probably wrong, below 1e-7 it is right; checks run in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GOOD = 1e-7  # the notes: "1e-7 and less you should be happy"
WRONG = 1e-2  # "relative error > 1e-2 usually means the gradient is probably wrong"


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Maximum elementwise relative error, with the course's 1e-8 floor on the scale."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {n.shape}")
    return float(np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))))


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Centered-difference gradient of a scalar ``f`` at ``x`` (perturbed in place, then
    restored): one pair of evaluations per element, by construction a loop over them."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f(x)
        x[ix] = old - h
        f_minus = f(x)
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numeric ``d(Σ f(x) · df)/dx`` for an array-valued ``f``: the gradient a backward pass
    returns for the upstream gradient ``df``. Differences are taken per output element
    before the sum, which keeps the round-off small."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad
