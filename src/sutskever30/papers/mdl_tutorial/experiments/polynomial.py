"""Polynomial degree selection (the tutorial's running example, Sec. 1.3 and 2.3): noisy
points from a cubic, candidate degrees 0 … 8, and how often each criterion picks degree 3.

Every trial draws n design points x ~ U[−1, 1] and y = f(x) + N(0, σ²) with f(x) = x³ − x;
all criteria see the same trials. The criteria (``model.py``), each minimized over degree:
maximum likelihood, AIC, BIC, the two-part code at a stated parameter precision (crude MDL)
and the prequential plug-in code (refined MDL; NML is infinite for Gaussian regression
with unbounded parameters). Both MDL codes are held to the claim, each on its
own; the setting (n, σ, f, degrees, precision, prequential start) was fixed before any run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.mdl_tutorial.model import (
    aic_code_length,
    bic_code_length,
    fit_polynomials,
    gaussian_ml_code_length,
    prequential_gaussian_code_length,
    two_part_code_length,
)

CRITERIA = {
    "ml": "max. likelihood",
    "aic": "AIC",
    "bic": "BIC",
    "two_part": "two-part MDL",
    "prequential": "prequential MDL",
}
MDL_CODES = ("two_part", "prequential")


@dataclass(frozen=True)
class PolynomialConfig:
    n: int = 100  # points per trial
    sigma: float = 0.1  # noise standard deviation
    coefficients: tuple[float, ...] = (0.0, -1.0, 0.0, 1.0)  # f(x) = x³ − x, ascending powers
    max_degree: int = 8  # candidates 0 … max_degree
    trials: int = 2_000
    precision: float = 1.0  # two-part grid step, in standard errors of a coefficient
    prequential_start: int = 18  # points sent by a common code: 2(max_degree + 1)
    margin_se: float = 2.0  # "more often than ML" must clear this many standard errors
    chunk: int = 250  # trials per vectorized batch (memory of the prequential fits)

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.precision <= 0 or self.margin_se < 0:
            raise ValueError("sigma and precision must be > 0, margin_se >= 0")
        if not self.coefficients or self.coefficients[-1] == 0:
            raise ValueError("coefficients must end with a nonzero leading coefficient")
        if not self.true_degree < self.max_degree:
            raise ValueError("max_degree must exceed the true degree (else ML is trivially right)")
        if not self.max_degree + 2 <= self.prequential_start < self.n:
            raise ValueError("need max_degree + 2 <= prequential_start < n")
        if self.trials < 2 or self.chunk < 1:
            raise ValueError("trials must be >= 2 and chunk >= 1")

    @property
    def true_degree(self) -> int:
        return len(self.coefficients) - 1


def sample_trials(rng: np.random.Generator, cfg: PolynomialConfig, trials: int):
    """(x, y), each (trials, n): design points and noisy responses of the true polynomial."""
    x = rng.uniform(-1.0, 1.0, size=(trials, cfg.n))
    y = np.polynomial.polynomial.polyval(x, cfg.coefficients) + cfg.sigma * rng.standard_normal(
        (trials, cfg.n)
    )
    return x, y


def code_lengths(cfg: PolynomialConfig, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Each criterion's score in bits for every trial and degree, (T, max_degree + 1)."""
    fits = fit_polynomials(x, y, cfg.max_degree)
    ml = gaussian_ml_code_length(fits.rss, cfg.n)
    p = fits.n_coefficients + 1  # coefficients and σ
    return {
        "ml": ml,
        "aic": aic_code_length(ml, p),
        "bic": bic_code_length(ml, p, cfg.n),
        "two_part": two_part_code_length(fits, cfg.precision),
        "prequential": prequential_gaussian_code_length(
            x, y, cfg.max_degree, cfg.prequential_start
        ),
    }


def choose_degrees(run: Run, cfg: PolynomialConfig) -> tuple[dict[str, np.ndarray], tuple]:
    """The degree each criterion picks in every trial, and the first trial (for the plot)."""
    rng = np.random.default_rng(run.seed)
    chosen: dict[str, list[np.ndarray]] = {c: [] for c in CRITERIA}
    example = None
    with run.progress(cfg.trials, "polynomial trials") as bar:
        for first in range(0, cfg.trials, cfg.chunk):
            size = min(cfg.chunk, cfg.trials - first)
            x, y = sample_trials(rng, cfg, size)
            for name, bits in code_lengths(cfg, x, y).items():
                chosen[name].append(np.argmin(bits, axis=1))
            if example is None:
                example = (x[0], y[0], {c: int(v[0][0]) for c, v in chosen.items()})
            bar.update(size)
    return {c: np.concatenate(v) for c, v in chosen.items()}, example


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of the difference of two recovery rates measured on the same trials."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.std(diff, ddof=1) / math.sqrt(len(diff)))


