"""The interpretable-cell search (Karpathy, Johnson & Fei-Fei 2015, Sec. 4.2): correlate
every LSTM cell's C_t with layout facts of the text and draw the best cell over a snippet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.run import Run
from sutskever30.papers.char_rnn.model import CharRNN, CharRNNConfig, Vocab

N_STREAMS = 20  # the text is read as this many contiguous streams (one batch)


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
    run: Run,
    model: CharRNN,
    config: CharRNNConfig,
    vocab: Vocab,
    text: str,
    snippet_lines: int,
) -> None:
    """Best cell per feature of the trained model vs the best of the same network untrained;
    the claim on line position; the plot over the first lines of stream 0."""
    ids = vocab.encode(text)
    trained = cell_activations(model, ids, N_STREAMS)
    torch.manual_seed(run.seed + 1)
    control = cell_activations(CharRNN.from_config(config).eval(), ids, N_STREAMS)
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
                },
                "trained_best_abs_r > untrained_best_abs_r + spread",
            )
    # rows 0..L−1 of `trained` are stream 0: the first L characters of the text, in order
    L = len(trained) // N_STREAMS
    lines = text[:L].split("\n")[:-1][:snippet_lines]  # whole lines of stream 0 only
    snippet = "\n".join(lines)
    acts = {name: (cell, r, trained[: len(snippet) + 1, cell]) for name, (cell, r) in best.items()}
    plot_cells(run.plot_path("interpretable_cells.png"), snippet, acts)
