"""Karpathy's char-rnn on tiny-shakespeare: an LSTM language model trained by truncated BPTT
beats a count-based n-gram model, samples at two temperatures, and the search for single
cells that track the text's layout (``cells.py``). ``s30 sample char_rnn`` is in
``sample.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.checkpoint import save_checkpoint
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.text import load_tiny_shakespeare
from sutskever30.papers.char_rnn.cells import interpretable_cells
from sutskever30.papers.char_rnn.model import (
    CharRNN,
    CharRNNConfig,
    NGramModel,
    Vocab,
    detach,
    sample,
    stream_loss,
    streams,
)
from sutskever30.papers.char_rnn.sample import CHECKPOINT, sample_command


@dataclass(frozen=True)
class ShakespeareConfig:
    model: CharRNNConfig = field(default_factory=CharRNNConfig)
    batch_size: int = 64  # B parallel contiguous streams of the training text
    seq_len: int = 64  # T: characters per truncated-BPTT segment
    steps: int = 3500
    lr: float = 2e-3
    decay_from: float = 0.7  # lr decays geometrically to lr·final_lr_frac over the last 30%
    final_lr_frac: float = 0.1
    clip: float = 5.0
    eval_every: int = 250
    val_streams: int = 32
    ngram_max_n: int = 10  # try n = 1.. until validation loss rises twice in a row
    max_val_loss: float = 1.70  # the claim's threshold (nats/char), fixed before measuring
    sample_prompt: str = "ROMEO:"
    sample_length: int = 500
    temperatures: tuple[float, ...] = (0.5, 1.0)
    cell_chars: int = 20_000  # validation characters the cell search correlates over
    snippet_lines: int = 12

    def __post_init__(self) -> None:
        if min(self.batch_size, self.seq_len, self.steps, self.val_streams) < 1:
            raise ValueError("batch_size, seq_len, steps and val_streams must be >= 1")
        if self.lr <= 0 or not 0 < self.final_lr_frac <= 1 or not 0 <= self.decay_from <= 1:
            raise ValueError("lr > 0, final_lr_frac in (0, 1] and decay_from in [0, 1] required")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError("temperatures must be positive")
        if not self.sample_prompt:
            raise ValueError("sample_prompt must not be empty")


def load_text(cfg: ShakespeareConfig) -> tuple[Vocab, torch.Tensor, torch.Tensor, str]:
    """The vocabulary, the encoded training and validation text, and the validation text."""
    train_text, val_text = load_tiny_shakespeare()
    vocab = Vocab("".join(sorted(set(train_text + val_text))))
    if len(vocab.chars) != cfg.model.vocab_size:
        raise UsageError(f"model.vocab_size must be {len(vocab.chars)} for tiny-shakespeare")
    return vocab, vocab.encode(train_text), vocab.encode(val_text), val_text


def lr_factor(cfg: ShakespeareConfig, i: int) -> float:
    start = cfg.decay_from * cfg.steps
    if i < start:
        return 1.0
    return cfg.final_lr_frac ** ((i - start) / max(cfg.steps - start, 1))


def ngram_baseline(
    run: Run, cfg: ShakespeareConfig, train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int
) -> tuple[int, float]:
    """Fit n = 1, 2, … on the training text, score on validation (all orders on the same
    characters), stop after the loss has risen twice; return the best (n, loss)."""
    losses: dict[int, float] = {}
    for n in range(1, cfg.ngram_max_n + 1):
        losses[n] = NGramModel(train_ids, n=n, vocab_size=vocab_size).loss(
            val_ids, start=cfg.ngram_max_n - 1
        )
        run.log({"key": "ngram", "n": n, "val_loss": losses[n]})
        if n >= 3 and losses[n] > losses[n - 1] > losses[n - 2]:
            break
    best_n = min(losses, key=losses.get)
    run.summary["ngram_val_loss_by_n"] = {str(k): v for k, v in losses.items()}
    plots.line_plot(
        run.plot_path("ngram_val_loss.png"),
        {"n-gram (interpolated absolute discounting)": (list(losses), list(losses.values()))},
        xlabel="n (characters of context + 1)",
        ylabel="validation loss (nats/char)",
        title="Count-based baseline, tiny-shakespeare",
    )
    return best_n, losses[best_n]


def trainer(run: Run, cfg: ShakespeareConfig, train_ids: torch.Tensor):
    """The LSTM, Adam with its schedule, and ``step(i)``: the next T characters of every
    stream, from the state the previous step left (detached: truncated BPTT); a new epoch
    starts from the zero state. What ``fit`` runs and ``s30 bench`` times. Also returns the
    steps per epoch (the checkpoint interval that makes ``--resume`` exact)."""
    torch.manual_seed(run.seed)
    model = CharRNN.from_config(cfg.model).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(cfg, i))
    X, Y = (t.to(run.device) for t in streams(train_ids, cfg.batch_size))  # (B, L) each
    per_epoch = X.shape[1] // cfg.seq_len
    carry: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {"state": None}

    def step(i: int) -> dict[str, float]:
        j = i % per_epoch
        if j == 0:  # a new pass over the streams starts from the zero state
            carry["state"] = None
        x = X[:, j * cfg.seq_len : (j + 1) * cfg.seq_len]  # (B, T)
        y = Y[:, j * cfg.seq_len : (j + 1) * cfg.seq_len]
        logits, state = model(x, carry["state"])
        carry["state"] = detach(state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return model, opt, sched, step, per_epoch


def train_lstm(run: Run, cfg: ShakespeareConfig, train_ids, val_ids) -> tuple[CharRNN, list]:
    model, opt, sched, step, per_epoch = trainer(run, cfg, train_ids)
    Xv, Yv = (t.to(run.device) for t in streams(val_ids, cfg.val_streams))
    history = fit(
        run,
        "lstm",
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        evaluate=lambda i: {"val_loss": stream_loss(model, Xv, Yv, chunk=256)},
        eval_every=cfg.eval_every,
        checkpoint_every=per_epoch,  # at epoch ends the carried state is zero: exact resume
    )
    run.summary["epochs"] = cfg.steps / per_epoch
    return model.cpu().eval(), history


def plot_loss(run: Run, cfg: ShakespeareConfig, history: list, best_n: int, ngram: float) -> None:
    evals = [r for r in history if "val_loss" in r]
    trains = [r for r in history if "loss" in r]  # an evaluation can land between log steps
    plots.line_plot(
        run.plot_path("loss.png"),
        {
            "LSTM train (batch)": ([r["step"] + 1 for r in trains], [r["loss"] for r in trains]),
            "LSTM validation": ([r["step"] + 1 for r in evals], [r["val_loss"] for r in evals]),
            f"{best_n}-gram validation": ([1, cfg.steps], [ngram, ngram]),
        },
        xlabel="training step",
        ylabel="nats / character",
        title=f"char-rnn, tiny-shakespeare ({run.summary['params'] / 1e6:.2f}M params)",
        styles={f"{best_n}-gram validation": "--"},
    )


def loss_claims(run: Run, cfg: ShakespeareConfig, val_loss: float, ngram_loss: float) -> None:
    run.claim(
        "val_loss",
        f"LSTM validation loss ≤ {cfg.max_val_loss} nats/char",
        "Karpathy 2015: 2×512 LSTM, dropout 0.5, BPTT 100 on ~1 MB of text (no loss quoted)",
        {"val_loss": val_loss, "threshold": cfg.max_val_loss, "steps": cfg.steps},
        "val_loss <= threshold",
    )
    run.claim(
        "beats_ngram",
        "LSTM validation loss below the best count-based n-gram model's "
        "(by more than the seed-to-seed spread)",
        "an RNN models longer context than any n-gram (Karpathy 2015)",
        {"lstm_val_loss": val_loss, "ngram_val_loss": ngram_loss},
        "lstm_val_loss + spread < ngram_val_loss",
    )


def write_samples(run: Run, cfg: ShakespeareConfig, model: CharRNN, vocab: Vocab) -> None:
    prompt = vocab.encode(cfg.sample_prompt).tolist()
    texts = []
    for tau in cfg.temperatures:
        gen = torch.Generator().manual_seed(run.seed)
        text = cfg.sample_prompt + vocab.decode(
            sample(model, prompt, cfg.sample_length, temperature=tau, generator=gen)
        )
        run.summary[f"sample_tau_{tau:g}"] = text  # shown in the report as a text block
        texts.append(f"=== temperature {tau:g} ===\n{text}\n")
    (run.dir / "samples.txt").write_text("\n".join(texts))


def run_shakespeare(run: Run, cfg: ShakespeareConfig) -> None:
    vocab, train_ids, val_ids, val_text = load_text(cfg)
    best_n, ngram_loss = ngram_baseline(
        run, cfg, train_ids.numpy(), val_ids.numpy(), len(vocab.chars)
    )
    run.info(f"n-gram baseline: best n={best_n}, validation {ngram_loss:.4f} nats/char")
    model, history = train_lstm(run, cfg, train_ids, val_ids)
    val_loss = history[-1]["val_loss"]
    save_checkpoint(
        run.dir / CHECKPOINT,
        {"model": model.state_dict(), "vocab": vocab.chars, "config": asdict(cfg.model)},
    )
    run.summary.update(
        {
            "val_loss": val_loss,
            "val_bits_per_char": val_loss / math.log(2),
            "ngram_best_n": best_n,
            "ngram_val_loss": ngram_loss,
            "params": sum(p.numel() for p in model.parameters()),
        }
    )
    loss_claims(run, cfg, val_loss, ngram_loss)
    plot_loss(run, cfg, history, best_n, ngram_loss)
    write_samples(run, cfg, model, vocab)
    interpretable_cells(run, model, cfg.model, vocab, val_text[: cfg.cell_chars], cfg.snippet_lines)


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's LSTM with its truncated-BPTT step on tiny-shakespeare."""
    cfg = run.cfg
    _, train_ids, _, _ = load_text(cfg)
    model, opt, _, step, _ = trainer(run, cfg, train_ids)
    return [BenchCase("shakespeare lstm", model, opt, step, cfg.batch_size * cfg.seq_len)]


