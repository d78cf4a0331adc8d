"""Plots in one house style (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Legible at the report's width: 5-inch panels at 110 dpi, text no smaller than 9 pt.
plt.rcParams.update(
    {
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.framealpha": 0.85,
        "figure.titlesize": 12,
    }
)

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def draw_lines(
    ax,
    series: Series,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> None:
    for label, (x, y) in series.items():
        ax.plot(x, y, (styles or {}).get(label, "-"), label=label, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(loc="best")


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def line_plot(path: Path, series: Series, **kwargs) -> None:
    """One axes of labelled curves saved to ``path``."""
    fig, (ax,) = figure()
    draw_lines(ax, series, **kwargs)
    save(fig, path)
