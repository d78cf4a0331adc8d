"""Exact parametric complexity: the Bernoulli COMP_n approaches Rissanen's asymptotic
(1/2) log2(nπ/2) as n grows, and the exact formulas equal the definition.

COMP_n is computed from its definition grouped by counts (a log-space sum over k), checked
against brute-force summation over all m^n sequences for small n, and the multinomial
recursion of Kontkanen & Myllymäki against the direct sum over count vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.mdl_tutorial.model import (
    bernoulli_complexity,
    multinomial_complexity,
    multinomial_complexity_direct,
    nml_complexity_brute_force,
    rissanen_asymptotic,
)


@dataclass(frozen=True)
class ComplexityConfig:
    ns: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
    tolerance_bits: float = 0.01  # |COMP_n − asymptotic| at the largest n must be below this
    brute_force_n: int = 16  # Bernoulli: all 2^n sequences for n = 1 … this
    brute_force_m: tuple[int, ...] = (3, 4)  # multinomial alphabets enumerated up to m^n ≤ 2^16
    recursion_m: int = 12  # recursion vs direct sum for m = 1 … this
    recursion_n: tuple[int, ...] = (0, 1, 2, 5, 20, 100)
    plot_alphabets: tuple[int, ...] = (2, 3, 5, 10)

    def __post_init__(self) -> None:
        if len(self.ns) < 2 or min(self.ns) < 1 or list(self.ns) != sorted(set(self.ns)):
            raise ValueError("ns must be at least two increasing sample sizes >= 1")
        if self.tolerance_bits <= 0:
            raise ValueError("tolerance_bits must be > 0")
        if not 1 <= self.brute_force_n <= 22:
            raise ValueError("brute_force_n must be in [1, 22] (2^n sequences)")
        if self.recursion_m < 1 or min(self.brute_force_m, default=2) < 2:
            raise ValueError("alphabets need m >= 2 (recursion_m >= 1)")
        if min(self.recursion_n) < 0 or min(self.plot_alphabets) < 2:
            raise ValueError("recursion_n must be >= 0 and plot_alphabets >= 2")


def exactness(cfg: ComplexityConfig) -> dict[str, float]:
    """Largest disagreement (bits) of the fast exact formulas with the definitions."""
    bernoulli = max(
        abs(bernoulli_complexity(n) - nml_complexity_brute_force(2, n))
        for n in range(1, cfg.brute_force_n + 1)
    )
    enumerated = [
        (m, n) for m in cfg.brute_force_m for n in range(1, 17) if m**n <= 2**cfg.brute_force_n
    ]
    brute = max(
        abs(float(multinomial_complexity(m, n)) - nml_complexity_brute_force(m, n))
        for m, n in enumerated
    )
    recursion = max(
        abs(float(multinomial_complexity(m, n)) - multinomial_complexity_direct(m, n))
        for m in range(1, cfg.recursion_m + 1)
        for n in cfg.recursion_n
    )
    return {
        "bernoulli_vs_brute_force": bernoulli,
        "multinomial_vs_brute_force": brute,
        "recursion_vs_direct_sum": recursion,
    }


def plot_complexity(run: Run, cfg: ComplexityConfig, comp: np.ndarray) -> None:
    ns = np.asarray(cfg.ns, dtype=np.float64)
    fig, (left, right) = plots.figure(ncols=2)
    grid = np.unique(np.geomspace(1, ns[-1], 60).astype(np.int64))
    for k, m in enumerate(cfg.plot_alphabets):
        colour = f"C{k}"
        left.plot(grid, multinomial_complexity(m, grid), "-", color=colour, label=f"m={m} exact")
        left.plot(grid, rissanen_asymptotic(m, grid), ":", color=colour, label=f"m={m} asymptotic")
    left.set_xscale("log")
    left.set_xlabel("n")
    left.set_ylabel("COMP_n (bits)")
    left.set_title("multinomial COMP_n: exact (—) vs asymptotic (⋯)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, ncol=2, loc="upper left")
    gap = np.abs(comp - rissanen_asymptotic(2, ns))
    right.plot(ns, gap, "o-", label="|COMP_n − ½ log2(nπ/2)|")
    right.plot(ns, gap[-1] * np.sqrt(ns[-1] / ns), "--", color="grey", label="∝ 1/√n")
    right.axhline(cfg.tolerance_bits, color="C3", lw=1, label="claim tolerance")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("n")
    right.set_ylabel("bits")
    right.set_title("Bernoulli: exact minus asymptotic")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower left")
    plots.save(fig, run.plot_path("complexity_vs_asymptotic.png"))


def run_complexity(run: Run, cfg: ComplexityConfig) -> None:
    with run.progress(len(cfg.ns), "exact Bernoulli COMP_n") as bar:
        comp = []
        for n in cfg.ns:
            comp.append(bernoulli_complexity(n))
            bar.update()
    comp = np.asarray(comp)
    gap = np.abs(comp - rissanen_asymptotic(2, np.asarray(cfg.ns, dtype=np.float64)))
    for n, c, g in zip(cfg.ns, comp, gap, strict=True):
        run.log({"key": "bernoulli", "n": n, "comp_bits": c, "abs_gap_bits": g})
    # log-log slope of the gap over the last decade of n: Szpankowski's expansion gives −½
    slope = math.log(gap[-1] / gap[-2]) / math.log(cfg.ns[-1] / cfg.ns[-2])
    run.summary.update(comp_bits=dict(zip(cfg.ns, comp, strict=True)), gap_slope=slope)
    run.claim(
        "comp_approaches_asymptotic",
        f"|exact Bernoulli COMP_n − ½ log2(nπ/2)| shrinks at every step of n = "
        f"{cfg.ns[0]} … {cfg.ns[-1]:,} and is below {cfg.tolerance_bits} bits at the largest n",
        "Sec. 2.6: COMP_n = (k/2) log2(n/2π) + log2 ∫√det I(θ)dθ + o(1)",
        {
            "abs_gap": gap.tolist(),
            "largest_increase": float(np.max(np.diff(gap))),
            "tolerance": cfg.tolerance_bits,
            "gap_slope": slope,
        },
        "largest_increase < 0 and abs_gap[-1] < tolerance",
    )
    err = exactness(cfg)
    run.claim(
        "exact_complexity_matches_definition",
        f"the log-space Bernoulli sum and the multinomial recursion equal brute-force "
        f"summation over all m^n sequences (n ≤ {cfg.brute_force_n} for m = 2) and the direct "
        "sum over count vectors, to 1e-9 bits",
        "Kontkanen & Myllymäki 2007: C(m+2, n) = C(m+1, n) + (n/m) C(m, n), exact",
        {**err, "tolerance": 1e-9},
        "bernoulli_vs_brute_force < tolerance and multinomial_vs_brute_force < tolerance "
        "and recursion_vs_direct_sum < tolerance",
    )
    plot_complexity(run, cfg, comp)


SMOKE = ComplexityConfig(
    ns=(1, 10, 100, 1_000, 10_000),
    tolerance_bits=0.05,
    brute_force_n=10,
    recursion_m=5,
    recursion_n=(0, 1, 5, 20),
    plot_alphabets=(2, 3),
)
QUICK = ComplexityConfig()
FULL = ComplexityConfig(
    ns=tuple(int(10 ** (e / 2)) for e in range(15)),  # 1, 3, 10, 31, … 10^7
    tolerance_bits=0.001,
    brute_force_n=20,
    recursion_m=40,
    recursion_n=(0, 1, 2, 5, 20, 100, 300),
)

EXPERIMENT = Experiment(
    name="complexity",
    description="exact Bernoulli/multinomial NML complexity vs Rissanen's asymptotic formula",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_complexity,
    quick_minutes=0.1,
)