EXPERIMENTS = (
    Experiment(
        name="shakespeare",
        description="char LSTM LM (truncated BPTT) vs n-gram, samples at τ=0.5/1.0, cell search",
        presets={
            "smoke": ShakespeareConfig(
                model=CharRNNConfig(hidden_size=32),
                batch_size=16,
                seq_len=32,
                steps=30,
                eval_every=30,
                ngram_max_n=3,
                max_val_loss=3.5,
                sample_length=100,
                cell_chars=2000,
                snippet_lines=4,
            ),
            "quick": ShakespeareConfig(),
            "full": ShakespeareConfig(
                model=CharRNNConfig(hidden_size=512, num_layers=2, dropout=0.5),
                batch_size=100,
                seq_len=100,
                steps=5000,  # 50 epochs of 100 steps, char-rnn's max_epochs
                eval_every=250,
                max_val_loss=1.5,
            ),
        },
        run=run_shakespeare,
        quick_minutes=5.4,  # measured, idle 2-core machine
        datasets=("tinyshakespeare",),
    ),
)

PAPER = Paper(
    slug="char_rnn",
    title="The Unreasonable Effectiveness of Recurrent Neural Networks",
    authors="Andrej Karpathy",
    year=2015,
    arxiv="1506.02078",
    experiments=EXPERIMENTS,
    sample=sample_command,
    bench=bench,
)
