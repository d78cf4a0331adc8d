"""``s30 sample char_rnn``: text from a trained run's checkpoint, streamed as it is drawn."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

import torch

from sutskever30.core.checkpoint import load_checkpoint
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import check_sample_args
from sutskever30.papers.char_rnn.model import CharRNN, CharRNNConfig, Vocab, generate

CHECKPOINT = "model.pt"  # trained weights + vocabulary, in the run folder
CHUNK = 64  # characters per streamed piece (a newline ends a piece early)


def find_checkpoint(run_dir: Path | None, out: Path) -> Path:
    """``run_dir/model.pt``, or the newest finished char_rnn run's (or seed's) under ``out``."""
    if run_dir is not None:
        path = run_dir / CHECKPOINT if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise UsageError(f"no char_rnn checkpoint at {path}")
        return path
    finished = [
        p
        for p in (out / "char_rnn").glob(f"**/{CHECKPOINT}")
        if (p.parent / "results.json").is_file()
    ]
    if not finished:
        raise UsageError(
            f"no finished char_rnn run with a checkpoint under {out / 'char_rnn'}; train one "
            "with `s30 run char_rnn --preset quick` or pass --run <run folder>"
        )
    return max(finished, key=lambda p: (p.parent / "results.json").stat().st_mtime)


def pieces(prompt: str, vocab: Vocab, ids: Iterator[int], length: int) -> Iterator[str]:
    """The prompt, then the first ``length`` drawn characters in pieces of up to CHUNK
    characters (a newline ends a piece), each yielded as soon as it is complete."""
    yield prompt
    piece: list[int] = []
    for c in itertools.islice(ids, length):
        piece.append(c)
        if len(piece) == CHUNK or vocab.chars[c] == "\n":
            yield vocab.decode(piece)
            piece = []
    if piece:
        yield vocab.decode(piece)


def sample_command(args: argparse.Namespace) -> Iterator[str]:
    """``s30 sample char_rnn --prompt ... --temperature ...``: the prompt and its continuation,
    as pieces of text to print (flushed) as they come. Bad arguments, a missing checkpoint
    or a prompt outside the vocabulary raise UsageError before anything is drawn."""
    check_sample_args(args)
    if not args.prompt:
        raise UsageError("--prompt must contain at least one character")
    if getattr(args, "n", 1) != 1:
        raise UsageError("char_rnn streams one sample: --n (best-of-n) is not supported")
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
    ids = generate(
        model,
        vocab.encode(args.prompt).tolist(),
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return pieces(args.prompt, vocab, ids, args.length)
