"""``sorting`` (Table 1): sort N numbers drawn uniformly from [0, 1] with read–process–write
for several numbers P of process steps, and with the Ptr-Net; accuracy is the fraction of
test sets whose whole output permutation is right. Also measured on the trained models:
q*_P is invariant and the output distribution equivariant under a permutation of the set.
Plots: accuracy against P beside the paper's with the training losses, and the process
block's attention over one test set."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.order_matters.experiments.common import (
    Common,
    accuracy,
    held_out,
    model_config,
    train,
    trainer,
)
from sutskever30.papers.order_matters.model import PtrNet, ReadProcessWrite

# Table 1 (sorting accuracy, no glimpse), N = 5 and N = 10 (PAPERS.md).
PAPER_SORT = {
    5: {"ptrnet": 81, 0: 65, 1: 84, 5: 88, 10: 90},
    10: {"ptrnet": 8, 0: 7, 1: 14, 5: 17, 10: 19},
}


@dataclass(frozen=True)
class SortConfig(Common):
    sizes: tuple[int, ...] = (5, 10)  # N, numbers per set (each N its own models)
    P: tuple[int, ...] = (0, 1, 5)  # process steps of each read-process-write arm
    ptrnet: bool = True  # also train the Ptr-Net (Table 1's first row)
    steps: int = 2000  # the same for every arm

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sizes or min(self.sizes) < 2 or self.steps < 1:
            raise ValueError("sizes must be values >= 2 and steps >= 1")
        if not self.P or min(self.P) < 0 or 0 not in self.P or len(set(self.P)) != len(self.P):
            raise ValueError(f"P must be distinct values >= 0 including 0, got {self.P}")


def sort_sets(g: torch.Generator, b: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """b sets of n numbers ~ U[0, 1] (B, n, 1) and the sorting permutation (B, n): y_k is
    the index of the k-th smallest."""
    x = torch.rand(b, n, 1, generator=g)
    return x, x[..., 0].argsort(dim=1)


def sort_arms(cfg: SortConfig, n: int) -> dict[str, torch.nn.Module]:
    """The models trained on sets of ``n``: ``n{n}_P{p}`` for each P, ``n{n}_ptrnet``."""
    torch.manual_seed(0)
    arms = {f"n{n}_P{p}": ReadProcessWrite(model_config(cfg, 1, P=p)) for p in cfg.P}
    if cfg.ptrnet:
        arms[f"n{n}_ptrnet"] = PtrNet(model_config(cfg, 1))
    return arms


@torch.no_grad()
def invariance(model: ReadProcessWrite, x: torch.Tensor, seed: int) -> dict[str, float]:
    """Permute every test set: the largest change of q*_P, and of the output probabilities
    once their pointer indices are mapped back through the permutation. In float64, so
    that what is left is rounding, far below any effect of the order."""
    model, x = copy.deepcopy(model).double(), x.double()
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))
    m, m_p = model.read(x), model.read(x[:, perm])
    q, q_p = model.process(m)[0], model.process(m_p)[0]
    y = x[..., 0].argsort(1)
    inv = perm.argsort()  # original index j sits at position inv[j] after permuting
    p = model(x, y)[0].softmax(-1)
    p_perm = model(x[:, perm], inv[y])[0].softmax(-1)[..., inv]
    return {
        "qstar_max_change": (q - q_p).abs().max().item(),
        "output_max_change": (p - p_perm).abs().max().item(),
    }


def run_sorting(run: Run, cfg: SortConfig) -> None:
    run.nets_total = len(cfg.sizes) * (len(cfg.P) + cfg.ptrnet)
    trained, acc, held = {}, {}, {}
    for n in cfg.sizes:

        def make(g, b, n=n):
            return sort_sets(g, b, n)

        held[n] = held_out(cfg, make)
        for key, model in sort_arms(cfg, n).items():
            trained[key] = train(run, cfg, key, model, make, cfg.steps)
            acc[key] = accuracy(trained[key]["model"], *held[n])
    big, p_max = max(cfg.sizes), max(cfg.P)
    inv = invariance(trained[f"n{big}_P{p_max}"]["model"], held[big][0], run.seed)
    run.summary.update(
        {
            "accuracy": acc,
            "train_s": {k: t["train_s"] for k, t in trained.items()},
            "final_train_loss": {k: t["history"][-1]["loss"] for k, t in trained.items()},
            "invariance": inv,
            "threads": torch.get_num_threads(),
        }
    )
    for n in cfg.sizes:
        paper = PAPER_SORT.get(n, {})
        run.claim(
            f"process_steps_help_n{n}",
            f"sorting {n} numbers from U[0,1]: read-process-write with P={p_max} process "
            "steps gets the whole permutation right more often than with P=0, by more than "
            "the seed-to-seed spread (same budget, greedy decoding)",
            f"Table 1 (no glimpse), N={n}: "
            + ", ".join(f"P={p} {paper[p]}%" for p in (0, 1, 5, 10) if p in paper),
            {f"acc_P{p}": acc[f"n{n}_P{p}"] for p in cfg.P},
            f"acc_P{p_max} > acc_P0 + spread",
        )
    run.claim(
        "process_block_invariant",
        f"permuting each test set of {big} numbers changes the trained P={p_max} model's q*_P "
        "and its output probabilities (indices mapped back) by at most 1e-9 (float64)",
        "§4.2: the process block is invariant to the order of the memories",
        inv,
        "qstar_max_change <= 1e-9 and output_max_change <= 1e-9",
    )
    if cfg.ptrnet:
        run.report(
            "ptrnet_sorting",
            "the Ptr-Net's sorting accuracy (same budget as read-process-write)",
            "Table 1: Ptr-Net "
            + ", ".join(
                f"{PAPER_SORT[n]['ptrnet']}% at N={n}" for n in cfg.sizes if n in PAPER_SORT
            ),
            {f"acc_ptrnet_n{n}": acc[f"n{n}_ptrnet"] for n in cfg.sizes},
        )
    plot_sorting(run, cfg, trained, acc)
    plot_process_attention(run, trained[f"n{big}_P{p_max}"]["model"], held[big][0][0])


def plot_sorting(run: Run, cfg: SortConfig, trained: dict, acc: dict) -> None:
    fig, (ax_p, ax_loss) = plots.figure(ncols=2)
    series, styles = {}, {}
    for i, n in enumerate(cfg.sizes):  # ours solid, the paper's dotted, one colour per N
        series[f"N={n}"] = (list(cfg.P), [acc[f"n{n}_P{p}"] for p in cfg.P])
        styles[f"N={n}"] = f"C{i}o-"
        if n in PAPER_SORT:
            ps = [p for p in PAPER_SORT[n] if p != "ptrnet"]
            series[f"N={n} paper"] = (ps, [PAPER_SORT[n][p] / 100 for p in ps])
            styles[f"N={n} paper"] = f"C{i}s:"
    plots.draw_lines(
        ax_p,
        series,
        xlabel="process steps P",
        ylabel="test accuracy (whole permutation)",
        title="Sorting: read-process-write",
        styles=styles,
    )
    plots.draw_lines(
        ax_loss,
        {
            k: ([r["step"] for r in t["history"]], [r["loss"] for r in t["history"]])
            for k, t in trained.items()
        },
        xlabel="step",
        ylabel="pointer loss (nats/output)",
        title="Training loss",
        logy=True,
    )
    plots.save(fig, run.plot_path("accuracy_vs_P.png"))


@torch.no_grad()
def plot_process_attention(run: Run, model: ReadProcessWrite, x: torch.Tensor) -> None:
    """a_{i,t} of every process step on one test set, the elements in their given order."""
    _, _, attn = model(x[None], steps=len(x))
    fig, (ax,) = plots.figure(width=5.5, height=3.6)
    im = ax.imshow(attn[0].numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    values = x[:, 0].tolist()
    ax.set_xticks(range(len(values)), [f"{v:.2f}" for v in values])
    ax.set_yticks(range(attn.shape[1]))
    ax.set_xlabel("set element x_i (in the order given)")
    ax.set_ylabel("process step t (0: uniform)")
    ax.set_title("Process-block attention a_{i,t}")
    fig.colorbar(im, ax=ax)
    plots.save(fig, run.plot_path("process_attention.png"))


SORT_SMOKE = SortConfig(sizes=(5,), d=8, attn_dim=8, batch_size=32, steps=20, eval_sets=200)
SORT_QUICK = SortConfig()
SORT_FULL = SortConfig(
    sizes=(5, 10, 15), d=256, attn_dim=256, P=(0, 1, 5, 10), steps=50_000, lr=1e-3
)


def bench(run: Run) -> list[BenchCase]:
    """Each sorting arm's training step at the run's preset's first N (what ``fit`` runs)."""
    cfg: SortConfig = run.cfg
    cases = []
    n = cfg.sizes[0]
    for name, model in sort_arms(cfg, n).items():
        opt, step = trainer(run, cfg, model, lambda g, b: sort_sets(g, b, n))
        cases.append(BenchCase(name, model, opt, step, cfg.batch_size))
    return cases


EXPERIMENT = Experiment(
    name="sorting",
    description="sort N numbers from U[0,1]: read-process-write accuracy vs process "
    "steps P (and the Ptr-Net); permutation invariance of the process block",
    presets={"smoke": SORT_SMOKE, "quick": SORT_QUICK, "full": SORT_FULL},
    run=run_sorting,
    quick_minutes=3.6,
    quick_seeds=3,
)
