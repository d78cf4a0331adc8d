"""``tsp``: trained on optimal (Held–Karp) tours of n = 5-10 points, tested on held-out sets
of n = 5-10: mean tour length of beam search and of greedy decoding, both over valid tours
only, against the optimum. Plot: tour / optimal per n, the training loss and example
tours against the optimal ones."""

from __future__ import annotations

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.data.planar import PointSets, tour_length
from sutskever30.papers.pointer_networks.experiments.common import (
    PlanarConfig,
    decode,
    draw_polygon,
    make_sets,
    train_model,
)


def tour_lengths(sets: PointSets, tours: list[list[int]]) -> np.ndarray:
    return np.array(
        [tour_length(sets.points[i, : sets.lengths[i]], t) for i, t in enumerate(tours)]
    )


def run_tsp(run: Run, cfg: PlanarConfig) -> None:
    model, history, train_s = train_model(run, cfg)
    sets = make_sets(cfg, cfg.split, 0, cfg.eval_sets, cfg.n_min, cfg.n_max)
    optimal = tour_lengths(sets, [list(lab) for lab in sets.labels])
    greedy = decode(model, sets, run.device, tour=True)
    beam = decode(model, sets, run.device, tour=True, beam=cfg.beam) if cfg.beam > 1 else greedy
    for tours in (greedy, beam):
        assert all(sorted(t) == list(range(n)) for t, n in zip(tours, sets.lengths, strict=True))
    lengths = {"greedy": tour_lengths(sets, greedy), "beam": tour_lengths(sets, beam)}
    ns = list(range(cfg.n_min, cfg.n_max + 1))
    by_n = {
        n: {
            k: float(v[sets.lengths == n].mean())
            for k, v in [("optimal", optimal), *lengths.items()]
        }
        for n in ns
    }
    run.summary.update(
        {
            "train_s": train_s,
            "params": model.num_params(),
            "by_n": by_n,
            "exact_tours": float(
                np.mean([list(lab) == t for lab, t in zip(sets.labels, beam, strict=True)])
            ),
        }
    )
    decoder = f"beam search (width {cfg.beam}) over valid tours" if cfg.beam > 1 else "greedy"
    run.claim(
        "tsp_near_optimal",
        f"on {cfg.eval_sets} held-out sets of n = {cfg.n_min}-{cfg.n_max} uniform points, the "
        f"Ptr-Net's mean tour length ({decoder}) is within 10% of the optimal (Held–Karp)",
        "Table 2: n = 10: Ptr-Net 2.88 vs optimal 2.87",
        {"tour": float(lengths["beam"].mean()), "optimal": float(optimal.mean())},
        "tour <= 1.10 * optimal",
    )
    run.report(
        "tsp_by_n",
        "mean tour length at each n: optimal, greedy (visited points masked) and beam search",
        "Table 2: n = 10: optimal 2.87, Ptr-Net 2.88",
        {f"{k}_{n}": by_n[n][k] for n in ns for k in ("optimal", "greedy", "beam")},
    )
    plot_tsp(run, sets, beam, by_n, cfg, history)


def plot_tsp(run: Run, sets: PointSets, tours, by_n: dict, cfg: PlanarConfig, history) -> None:
    ns = sorted(by_n)
    k = min(cfg.examples, len(sets))
    fig, axes = plots.figure(ncols=k + 2, width=3.4, height=3.4)
    plots.draw_lines(
        axes[0],
        {
            name: (ns, [by_n[n][name] / by_n[n]["optimal"] for n in ns])
            for name in ("greedy", "beam")
        },
        xlabel="n (points per set)",
        ylabel="mean tour / optimal",
        title="TSP tour length",
        styles={"greedy": "o-", "beam": "s-"},
    )
    plots.draw_lines(
        axes[1],
        {"loss": ([r["step"] for r in history], [r["loss"] for r in history])},
        xlabel="step",
        ylabel="cross-entropy (nats/output)",
        title="Teacher-forced training loss",
    )
    for i, ax in enumerate(axes[2:]):
        pts = sets.points[i, : sets.lengths[i]]
        ax.scatter(pts[:, 0], pts[:, 1], s=12, color="k")
        draw_polygon(ax, pts, list(sets.labels[i]), "g-", "optimal")
        draw_polygon(ax, pts, tours[i], "r--", "Ptr-Net")
        ax.set_title(
            f"n = {len(pts)}: {tour_length(pts, tours[i]):.3f} vs "
            f"{tour_length(pts, sets.labels[i]):.3f}",
            fontsize=8,
        )
        ax.set_aspect("equal")
    if k:
        axes[2].legend(loc="best", fontsize=7)
    plots.save(fig, run.plot_path("tours.png"))


# -- presets and registration -----------------------------------------------------------------

TSP_SMOKE = PlanarConfig(
    task="tsp",
    hidden=16,
    attn_dim=16,
    train_sets=512,
    batch_size=32,
    steps=20,
    eval_sets=40,
    beam=2,
    larger_n=(),
)
TSP_QUICK = PlanarConfig(task="tsp", steps=2500, larger_n=())
TSP_FULL = PlanarConfig(
    task="tsp",
    hidden=256,
    attn_dim=256,
    n_max=12,
    train_sets=1_000_000,
    steps=100_000,
    beam=10,
    larger_n=(),
)


EXPERIMENT = Experiment(
    name="tsp",
    description="TSP on n = 5-10 points: tour length against the Held–Karp optimum",
    presets={"smoke": TSP_SMOKE, "quick": TSP_QUICK, "full": TSP_FULL},
    run=run_tsp,
    quick_minutes=1.3,
)
