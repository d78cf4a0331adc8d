"""Markov order of real text: the order of a character-level Markov chain of
tiny-shakespeare chosen by maximum likelihood, AIC, BIC, factorized NML and the prequential
(Krichevsky–Trofimov) code. The chosen orders are reported, not judged: the tutorial makes
no claim about which order English text has.

Every order codes the same characters (those after the first ``max_order``), so the code
lengths are comparable across orders. The alphabet is the training text's 65 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.data.text import load_tiny_shakespeare
from sutskever30.papers.mdl_tutorial.model import (
    aic_code_length,
    bic_code_length,
    context_counts,
    fnml_code_length,
    kt_code_length,
    markov_parameters,
    ml_code_length,
    prequential_code_length,
)

CRITERIA = {
    "ml": "max. likelihood",
    "aic": "AIC",
    "bic": "BIC",
    "fnml": "factorized NML",
    "prequential": "prequential (KT)",
}


@dataclass(frozen=True)
class MarkovConfig:
    max_order: int = 7  # orders 0 … max_order
    max_chars: int = 0  # 0: the whole training split (first 90%, 1,003,854 characters)

    def __post_init__(self) -> None:
        if not 1 <= self.max_order <= 9:
            raise ValueError("max_order must be in [1, 9] (65^10 contexts overflow int64)")
        if self.max_chars < 0 or 0 < self.max_chars <= 10 * self.max_order:
            raise ValueError("max_chars must be 0 (all) or well above max_order")


def encode(text: str) -> tuple[np.ndarray, int]:
    """The text as symbol indices 0 … m−1 (sorted characters) and the alphabet size m."""
    alphabet = sorted(set(text))
    index = {c: i for i, c in enumerate(alphabet)}
    return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text)), len(alphabet)


def order_code_lengths(run: Run, cfg: MarkovConfig, x: np.ndarray, m: int) -> dict:
    """Bits of each criterion for every order, over the same coded characters."""
    bits: dict[str, list[float]] = {c: [] for c in CRITERIA}
    closed_vs_sequential = 0.0
    with run.progress(cfg.max_order + 1, "Markov orders") as bar:
        for order in range(cfg.max_order + 1):
            counts = context_counts(x, order, m, start=cfg.max_order)
            ml = ml_code_length(counts)
            p = markov_parameters(order, m)
            kt = kt_code_length(counts)
            sequential = prequential_code_length(x, order, m, start=cfg.max_order)
            closed_vs_sequential = max(closed_vs_sequential, abs(kt - sequential))
            for name, value in (
                ("ml", ml),
                ("aic", float(aic_code_length(ml, p))),
                ("bic", float(bic_code_length(ml, p, counts.n))),
                ("fnml", fnml_code_length(counts)),
                ("prequential", kt),
            ):
                bits[name].append(value)
            run.log({"key": "markov", "order": order, **{k: v[-1] for k, v in bits.items()}})
            bar.update()
    run.summary["kt_closed_form_vs_sequential_bits"] = closed_vs_sequential
    return bits


def plot_orders(run: Run, bits: dict[str, list[float]], n: int) -> None:
    orders = list(range(len(bits["ml"])))
    per_char = {CRITERIA[c]: (orders, [b / n for b in v]) for c, v in bits.items()}
    fig, (ax,) = plots.figure(width=6.0)
    plots.draw_lines(
        ax,
        per_char,
        xlabel="Markov order k",
        ylabel="code length (bits / character)",
        title=f"tiny-shakespeare, {n:,} characters coded (★: chosen)",
        styles={
            CRITERIA[c]: s for c, s in zip(CRITERIA, ("o-", "s--", "^--", "D-", "v-"), strict=True)
        },
    )
    refined = [b / n for c in ("fnml", "prequential") for b in bits[c]]
    ax.set_ylim(0, 1.3 * max(refined))  # AIC and BIC leave the plot at high orders
    ax.legend(loc="lower left", fontsize=8)
    for name in CRITERIA:
        k = int(np.argmin(bits[name]))
        ax.plot([k], [bits[name][k] / n], "k*", ms=9, zorder=5)
    ax.set_xticks(orders)
    plots.save(fig, run.plot_path("markov_order.png"))


def run_markov(run: Run, cfg: MarkovConfig) -> None:
    train, _ = load_tiny_shakespeare()
    text = train[: cfg.max_chars] if cfg.max_chars else train
    x, m = encode(text)
    bits = order_code_lengths(run, cfg, x, m)
    n = len(x) - cfg.max_order
    chosen = {f"{c}_order": int(np.argmin(v)) for c, v in bits.items()}
    run.summary["bits_per_char"] = {c: [b / n for b in v] for c, v in bits.items()}
    run.report(
        "markov_order_chosen",
        f"order (0 … {cfg.max_order}) of a character Markov chain of tiny-shakespeare chosen by "
        "each criterion",
        "Sec. 2.3/2.6: Markov order selection by refined MDL (the tutorial reports no numbers)",
        {**chosen, "characters": n, "alphabet": m},
    )
    plot_orders(run, bits, n)


SMOKE = MarkovConfig(max_order=3, max_chars=20_000)
QUICK = MarkovConfig()
FULL = MarkovConfig(max_order=9)

EXPERIMENT = Experiment(
    name="markov",
    description="Markov order of tiny-shakespeare by ML, AIC, BIC, factorized NML, prequential",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_markov,
    quick_minutes=0.15,
    datasets=("tinyshakespeare",),
)
