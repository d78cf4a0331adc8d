"""``s30 sample gpt2_sampling``: text from the reference GPT of a finished run.

One sample (``--n 1``) streams: it is drawn in pieces of ``CHUNK`` characters, each printed
as soon as it is drawn. Best-of-n (``--n k``) draws its k candidates side by side and prints
the one the model finds most likely (:func:`sutskever30.nn.sampling.best_of`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import torch

from sutskever30.core.checkpoint import load_checkpoint
from sutskever30.core.errors import CheckpointError, UsageError
from sutskever30.core.registry import check_sample_args
from sutskever30.nn.gpt import GPT, GPTConfig
from sutskever30.papers.gpt2_sampling.model import CharVocab, Sampler, continue_text

CHECKPOINT = "model.pt"  # the reference size's weights, GPT config and vocabulary
CHUNK = 64  # characters drawn per streamed piece


def find_checkpoint(run_dir: Path | None, out: Path) -> Path:
    """``run_dir/model.pt``, or the newest finished gpt2_sampling run's under ``out``."""
    if run_dir is not None:
        path = run_dir / CHECKPOINT if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise UsageError(f"no gpt2_sampling checkpoint at {path}")
        return path
    finished = [
        p
        for p in (out / "gpt2_sampling").glob(f"**/{CHECKPOINT}")
        if (p.parent / "results.json").is_file()
    ]
    if not finished:
        raise UsageError(
            f"no finished gpt2_sampling run with a checkpoint under {out / 'gpt2_sampling'}; "
            "train one with `s30 run gpt2_sampling` or pass --run <run folder>"
        )
    return max(finished, key=lambda p: (p.parent / "results.json").stat().st_mtime)


def load_model(path: Path) -> tuple[GPT, CharVocab]:
    state = load_checkpoint(path)
    try:
        model = GPT(GPTConfig(**state["config"]))
        model.load_state_dict(state["model"])
        vocab = CharVocab(state["vocab"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not a gpt2_sampling checkpoint ({err!r})") from None
    return model.eval(), vocab


def stream(
    model: GPT, prompt: torch.Tensor, length: int, sampler: Sampler, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """``length`` drawn tokens after ``prompt`` (T,), in pieces of up to CHUNK, each drawn
    only when the previous one has been taken. Each piece continues from the last
    ``context`` tokens, which is all the model reads once its context is full."""
    n = model.cfg.context
    seq = prompt[-n:]
    for start in range(0, length, CHUNK):
        piece, _ = model.generate(
            seq[None],
            min(CHUNK, length - start),
            temperature=sampler.temperature,
            top_k=sampler.top_k,
            top_p=sampler.top_p,
            generator=generator,
        )  # (1, piece)
        seq = torch.cat([seq, piece[0]])[-n:]
        yield piece[0]


def sample_command(args: argparse.Namespace) -> str | Iterator[str]:
    """``s30 sample gpt2_sampling --prompt ... --temperature ... --top-k ... --top-p ...
    --n ... --length ...``: the prompt and its continuation. Bad arguments, a missing or
    corrupt checkpoint, or a prompt character outside the vocabulary raise one clear error
    before anything is drawn."""
    check_sample_args(args)
    if not args.prompt:
        raise UsageError("--prompt must contain at least one character")
    model, vocab = load_model(find_checkpoint(args.run, args.out))
    missing = vocab.missing(args.prompt)
    if missing:
        raise UsageError(
            f"prompt characters {missing!r} are not in the model's vocabulary {vocab.chars!r}"
        )
    sampler = Sampler(
        "cli", temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, n=args.n
    )
    prompt = vocab.encode(args.prompt)
    generator = torch.Generator().manual_seed(args.seed)
    if sampler.n > 1:
        tokens, _ = continue_text(model, prompt, args.length, sampler, generator=generator)
        return args.prompt + vocab.decode(tokens)

    def pieces() -> Iterator[str]:
        yield args.prompt
        for piece in stream(model, prompt, args.length, sampler, generator):
            yield vocab.decode(piece)

    return pieces()
