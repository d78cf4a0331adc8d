"""Zephyr's data, built from real text: instructions made from Multi30k's English captions,
the teacher's (SmolLM2-135M-Instruct) responses to them, cached.

Prompt sets are disjoint: dSFT prompts and preference prompts are two halves of a shuffled
slice of the training captions (as Zephyr's UltraChat and UltraFeedback are two datasets),
validation prompts come from the validation captions and test prompts from the 2016 test
captions (other images). The teacher answers each dSFT prompt once and each preference
prompt ``k`` times, sampled; it also answers every test prompt greedily (the teacher row of
the win-rate table). Generations depend only on these settings, not on the run's seed, and
are cached under ``S30_CACHE_DIR`` keyed by them and by the GGUF and Multi30k files.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import random
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sutskever30.data import get_dataset
from sutskever30.data.cache import cached_arrays
from sutskever30.data.multi30k import read_lines
from sutskever30.nn.llama import Llama, LlamaTokenizer, find_gguf, generate

INSTRUCTION = "Write one sentence about this scene: {caption}"
GEN_BATCH = 64  # rows decoded side by side by the teacher


@dataclass(frozen=True)
class DataConfig:
    n_sft: int = 512  # dSFT prompts, one teacher response each
    n_pref: int = 256  # preference prompts, k teacher completions each
    n_val: int = 64
    n_test: int = 128
    k: int = 4  # completions per preference prompt (UltraFeedback: 4)
    temperature: float = 0.7  # the teacher's sampling temperature
    max_new_tokens: int = 40  # per response (a stop token included)
    seed: int = 0  # the prompts' shuffle and the teacher's sampling, not the run's seed

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class TeacherData:
    """Token ids: prompts (chat-formatted, ending in the assistant's turn marker) and the
    teacher's responses (each ending in its stop token unless cut at max_new_tokens)."""

    sft_prompts: list[list[int]]
    sft_responses: list[list[int]]
    pref_prompts: list[list[int]]
    pref_completions: list[list[list[int]]]  # (n_pref, k)
    val_prompts: list[list[int]]
    test_prompts: list[list[int]]
    test_teacher: list[list[int]]  # the teacher's greedy responses to the test prompts
    pad_id: int


def captions(split: str, n: int, seed: int) -> list[str]:
    """``n`` distinct English captions of a Multi30k split, in a seeded random order."""
    folder = get_dataset("multi30k").require()
    lines = list(dict.fromkeys(line.strip() for line in read_lines(folder, split, "en")))
    random.Random(seed).shuffle(lines)
    if n > len(lines):
        raise ValueError(f"{split} has {len(lines)} distinct captions, {n} asked")
    return lines[:n]


def chat_prompt(tok: LlamaTokenizer, caption: str) -> list[int]:
    content = INSTRUCTION.format(caption=caption.rstrip("."))
    return tok.encode(tok.chat([{"role": "user", "content": content}]))


def bf16_context(enabled: bool):
    """bfloat16 autocast on CPU (AMX: ~5× fp32 matmul speed) or nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def decode_all(
    model: Llama,
    tok: LlamaTokenizer,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    bf16: bool = True,
    batch: int = GEN_BATCH,
) -> list[list[int]]:
    """Responses to every prompt, decoded in batches of similar length (less padding);
    returned in the prompts' order."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    with bf16_context(bf16):
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            gen = generate(
                model,
                [prompts[i] for i in rows],
                max_new_tokens=max_new_tokens,
                stop_ids=tok.stop_ids(),
                pad_id=tok.pad_id,
                temperature=temperature,
                generator=generator,
            )
            for i, tokens in zip(rows, gen.tokens, strict=True):
                out[i] = tokens
    return out


def _flat(rows: list[list[int]]) -> dict[str, np.ndarray]:
    return {
        "ids": np.array([t for r in rows for t in r], dtype=np.int64),
        "len": np.array([len(r) for r in rows], dtype=np.int64),
    }


def _rows(ids: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    ends = np.cumsum(lengths)
    return [ids[e - n : e].tolist() for e, n in zip(ends, lengths, strict=True)]


FIELDS = (
    "sft_prompts",
    "sft_responses",
    "pref_prompts",
    "pref_completions",
    "val_prompts",
    "test_prompts",
    "test_teacher",
)


def teacher_data(
    teacher: Llama, tok: LlamaTokenizer, cfg: DataConfig, *, bf16: bool = True
) -> TeacherData:
    """The prompts and the teacher's responses (cached: the first call decodes them)."""

    def build() -> dict[str, np.ndarray]:
        train = captions("train", cfg.n_sft + cfg.n_pref, cfg.seed)
        sft = [chat_prompt(tok, c) for c in train[: cfg.n_sft]]
        pref = [chat_prompt(tok, c) for c in train[cfg.n_sft :]]
        val = [chat_prompt(tok, c) for c in captions("val", cfg.n_val, cfg.seed)]
        test = [chat_prompt(tok, c) for c in captions("test_2016_flickr", cfg.n_test, cfg.seed)]
        gen = torch.Generator().manual_seed(cfg.seed)
        # a bf16 copy: autocast would cast every weight again at every decoding step
        fast = copy.deepcopy(teacher).to(torch.bfloat16) if bf16 else teacher
        kw = dict(max_new_tokens=cfg.max_new_tokens, bf16=False)
        sampled = dict(kw, temperature=cfg.temperature, generator=gen)
        sft_out = decode_all(fast, tok, sft, **sampled)
        pref_out = decode_all(fast, tok, [p for p in pref for _ in range(cfg.k)], **sampled)
        test_out = decode_all(fast, tok, test, **kw)
        arrays = {}
        for name, rows in {
            "sft_prompts": sft,
            "sft_responses": sft_out,
            "pref_prompts": pref,
            "pref_completions": pref_out,
            "val_prompts": val,
            "test_prompts": test,
            "test_teacher": test_out,
        }.items():
            flat = _flat(rows)
            arrays[f"{name}.ids"], arrays[f"{name}.len"] = flat["ids"], flat["len"]
        return arrays

    folder = get_dataset("multi30k").require()
    arrays = cached_arrays(
        f"zephyr-teacher-{cfg.key()}", build, sources=[find_gguf(), folder / "train.en.gz"]
    )
    rows = {name: _rows(arrays[f"{name}.ids"], arrays[f"{name}.len"]) for name in FIELDS}
    completions = rows["pref_completions"]
    rows["pref_completions"] = [
        completions[i : i + cfg.k] for i in range(0, len(completions), cfg.k)
    ]
    return TeacherData(**rows, pad_id=tok.pad_id)
