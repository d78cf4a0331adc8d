"""Karpathy's char-rnn on tiny-shakespeare: an LSTM language model trained by truncated BPTT
beats a count-based n-gram model, samples at two temperatures, and the search for single
cells that track the text's layout.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.checkpoint import load_checkpoint, save_checkpoint
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.text import load_tiny_shakespeare
from sutskever30.papers.char_rnn.model import (
    CharRNN,
    CharRNNConfig,
    NGramModel,
    detach,
    sample,
    stream_loss,
    streams,
)

CHECKPOINT = "model.pt"  # trained weights + vocabulary, in the run folder, for `s30 sample`


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


class Vocab:
    """Characters ↔ indices; the sorted set of the whole file's characters (as char-rnn)."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


# -- the interpretable-cell search (Karpathy, Johnson & Fei-Fei 2015, Sec. 4.2) ------------


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per character (the state after reading it): the layout facts a cell might track.

    line_position: characters since the last newline; word_position: since the last space or
    newline; speaker_line: 1 on a line that names the speaker ("ROMEO:"); inside_quotes and
    bracket_depth: Karpathy's quote and bracket cells (constant on texts without them).
    """
    n = len(text)
    feats = {
        k: np.zeros(n)
        for k in (
            "line_position",
            "word_position",
            "speaker_line",
            "inside_quotes",
            "bracket_depth",
        )
    }
    line = word = depth = 0
    quoted = False
    for t, c in enumerate(text):
        line = 0 if c == "\n" else line + 1
        word = 0 if c in " \n" else word + 1
        quoted ^= c == '"'
        depth = max(depth + (c in "([{") - (c in ")]}"), 0)
        feats["line_position"][t] = line
        feats["word_position"][t] = word
        feats["inside_quotes"][t] = quoted
        feats["bracket_depth"][t] = depth
    start = 0
    for ln in text.split("\n"):
        name = ln.endswith(":") and ln[:-1].replace(" ", "").isalpha() and ln[:-1].isupper()
        feats["speaker_line"][start : start + len(ln) + 1] = float(name)
        start += len(ln) + 1
    return feats


def correlations(cells: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of every cell (columns of cells: (N, D)) with one feature (N,)."""
    c = cells - cells.mean(0)
    f = feature - feature.mean()
    denom = np.sqrt((c**2).sum(0) * (f**2).sum()) + 1e-12
    return (c * f[:, None]).sum(0) / denom


def cell_activations(model: CharRNN, ids: torch.Tensor, n_streams: int) -> np.ndarray:
    """C_t for every position of ``ids`` (read as n_streams contiguous streams): (N, layers·H)."""
    L = len(ids) // n_streams
    cells = model.cell_states(ids[: n_streams * L].view(n_streams, L))  # (S, L, D)
    return cells.reshape(n_streams * L, -1).numpy()


