"""Zaremba et al. 2014: dropout on the non-recurrent connections of an LSTM LM regularizes it;
without dropout it overfits, and dropping the recurrent state too (naive dropout) hurts.

quick: three 2-layer LSTMs on a word-level Shakespeare corpus (10k vocabulary), on a
subsample of the training plays small enough that the unregularized model overfits within
the budget: no dropout, non-recurrent dropout (the paper's), and naive dropout (the paper's
plus dropout on h_{t-1}). full: the paper's three PTB configurations (small non-regularized,
medium 50% dropout, large 65% dropout) with their exact recipes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from sutskever30.core import plots
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.ptb import WordCorpus, load_ptb
from sutskever30.data.shakespeare_plays import load_shakespeare_words
from sutskever30.papers.rnn_regularization.model import (
    LSTMConfig,
    RegularizedLSTM,
    lm_loss,
    perplexity,
)

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


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) word ids → (B, N // B): B contiguous streams read in parallel, as the paper does."""
    width = ids.numel() // batch_size
    return ids[: width * batch_size].view(batch_size, width)


class CarriedState(nn.Module):
    """The LM plus the (h, c) carried from one training batch to the next (truncated BPTT);
    kept as buffers so a checkpoint, and --resume, include it."""

    def __init__(self, lm: RegularizedLSTM, batch_size: int) -> None:
        super().__init__()
        self.lm = lm
        h, c = lm.init_state(batch_size)
        self.register_buffer("h", h)  # (L, B, n)
        self.register_buffer("c", c)


