"""``s30 sample zephyr --prompt "..." [--model teacher|dsft|ddpo|dpo_only]``: a chat answer
from the teacher (SmolLM2-135M-Instruct, the default: it needs no training run) or from one
of the students of the newest finished ``distill`` run (or ``--run <folder>``). The prompt
is the user's message, wrapped in the chat template; ``--length`` caps the answer's tokens;
``--n k`` draws k answers and prints the one the model finds most likely."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sutskever30.core.checkpoint import load_checkpoint
from sutskever30.core.errors import CheckpointError, UsageError
from sutskever30.nn.llama import Llama, generate, load_gguf
from sutskever30.nn.sampling import best_of

MODELS = ("teacher", "dsft", "ddpo", "dpo_only")
MAX_LENGTH = 2048  # answer tokens; the prompt and answer must fit the 8192-token context


def find_student(key: str, run_dir: Path | None, out: Path) -> tuple[Path, tuple[int, ...]]:
    """The checkpoint of student ``key`` (a finished seed's, the newest; or in ``run_dir``)
    and the teacher layers the student kept (from that run's config.json)."""
    base = run_dir if run_dir is not None else out / "zephyr"
    found = [
        p
        for p in base.glob(f"**/checkpoints/{key}.pt")
        if (p.parent.parent / "results.json").is_file()
    ]
    if not found:
        raise UsageError(
            f"no finished zephyr run with a {key} student under {base}; train one with "
            "`s30 run zephyr` (or pass --run <run folder>, or --model teacher)"
        )
    path = max(found, key=lambda p: (p.parent.parent / "results.json").stat().st_mtime)
    try:
        config = json.loads((path.parent.parent / "config.json").read_text())["config"]
        return path, tuple(int(i) for i in config["student_layers"])
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path.parent.parent}/config.json is unreadable ({err!r})") from None


def load_student(teacher: Llama, path: Path, layers: tuple[int, ...]) -> Llama:
    from sutskever30.papers.zephyr.model import student_from_teacher

    student = student_from_teacher(teacher, layers)
    try:
        student.load_state_dict(load_checkpoint(path)["model"])
    except (KeyError, TypeError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path} is not a zephyr student checkpoint ({first})") from None
    return student.eval()


def sample_command(args: argparse.Namespace) -> str:
    model_name = getattr(args, "model", None) or "teacher"
    if model_name not in MODELS:
        raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {model_name!r}")
    text = args.prompt.strip()
    if not text:
        raise UsageError('--prompt must hold a message, e.g. --prompt "Describe a sunny beach."')
    if args.length > MAX_LENGTH:
        raise UsageError(f"--length must be ≤ {MAX_LENGTH} tokens for zephyr, got {args.length}")
    model, tok = load_gguf()
    if model_name != "teacher":
        model = load_student(model, *find_student(model_name, args.run, args.out))
    prompt = tok.encode(tok.chat([{"role": "user", "content": text}]))
    gen = generate(
        model,
        [prompt] * args.n,
        max_new_tokens=args.length,
        stop_ids=tok.stop_ids(),
        pad_id=tok.pad_id,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=torch.Generator().manual_seed(args.seed),
    )
    tokens, _ = best_of(gen.tokens, [sum(lp) for lp in gen.log_probs])
    return tok.decode(tokens)