def plot_cells(path: Path, snippet: str, acts: dict[str, tuple[int, float, np.ndarray]]) -> None:
    """Karpathy-style strips: the snippet's characters on a background coloured by one
    cell's activation (tanh C, blue −1 … red +1), one panel per feature."""
    lines = snippet.split("\n")
    width = max(len(ln) for ln in lines) + 1
    fig, axes = plots.plt.subplots(
        len(acts),
        1,
        figsize=(0.13 * width + 1, (0.28 * len(lines) + 0.6) * len(acts)),
        squeeze=False,
    )
    for ax, (name, (cell, r, values)) in zip(axes[:, 0], acts.items(), strict=True):
        grid = np.full((len(lines), width), np.nan)
        pos = 0
        for row, ln in enumerate(lines):
            grid[row, : len(ln) + 1] = values[pos : pos + len(ln) + 1]
            for col, ch in enumerate(ln):
                ax.text(col, row, ch, ha="center", va="center", fontsize=7, family="monospace")
            pos += len(ln) + 1
        ax.imshow(np.tanh(grid), cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
        ax.set_title(f"cell {cell}: best match for {name} (r = {r:+.2f})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    plots.save(fig, path)


def interpretable_cells(
    run: Run, model: CharRNN, cfg: ShakespeareConfig, vocab: Vocab, val: str
) -> None:
    text = val[: cfg.cell_chars]
    ids = vocab.encode(text)
    n_streams = 20
    trained = cell_activations(model, ids, n_streams)
    torch.manual_seed(run.seed + 1)
    control = cell_activations(CharRNN.from_config(cfg.model).eval(), ids, n_streams)
    feats = text_features(text[: len(trained)])
    best: dict[str, tuple[int, float]] = {}
    absent = [name for name, feat in feats.items() if feat.std() == 0]
    if absent:
        run.notes.append(
            f"Cell search: skipped {', '.join(absent)}: constant on this validation text "
            "(tiny-shakespeare has no double quotes or brackets)."
        )
    for name, feat in feats.items():
        if name in absent:
            continue
        r = correlations(trained, feat)
        r0 = correlations(control, feat)
        cell = int(np.abs(r).argmax())
        best[name] = (cell, float(r[cell]))
        run.summary[f"cell_{name}"] = {
            "cell": cell,
            "r": float(r[cell]),
            "untrained_best_abs_r": float(np.abs(r0).max()),
        }
        if name == "line_position":
            run.claim(
                "line_position_cell",
                "one trained LSTM cell tracks the position in the line better than any cell of "
                "the same network untrained (|Pearson r| on validation text)",
                "Karpathy et al. 2015: cells that count line length / track quotes and brackets",
                {
                    "trained_best_abs_r": abs(float(r[cell])),
                    "untrained_best_abs_r": float(np.abs(r0).max()),
                    "cell": cell,
                },
                "trained_best_abs_r > untrained_best_abs_r",
            )
    # rows 0..L−1 of `trained` are stream 0: the first L characters of the text, in order
    L = len(trained) // n_streams
    lines = text[:L].split("\n")[:-1][: cfg.snippet_lines]  # whole lines of stream 0 only
    snippet = "\n".join(lines)
    acts = {name: (cell, r, trained[: len(snippet) + 1, cell]) for name, (cell, r) in best.items()}
    plot_cells(run.plot_path("interpretable_cells.png"), snippet, acts)


# -- the run -------------------------------------------------------------------------------


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


def run_shakespeare(run: Run, cfg: ShakespeareConfig) -> None:
    train_text, val_text = load_tiny_shakespeare()
    vocab = Vocab("".join(sorted(set(train_text + val_text))))
    if len(vocab.chars) != cfg.model.vocab_size:
        raise UsageError(f"model.vocab_size must be {len(vocab.chars)} for tiny-shakespeare")
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)

    best_n, ngram_loss = ngram_baseline(
        run, cfg, train_ids.numpy(), val_ids.numpy(), len(vocab.chars)
    )
    run.info(f"n-gram baseline: best n={best_n}, validation {ngram_loss:.4f} nats/char")

    torch.manual_seed(run.seed)
    model = CharRNN.from_config(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(cfg, i))
    X, Y = streams(train_ids, cfg.batch_size)  # (B, L)
    Xv, Yv = streams(val_ids, cfg.val_streams)
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
    model.eval()
    val_loss = history[-1]["val_loss"]
    save_checkpoint(
        run.dir / CHECKPOINT,
        {"model": model.state_dict(), "vocab": vocab.chars, "config": asdict(cfg.model)},
    )
    n_params = sum(p.numel() for p in model.parameters())
    run.summary.update(
        {
            "val_loss": val_loss,
            "val_bits_per_char": val_loss / math.log(2),
            "ngram_best_n": best_n,
            "ngram_val_loss": ngram_loss,
            "params": n_params,
            "epochs": cfg.steps / per_epoch,
        }
    )

    evals = [r for r in history if "val_loss" in r]
    trains = [r for r in history if "loss" in r]  # an evaluation can land between log steps
    plots.line_plot(
        run.plot_path("loss.png"),
        {
            "LSTM train (batch)": ([r["step"] + 1 for r in trains], [r["loss"] for r in trains]),
            "LSTM validation": ([r["step"] + 1 for r in evals], [r["val_loss"] for r in evals]),
            f"{best_n}-gram validation": ([1, cfg.steps], [ngram_loss, ngram_loss]),
        },
        xlabel="training step",
        ylabel="nats / character",
        title=f"char-rnn, tiny-shakespeare ({n_params / 1e6:.2f}M params)",
        styles={f"{best_n}-gram validation": "--"},
    )
    run.claim(
        "val_loss",
        f"LSTM validation loss ≤ {cfg.max_val_loss} nats/char",
        "Karpathy 2015: 2×512 LSTM, dropout 0.5, BPTT 100 on ~1 MB of text (no loss quoted)",
        {"val_loss": val_loss, "threshold": cfg.max_val_loss, "steps": cfg.steps},
        "val_loss <= threshold",
    )
    run.claim(
        "beats_ngram",
        "LSTM validation loss below the best count-based n-gram model's",
        "an RNN models longer context than any n-gram (Karpathy 2015)",
        {"lstm_val_loss": val_loss, "ngram_val_loss": ngram_loss, "ngram_n": best_n},
        "lstm_val_loss < ngram_val_loss",
    )

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

    interpretable_cells(run, model, cfg, vocab, val_text)


# -- `s30 sample char_rnn` ------------------------------------------------------------------


def find_checkpoint(run_dir: Path | None, out: Path) -> Path:
    """``run_dir/model.pt``, or the newest finished char_rnn run's under ``out``."""
    if run_dir is not None:
        path = run_dir / CHECKPOINT if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise UsageError(f"no char_rnn checkpoint at {path}")
        return path
    finished = [
        p
        for p in (out / "char_rnn").glob(f"*/*/{CHECKPOINT}")
        if (p.parent / "results.json").is_file()
    ]
    if not finished:
        raise UsageError(
            f"no finished char_rnn run with a checkpoint under {out / 'char_rnn'}; train one "
            "with `s30 run char_rnn --preset quick` or pass --run <run folder>"
        )
    return max(finished, key=lambda p: (p.parent / "results.json").stat().st_mtime)


def sample_command(args: argparse.Namespace) -> str:
    """``s30 sample char_rnn --prompt ... --temperature ...``: text from a trained run."""
    if not args.temperature > 0:
        raise UsageError(f"--temperature must be > 0, got {args.temperature}")
    if args.length < 1 or args.top_k < 0 or not 0 < args.top_p <= 1:
        raise UsageError("need --length >= 1, --top-k >= 0 and --top-p in (0, 1]")
    if not args.prompt:
        raise UsageError("--prompt must contain at least one character")
    state = load_checkpoint(find_checkpoint(args.run, args.out))
    vocab = Vocab(state["vocab"])
    missing = sorted({c for c in args.prompt if c not in vocab.index})
    if missing:
        raise UsageError(
            f"prompt characters {''.join(missing)!r} are not in the model's "
            f"vocabulary {vocab.chars!r}"
        )
    model = CharRNN.from_config(CharRNNConfig(**state["config"]))
    model.load_state_dict(state["model"])
    gen = torch.Generator().manual_seed(args.seed)
    ids = sample(
        model,
        vocab.encode(args.prompt).tolist(),
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=gen,
    )
    return args.prompt + vocab.decode(ids)


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
        quick_minutes=2.3,
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
)
