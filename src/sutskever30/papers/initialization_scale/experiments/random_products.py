"""(d) Singular values of products of Gaussian and orthogonal random matrices, against
Newman's Lyapunov exponents (no training).

Deviations from the paper: the interview states no experiment; sizes, depths and
thresholds are ours (README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.initialization_scale.model import (
    lyapunov_exponents,
    product_singular_values,
)


@dataclass(frozen=True)
class ProductsConfig:
    n: int = 128
    depths: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    near_one: float = 2.0  # "near one": within this factor of 1
    max_fraction_deep: float = 0.1  # Gaussian: at the deepest product fewer than this near one

    def __post_init__(self) -> None:
        if self.n < 2 or min(self.depths) < 1:
            raise ValueError("n ≥ 2 and depths ≥ 1")
        if 1 not in self.depths or len(self.depths) < 2:
            raise ValueError("depths must contain 1 and a deeper product")


def products_claims(run: Run, cfg: ProductsConfig, spectra: dict, lam: torch.Tensor) -> None:
    def near(s: torch.Tensor) -> float:
        return float(((s > 1 / cfg.near_one) & (s < cfg.near_one)).double().mean())

    deepest = max(cfg.depths)
    gauss = spectra["gaussian"]
    ortho_dev = max(float((s - 1).abs().max()) for s in spectra["orthogonal"].values())
    run.claim(
        "orthogonal_isometry",
        f"every singular value of a product of up to {deepest} orthogonal matrices is 1 "
        "(|s - 1| < 1e-9)",
        "eigenvalues exactly 'around one' at any depth",
        {"max_abs_deviation": ortho_dev},
        "max_abs_deviation < 1e-9",
    )
    fractions = {f"depth{d}": near(gauss[d]) for d in cfg.depths}
    run.claim(
        "gaussian_spectrum_spreads",
        f"Gaussian products (E||Wx||² = ||x||²): the fraction of singular values within "
        f"{cfg.near_one:g}x of 1 drops below {cfg.max_fraction_deep:g} at depth {deepest}",
        "the right scale on average is not enough in depth: the spectrum spreads",
        {
            **fractions,
            "median_deepest": float(gauss[deepest].median()),
            "max_fraction": cfg.max_fraction_deep,
        },
        f"depth{deepest} < max_fraction < depth{min(cfg.depths)}",
    )
    median, predicted = float(gauss[deepest].median()), float(torch.exp(deepest * lam[cfg.n // 2]))
    run.claim(
        "median_matches_lyapunov",
        f"median singular value at depth {deepest} within 2x of Newman's exp(L λ_(n/2))",
        "theory: Newman 1986, Lyapunov exponents of Gaussian matrix products",
        {"measured": median, "theory": predicted},
        "abs(log(measured / theory)) < log(2)",
    )
    run.summary.update(fraction_near_one=fractions, orthogonal_max_deviation=ortho_dev)


def plot_spectra(run: Run, cfg: ProductsConfig, spectra: dict, lam: torch.Tensor) -> None:
    deepest = max(cfg.depths)
    gauss = spectra["gaussian"]
    idx = np.arange(1, cfg.n + 1) / cfg.n
    floor = 1e-16
    fig, (ax_g, ax_o) = plots.figure(ncols=2)
    series = {f"L={d}": (idx, gauss[d].clamp_min(floor).numpy()) for d in cfg.depths}
    series[f"L={deepest} theory exp(Lλ_i)"] = (
        idx,
        torch.exp(deepest * lam).clamp_min(floor).numpy(),
    )
    plots.draw_lines(
        ax_g,
        series,
        xlabel="i / n",
        ylabel="singular value s_i",
        title=f"product of L Gaussian {cfg.n}×{cfg.n} matrices (float64 floor ~1e-15)",
        logy=True,
        styles={f"L={deepest} theory exp(Lλ_i)": "k:"},
    )
    plots.draw_lines(
        ax_o,
        {f"L={d}": (idx, s.numpy()) for d, s in spectra["orthogonal"].items()},
        xlabel="i / n",
        ylabel="singular value s_i",
        title=f"product of L orthogonal {cfg.n}×{cfg.n} matrices",
        logy=True,
    )
    ax_o.set_ylim(0.1, 10)
    plots.save(fig, run.plot_path("singular_values.png"))


def run_products(run: Run, cfg: ProductsConfig) -> None:
    gen = torch.Generator().manual_seed(run.seed)
    spectra = {
        kind: product_singular_values(cfg.n, cfg.depths, kind=kind, generator=gen)
        for kind in ("gaussian", "orthogonal")
    }
    lam = lyapunov_exponents(cfg.n)
    products_claims(run, cfg, spectra, lam)
    plot_spectra(run, cfg, spectra, lam)


EXPERIMENT = Experiment(
    name="random_products",
    description="singular values of products of Gaussian vs orthogonal random matrices",
    presets={
        "smoke": ProductsConfig(n=32, depths=(1, 5, 50)),
        "quick": ProductsConfig(),
        "full": ProductsConfig(n=512, depths=(1, 2, 5, 10, 20, 50, 100)),
    },
    run=run_products,
    quick_minutes=0.02,
)