@torch.no_grad()
def evaluate_ppl(lm: RegularizedLSTM, streams: torch.Tensor, unroll: int) -> float:
    """Perplexity of ``lm`` (eval mode, state carried) on (B, W) ``streams``."""
    was_training = lm.training
    lm.eval()
    state = lm.init_state(streams.shape[0])
    total, count = 0.0, 0
    for j in range(0, streams.shape[1] - 1, unroll):
        x = streams[:, j : min(j + unroll, streams.shape[1] - 1)]
        y = streams[:, j + 1 : j + 1 + x.shape[1]]
        logits, state = lm(x, state)
        total += float(lm_loss(logits, y)) * y.numel()
        count += y.numel()
    lm.train(was_training)
    return perplexity(total / count)


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
    label, T, mcfg = cfg.labels[i], cfg.unroll[i], cfg.model(i)
    train = batchify(data["train"], cfg.batch_size)  # (B, W)
    chunks = (train.shape[1] - 1) // T
    if chunks < 1:
        raise UsageError(f"train_tokens too small for batch {cfg.batch_size} × unroll {T}")
    steps = chunks * cfg.epochs[i]
    eval_every = max(chunks // cfg.evals_per_epoch, 1)

    torch.manual_seed(run.seed * 1000 + i)
    lm = RegularizedLSTM(config=mcfg).to(run.device)
    model = CarriedState(lm, cfg.batch_size).to(run.device)
    opt_cls = torch.optim.SGD if cfg.optimizer == "sgd" else torch.optim.Adam
    optimizer = opt_cls(lm.parameters(), lr=cfg.lr)
    decay, after = cfg.lr_decay[i], cfg.decay_after[i]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: decay ** -max(0, s // chunks - after + 1)
    )
    train, val = train.to(run.device), data["valid"].to(run.device)

    def step(s: int) -> dict[str, float]:
        j = s % chunks
        if j == 0:  # a new epoch starts every stream from the zero state
            model.h.zero_()
            model.c.zero_()
        x, y = train[:, j * T : (j + 1) * T], train[:, j * T + 1 : (j + 1) * T + 1]  # (B, T)
        logits, (h, c) = lm(x, (model.h, model.c))
        nll = lm_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        # The paper's objective: NLL summed over the unrolled steps, averaged over the batch.
        (nll * T).backward()
        model.h.copy_(h.detach())  # after backward, which still reads the old state
        model.c.copy_(c.detach())
        nn.utils.clip_grad_norm_(lm.parameters(), cfg.clip[i])
        optimizer.step()
        return {"loss": nll.item(), "lr": optimizer.param_groups[0]["lr"]}

    def evaluate(s: int) -> dict[str, float]:
        return {"val_ppl": evaluate_ppl(lm, val, T)}

    start = time.time()
    history = fit(
        run,
        label,
        model=model,
        optimizer=optimizer,
        steps=steps,
        step=step,
        scheduler=scheduler,
        evaluate=evaluate,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        log_every=1,
    )
    out = Trained(label, mcfg, seconds=time.time() - start)
    since: list[float] = []
    for rec in history:
        since.append(rec["loss"])
        if "val_ppl" in rec:
            out.epochs.append((rec["step"] + 1) / chunks)
            out.train_ppl.append(perplexity(sum(since) / len(since)))
            out.val_ppl.append(rec["val_ppl"])
            since = []
    out.test_ppl = evaluate_ppl(lm, data["test"].to(run.device), T)
    run.info(
        f"{label}: best val {out.best_val:.1f}, final val {out.val_ppl[-1]:.1f}, "
        f"final train {out.train_ppl[-1]:.1f}, test {out.test_ppl:.1f} ({out.seconds:.0f} s)"
    )
    return out


def run_regularization(run: Run, cfg: RegularizationConfig) -> None:
    corpus = load_corpus(cfg)
    train_ids = corpus.train[: cfg.train_tokens or None]
    cut = cfg.eval_tokens or None
    data = {
        "train": torch.from_numpy(train_ids),
        "valid": batchify(torch.from_numpy(corpus.valid[:cut]), cfg.eval_batch_size),
        "test": batchify(torch.from_numpy(corpus.test[:cut]), cfg.eval_batch_size),
    }
    run.summary.update(
        corpus=cfg.corpus,
        vocab=len(corpus.vocab),
        train_words=int(train_ids.size),
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
            "model's best",
            "Table 1: non-regularized 120.7 vs medium 86.2 / large 82.2 (val)",
            {f"{r.label}_best_val_ppl": r.best_val for r in [base, *nonrec]},
            " and ".join(f"{r.label}_best_val_ppl < {base.label}_best_val_ppl" for r in nonrec),
        )
        at_min = base.val_ppl.index(base.best_val)
        run.claim(
            "no_dropout_overfits",
            f"without dropout, validation perplexity ends ≥ {OVERFIT_RISE:.0%} above its "
            "minimum while training perplexity keeps falling",
            "Sec. 4.1: non-regularized LSTMs overfit, so earlier work kept them small",
            {
                "min_val_ppl": base.best_val,
                "final_val_ppl": base.val_ppl[-1],
                "train_ppl_at_min": base.train_ppl[at_min],
                "final_train_ppl": base.train_ppl[-1],
                "rise": OVERFIT_RISE,
            },
            "final_val_ppl >= (1 + rise) * min_val_ppl and final_train_ppl < train_ppl_at_min",
        )
    if naive and nonrec:
        run.claim(
            "naive_dropout_worse",
            "dropping the recurrent state h_{t-1} as well gives a worse best validation "
            "perplexity than non-recurrent dropout alone",
            "Sec. 3.2: dropout on recurrent connections corrupts the memory; apply it only "
            "to non-recurrent ones",
            {
                f"{naive[0].label}_best_val_ppl": naive[0].best_val,
                f"{nonrec[0].label}_best_val_ppl": nonrec[0].best_val,
            },
            f"{naive[0].label}_best_val_ppl > {nonrec[0].label}_best_val_ppl",
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
    experiments=(
        Experiment(
            name="dropout",
            description="word-level LSTM LM: no dropout vs non-recurrent dropout vs naive "
            "recurrent dropout (quick: Shakespeare, 10k vocab); full: the paper's PTB models",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_regularization,
            quick_minutes=3.3,
            datasets=("shakespeare_plays",),
        ),
    ),
)
