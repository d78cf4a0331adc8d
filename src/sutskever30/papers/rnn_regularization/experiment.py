"""Zaremba et al. 2014: dropout on the non-recurrent connections of an LSTM LM regularizes it;
without dropout it overfits, and dropping the recurrent state too (naive dropout) hurts.

quick: three 2-layer LSTMs on a word-level Shakespeare corpus (10k vocabulary), on a
subsample of the training plays small enough that the unregularized model overfits within
the budget: no dropout, non-recurrent dropout (the paper's), and naive dropout (the paper's
plus dropout on h_{t-1}). full: the paper's three PTB configurations (small non-regularized,
medium 50% dropout, large 65% dropout) with their exact recipes.

Deviations from the paper (quick preset; README: Deviations):
- Shakespeare's plays instead of PTB (not available here), and only the first 50k training
  words, so that the unregularized model overfits within minutes.
- Adam at lr 3e-3, constant, for 8 epochs, instead of SGD at lr 1 with decay; 2×256 units.
- Evaluation in batches of 10 contiguous streams (state carried), not batch 1.
- Over 3 seeds, each ordering claim must hold by more than the seed-to-seed spread of its gap.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.ptb import WordCorpus, load_ptb
from sutskever30.data.shakespeare_plays import load_shakespeare_words
from sutskever30.papers.rnn_regularization.model import LSTMConfig, perplexity
from sutskever30.papers.rnn_regularization.training import batchify, evaluate_ppl, trainer

# Table 1 of the paper: (validation, test) perplexity on PTB.
PAPER_PPL = {"small": (120.7, 114.5), "medium": (86.2, 82.7), "large": (82.2, 78.4)}
# The no-dropout model "overfits" when its last validation perplexity is this far above its
# minimum (relative), while its training perplexity is lower than at that minimum.
OVERFIT_RISE = 0.02

PER_MODEL = (
    "labels",
    "n",
    "dropout",
    "recurrent_dropout",
    "init_scale",
    "epochs",
    "decay_after",
    "lr_decay",
    "clip",
    "unroll",
)


@dataclass(frozen=True)
class RegularizationConfig:
    """Several LMs trained one after the other; the tuples hold one entry per model."""

    corpus: Literal["shakespeare", "ptb"] = "shakespeare"
    vocab_size: int = 10000
    train_tokens: int = 0  # use the first train_tokens training words; 0 = all
    eval_tokens: int = 0  # evaluate on the first eval_tokens words of valid/test; 0 = all
    labels: tuple[str, ...] = ("none", "nonrecurrent", "naive")
    n: tuple[int, ...] = (200, 200, 200)
    n_layers: int = 2
    dropout: tuple[float, ...] = (0.0, 0.5, 0.5)
    recurrent_dropout: tuple[float, ...] = (0.0, 0.0, 0.5)
    init_scale: tuple[float, ...] = (0.1, 0.1, 0.1)
    epochs: tuple[int, ...] = (6, 6, 6)
    decay_after: tuple[int, ...] = (99, 99, 99)  # epochs at the full learning rate
    lr_decay: tuple[float, ...] = (1.0, 1.0, 1.0)  # lr is divided by this every later epoch
    clip: tuple[float, ...] = (5.0, 5.0, 5.0)  # max norm of the gradient (per minibatch)
    unroll: tuple[int, ...] = (35, 35, 35)
    batch_size: int = 20
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 1.0
    evals_per_epoch: int = 1
    eval_batch_size: int = 10
    only: tuple[str, ...] = ()  # train just the models with these labels; () = all

    def __post_init__(self) -> None:
        lengths = {name: len(getattr(self, name)) for name in PER_MODEL}
        if len(set(lengths.values())) != 1 or lengths["labels"] == 0:
            raise ValueError(f"per-model tuples must have one common non-zero length: {lengths}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct, got {self.labels}")
        if set(self.only) - set(self.labels):
            raise ValueError(f"only must name labels from {self.labels}, got {self.only}")
        if min(self.epochs) < 1 or min(self.unroll) < 1 or min(self.clip) <= 0:
            raise ValueError("epochs ≥ 1, unroll ≥ 1 and clip > 0 are required")
        if min(self.lr_decay) < 1.0:
            raise ValueError(f"lr_decay divides the learning rate; it must be ≥ 1: {self.lr_decay}")
        if self.lr <= 0 or self.batch_size < 1 or self.evals_per_epoch < 1:
            raise ValueError("lr > 0, batch_size ≥ 1 and evals_per_epoch ≥ 1 are required")
        if self.train_tokens < 0 or self.eval_tokens < 0 or self.vocab_size < 3:
            raise ValueError("train_tokens, eval_tokens ≥ 0 and vocab_size ≥ 3 are required")
        for i in range(len(self.labels)):
            self.model(i)  # validates the model fields (LSTMConfig.__post_init__)

    def model(self, i: int) -> LSTMConfig:
        return LSTMConfig(
            vocab_size=self.vocab_size,
            n=self.n[i],
            n_layers=self.n_layers,
            dropout=self.dropout[i],
            recurrent_dropout=self.recurrent_dropout[i],
            init_scale=self.init_scale[i],
        )


def load_corpus(cfg: RegularizationConfig) -> WordCorpus:
    if cfg.corpus == "ptb":
        return load_ptb(cfg.vocab_size)
    return load_shakespeare_words(cfg.vocab_size)


@dataclass
class Trained:
    label: str
    cfg: LSTMConfig
    epochs: list[float] = field(default_factory=list)  # x of each evaluation
    train_ppl: list[float] = field(default_factory=list)  # exp(mean training NLL since last eval)
    val_ppl: list[float] = field(default_factory=list)
    test_ppl: float = math.nan
    seconds: float = 0.0

    @property
    def best_val(self) -> float:
        return min(self.val_ppl)


def train_one(
    run: Run, cfg: RegularizationConfig, i: int, data: dict[str, torch.Tensor]
) -> Trained:
    label, T = cfg.labels[i], cfg.unroll[i]
    tr = trainer(run, cfg, i, data["train"])
    eval_every = max(tr.chunks // cfg.evals_per_epoch, 1)
    val = data["valid"].to(run.device)

    def evaluate(s: int) -> dict[str, float]:
        return {"val_ppl": evaluate_ppl(tr.lm, val, T)}

    start = time.time()
    history = fit(
        run,
        label,
        model=tr.model,
        optimizer=tr.optimizer,
        steps=tr.steps,
        step=tr.step,
        scheduler=tr.scheduler,
        evaluate=evaluate,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        log_every=1,
    )
    out = Trained(label, tr.lm.config, seconds=time.time() - start)
    since: list[float] = []
    for rec in history:
        since.append(rec["loss"])
        if "val_ppl" in rec:
            out.epochs.append((rec["step"] + 1) / tr.chunks)
            out.train_ppl.append(perplexity(sum(since) / len(since)))
            out.val_ppl.append(rec["val_ppl"])
            since = []
    out.test_ppl = evaluate_ppl(tr.lm, data["test"].to(run.device), T)
    run.info(
        f"{label}: best val {out.best_val:.1f}, final val {out.val_ppl[-1]:.1f}, "
        f"final train {out.train_ppl[-1]:.1f}, test {out.test_ppl:.1f} ({out.seconds:.0f} s)"
    )
    return out


def load_data(cfg: RegularizationConfig) -> tuple[WordCorpus, dict[str, torch.Tensor]]:
    """The corpus, and its training words (N,) and validation/test streams (B, W)."""
    corpus = load_corpus(cfg)
    cut = cfg.eval_tokens or None
    return corpus, {
        "train": torch.from_numpy(corpus.train[: cfg.train_tokens or None]),
        "valid": batchify(torch.from_numpy(corpus.valid[:cut]), cfg.eval_batch_size),
        "test": batchify(torch.from_numpy(corpus.test[:cut]), cfg.eval_batch_size),
    }


def run_regularization(run: Run, cfg: RegularizationConfig) -> None:
    corpus, data = load_data(cfg)
    run.summary.update(
        corpus=cfg.corpus,
        vocab=len(corpus.vocab),
        train_words=int(data["train"].numel()),
        valid_words=int(data["valid"].numel()),
        test_words=int(data["test"].numel()),
    )
    chosen = [i for i, label in enumerate(cfg.labels) if not cfg.only or label in cfg.only]
    results = [train_one(run, cfg, i, data) for i in chosen]
    for r in results:
        run.summary[r.label] = {
            "best_val_ppl": round(r.best_val, 2),
            "final_val_ppl": round(r.val_ppl[-1], 2),
            "final_train_ppl": round(r.train_ppl[-1], 2),
            "test_ppl": round(r.test_ppl, 2),
            "train_seconds": round(r.seconds, 1),
        }
    claims(run, results)
    plot(run, results)


def claims(run: Run, results: list[Trained]) -> None:
    none = [r for r in results if r.cfg.dropout == 0 and r.cfg.recurrent_dropout == 0]
    nonrec = [r for r in results if r.cfg.dropout > 0 and r.cfg.recurrent_dropout == 0]
    naive = [r for r in results if r.cfg.recurrent_dropout > 0]
    if none and nonrec:
        base = none[0]
        run.claim(
            "dropout_beats_none",
            "best validation perplexity with non-recurrent dropout is below the unregularized "
            "model's best (by more than the seed-to-seed spread of the gap)",
            "Table 1: non-regularized 120.7 vs medium 86.2 / large 82.2 (val)",
            {f"{r.label}_best_val_ppl": r.best_val for r in [base, *nonrec]},
            " and ".join(
                f"{base.label}_best_val_ppl > {r.label}_best_val_ppl + spread" for r in nonrec
            ),
        )
        at_min = base.val_ppl.index(base.best_val)
        run.claim(
            "no_dropout_overfits",
            f"without dropout, validation perplexity ends more than {OVERFIT_RISE:.0%} above "
            "its minimum while training perplexity keeps falling (each by more than the "
            "seed-to-seed spread)",
            "Sec. 4.1: non-regularized LSTMs overfit, so earlier work kept them small",
            {
                "min_val_ppl": base.best_val,
                "final_val_ppl": base.val_ppl[-1],
                "train_ppl_at_min": base.train_ppl[at_min],
                "final_train_ppl": base.train_ppl[-1],
                "rise": OVERFIT_RISE,
            },
            "final_val_ppl > (1 + rise) * min_val_ppl + spread "
            "and train_ppl_at_min > final_train_ppl + spread",
        )
    if naive and nonrec:
        run.claim(
            "naive_dropout_worse",
            "dropping the recurrent state h_{t-1} as well gives a worse best validation "
            "perplexity than non-recurrent dropout alone (by more than the seed-to-seed spread "
            "of the gap)",
            "Sec. 3.2: dropout on recurrent connections corrupts the memory; apply it only "
            "to non-recurrent ones",
            {
                f"{naive[0].label}_best_val_ppl": naive[0].best_val,
                f"{nonrec[0].label}_best_val_ppl": nonrec[0].best_val,
            },
            f"{naive[0].label}_best_val_ppl > {nonrec[0].label}_best_val_ppl + spread",
        )
    for r in results:
        if r.label in PAPER_PPL:
            paper_val, paper_test = PAPER_PPL[r.label]
            run.report(
                f"{r.label}_ppl",
                f"{r.label} configuration's PTB perplexity beside the paper's",
                f"Table 1: {r.label} val {paper_val}, test {paper_test}",
                {"best_val_ppl": r.best_val, "test_ppl": r.test_ppl},
            )


def plot(run: Run, results: list[Trained]) -> None:
    fig, axes = plots.figure(ncols=len(results) + 1, width=4.2)
    for ax, r in zip(axes, results, strict=False):
        plots.draw_lines(
            ax,
            {"train": (r.epochs, r.train_ppl), "validation": (r.epochs, r.val_ppl)},
            xlabel="epoch",
            ylabel="perplexity",
            title=f"{r.label} (p={r.cfg.dropout}, recurrent p={r.cfg.recurrent_dropout})",
            logy=True,
        )
    plots.draw_lines(
        axes[-1],
        {r.label: (r.epochs, r.val_ppl) for r in results},
        xlabel="epoch",
        ylabel="validation perplexity",
        title="validation perplexity",
        logy=True,
    )
    plots.save(fig, run.plot_path("perplexity_curves.png"))


def bench(run: Run) -> list[BenchCase]:
    """Each model of the quick preset with its own training step on the real corpus."""
    cfg = run.cfg
    _, data = load_data(cfg)
    cases = []
    for i, label in enumerate(cfg.labels):
        tr = trainer(run, cfg, i, data["train"])
        cases.append(BenchCase(label, tr.model, tr.optimizer, tr.step, tr.tokens_per_step, 1))
    return cases


SMOKE = RegularizationConfig(
    train_tokens=4000,
    eval_tokens=2000,
    n=(32, 32, 32),
    epochs=(1, 1, 1),
    unroll=(10, 10, 10),
    batch_size=8,
    optimizer="adam",
    lr=3e-3,
    evals_per_epoch=2,
)
QUICK = RegularizationConfig(
    train_tokens=50_000,
    eval_tokens=10_000,
    n=(256, 256, 256),
    epochs=(8, 8, 8),
    optimizer="adam",
    lr=3e-3,
    evals_per_epoch=2,
)
FULL = RegularizationConfig(
    corpus="ptb",
    labels=("small", "medium", "large"),
    n=(200, 650, 1500),
    dropout=(0.0, 0.5, 0.65),
    recurrent_dropout=(0.0, 0.0, 0.0),
    init_scale=(0.1, 0.05, 0.04),
    epochs=(13, 39, 55),
    decay_after=(4, 6, 14),
    lr_decay=(2.0, 1.2, 1.15),
    clip=(5.0, 5.0, 10.0),
    unroll=(20, 35, 35),
    optimizer="sgd",
    lr=1.0,
)

PAPER = Paper(
    slug="rnn_regularization",
    title="Recurrent Neural Network Regularization",
    authors="Wojciech Zaremba, Ilya Sutskever, Oriol Vinyals",
    year=2014,
    arxiv="1409.2329",
    bench=bench,
    experiments=(
        Experiment(
            name="dropout",
            description="word-level LSTM LM: no dropout vs non-recurrent dropout vs naive "
            "recurrent dropout (quick: Shakespeare, 10k vocab); full: the paper's PTB models",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_regularization,
            quick_minutes=14.0,
            datasets=("shakespeare_plays",),
            quick_seeds=3,
        ),
    ),
)