def recovery_claims(run: Run, cfg: PolynomialConfig, hits: dict[str, np.ndarray]) -> None:
    rate = {c: float(h.mean()) for c, h in hits.items()}
    for code in MDL_CODES:
        run.claim(
            f"{code}_recovers_degree",
            f"{CRITERIA[code]} picks the true degree {cfg.true_degree} more often than maximum "
            f"likelihood (by > {cfg.margin_se:g} paired standard errors) and at least as often "
            f"as AIC, over {cfg.trials} trials",
            "Sec. 1.3/2.3: ML always prefers the most complex polynomial; MDL trades fit "
            "against complexity (and, unlike AIC, is consistent)",
            {
                f"{code}_rate": rate[code],
                "ml_rate": rate["ml"],
                "aic_rate": rate["aic"],
                "se_vs_ml": paired_se(hits[code], hits["ml"]),
                "se_vs_aic": paired_se(hits[code], hits["aic"]),
                "margin_se": cfg.margin_se,
                "trials": cfg.trials,
            },
            f"{code}_rate > ml_rate + margin_se * se_vs_ml and {code}_rate >= aic_rate",
        )
    run.report(
        "bic_recovery",
        f"BIC's rate of picking the true degree {cfg.true_degree} (beside the MDL codes)",
        "Sec. 2.4/2.6: the two-part code with precision 1/√n behaves like BIC",
        {"bic_rate": rate["bic"], "trials": cfg.trials},
    )


def plot_choices(run: Run, cfg: PolynomialConfig, chosen: dict[str, np.ndarray], example) -> None:
    degrees = np.arange(cfg.max_degree + 1)
    fig, (bars, data) = plots.figure(ncols=2, width=5.5, height=4.2)
    width = 0.8 / len(CRITERIA)
    for k, (name, label) in enumerate(CRITERIA.items()):
        freq = np.bincount(chosen[name], minlength=len(degrees)) / cfg.trials
        bars.bar(degrees + (k - (len(CRITERIA) - 1) / 2) * width, freq, width, label=label)
    bars.axvline(cfg.true_degree, color="grey", ls=":", lw=1)
    bars.set_xticks(degrees)
    bars.set_xlabel("chosen degree (true: dotted line)")
    bars.set_ylabel(f"fraction of {cfg.trials} trials")
    bars.set_title(f"degree chosen, n={cfg.n}, σ={cfg.sigma:g}")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    bars.grid(alpha=0.3, axis="y")
    x, y, picks = example
    grid = np.linspace(-1, 1, 200)
    data.plot(x, y, ".", color="grey", ms=4, label="data (trial 0)")
    data.plot(grid, np.polynomial.polynomial.polyval(grid, cfg.coefficients), "k-", label="truth")
    for name, colour in (("ml", "C0"), ("prequential", "C4")):
        fit = np.polynomial.polynomial.Polynomial.fit(x, y, picks[name])
        data.plot(
            grid, fit(grid), "-", color=colour, label=f"{CRITERIA[name]}: degree {picks[name]}"
        )
    data.set_xlabel("x")
    data.set_ylabel("y")
    data.set_title("one trial and two fits")
    data.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    data.grid(alpha=0.3)
    plots.save(fig, run.plot_path("degree_selection.png"))


def run_polynomial(run: Run, cfg: PolynomialConfig) -> None:
    chosen, example = choose_degrees(run, cfg)
    hits = {c: v == cfg.true_degree for c, v in chosen.items()}
    for name, picks in chosen.items():
        run.summary[f"{name}_degree_counts"] = np.bincount(
            picks, minlength=cfg.max_degree + 1
        ).tolist()
        run.summary[f"{name}_rate"] = float(hits[name].mean())
    recovery_claims(run, cfg, hits)
    plot_choices(run, cfg, chosen, example)


SMOKE = PolynomialConfig(trials=100, chunk=50)
QUICK = PolynomialConfig()
FULL = PolynomialConfig(trials=20_000)

EXPERIMENT = Experiment(
    name="polynomial",
    description="degree of a noisy cubic chosen by ML, AIC, BIC, two-part and prequential MDL",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_polynomial,
    quick_minutes=0.1,
)
