"""Words to ids and back for the translation papers (``bahdanau_attention``,
``transformer``), and their score: corpus BLEU (Papineni et al. 2002) through ``sacrebleu``
(Post 2018, "A Call for Clarity in Reporting BLEU Scores", arXiv:1804.08771).

Tokenization (:func:`tokenize`): Unicode NFC, optionally lowercased, then split into words
and single punctuation marks. A word is a run of letters and digits, with inner hyphens and
apostrophes kept ("t-shirt", "l'homme", "man's" are one token); every other non-space
character is a token of its own ("young," → "young", ","). :func:`detokenize` joins tokens
with spaces and removes the space before closing punctuation and after opening brackets:
the inverse of :func:`tokenize` up to case and spacing, which BLEU's own tokenizer ignores.

The vocabulary (:class:`Vocab`) is built from the training split only (the words of the
validation and test sentences it has not seen become ``<unk>``), keeps the words seen at
least ``min_freq`` times, most frequent first, and starts with four special tokens:
``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3. It saves to JSON, so a checkpoint can
carry it (:meth:`Vocab.to_dict` is plain lists and strings).

BLEU scores detokenized hypotheses against the raw reference sentences, with sacrebleu's
defaults (13a tokenization, exponential smoothing); a vocabulary that lowercases is scored
case-insensitively (``lowercase=True``), and the report says so.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sacrebleu
import torch

from sutskever30.core.checkpoint import atomic_write_text
from sutskever30.core.errors import DataCorruptError
from sutskever30.data.multi30k import load_multi30k

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*|\S")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def tokenize(sentence: str, *, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks of ``sentence`` (see the module docstring)."""
    text = unicodedata.normalize("NFC", sentence)
    return _TOKEN.findall(text.lower() if lowercase else text)


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens joined by spaces, without the space before closing punctuation or after an
    opening bracket."""
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))


class Vocab:
    """Token ↔ id; ids 0–3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``."""

    pad_id, bos_id, eos_id, unk_id = range(4)

    def __init__(self, tokens: Sequence[str], *, lowercase: bool = True) -> None:
        if tuple(tokens[:4]) != SPECIALS or len(set(tokens)) != len(tokens):
            raise ValueError(f"a vocabulary starts with {SPECIALS} and has no duplicates")
        self.itos = list(tokens)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        self.lowercase = lowercase

    @classmethod
    def build(cls, sentences: Iterable[str], *, min_freq: int = 2, lowercase: bool = True) -> Vocab:
        """The tokens of ``sentences`` seen at least ``min_freq`` times, by decreasing count
        (ties alphabetical), after the four special tokens."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be ≥ 1, got {min_freq}")
        counts = Counter(t for s in sentences for t in tokenize(s, lowercase=lowercase))
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq and w not in SPECIALS),
            key=lambda w: (-counts[w], w),
        )
        return cls([*SPECIALS, *words], lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, sentence: str, *, bos: bool = False, eos: bool = True) -> list[int]:
        """Token ids of ``sentence``, unknown words as ``<unk>``, with ``<bos>`` in front
        and ``<eos>`` at the end as asked."""
        ids = [self.stoi.get(t, self.unk_id) for t in tokenize(sentence, lowercase=self.lowercase)]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """The detokenized sentence of ``ids``: stops at the first ``<eos>``, skips
        ``<pad>`` and ``<bos>``, writes unknown words as ``<unk>``."""
        tokens = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                tokens.append(self.itos[i])
        return detokenize(tokens)

    def encode_batch(
        self,
        sentences: Sequence[str],
        *,
        bos: bool = False,
        eos: bool = True,
        max_len: int | None = None,
    ) -> torch.Tensor:
        """(B, T) long tensor of :meth:`encode`, padded with ``<pad>`` to the longest
        sentence; ``max_len`` cuts longer ones (their ``<eos>`` is lost)."""
        rows = [self.encode(s, bos=bos, eos=eos)[:max_len] for s in sentences]
        out = torch.full((len(rows), max(map(len, rows), default=0)), self.pad_id)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "tokens": list(self.itos)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        return cls(data["tokens"], lowercase=data["lowercase"])

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataCorruptError(f"cannot read a vocabulary from {path}: {err}") from None


def multi30k_vocab(language: str, *, min_freq: int = 2, lowercase: bool = True) -> Vocab:
    """The vocabulary of one Multi30k language, built from the training split only."""
    return Vocab.build(load_multi30k("train")[language], min_freq=min_freq, lowercase=lowercase)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], *, lowercase: bool) -> float:
    """Corpus BLEU (0–100) of detokenized ``hypotheses`` against one raw reference each,
    by ``sacrebleu.corpus_bleu`` with its defaults; ``lowercase`` ignores case."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=lowercase).score
