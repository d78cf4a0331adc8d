"""The quick task: spoken digit strings built from real FSDD recordings.

An utterance concatenates 1..max_digits recordings drawn from a pool, separated (and
preceded and followed) by 30-150 ms of silence, with faint white noise (-60 dBFS) over the
whole waveform. Its transcript spells the digits as English words, e.g. "four one nine",
which the model emits character by character as Deep Speech 2 does for English.
"""

from __future__ import annotations

import numpy as np
import torch

from sutskever30.data.fsdd import SAMPLE_RATE, Recordings

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BLANK = 0
ALPHABET = "_ 'abcdefghijklmnopqrstuvwxyz"  # index 0 is the CTC blank, as in DS2's 29 outputs


def encode(text: str) -> list[int]:
    return [ALPHABET.index(ch) for ch in text]


def decode(ids: list[int]) -> str:
    return "".join(ALPHABET[i] for i in ids)


def compose(
    recs: Recordings,
    pool: np.ndarray,
    n: int,
    *,
    max_digits: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[str]]:
    """``n`` utterances (waveforms, transcripts) from recordings ``pool``."""
    audio, texts = [], []
    for _ in range(n):
        ids = rng.choice(pool, size=rng.integers(1, max_digits + 1))
        parts = []
        for i in ids:
            parts.append(np.zeros(int(rng.integers(30, 151)) * SAMPLE_RATE // 1000, np.float32))
            parts.append(recs.clip(int(i)))
        parts.append(np.zeros(int(rng.integers(30, 151)) * SAMPLE_RATE // 1000, np.float32))
        wave = np.concatenate(parts)
        wave = wave + rng.normal(0.0, 1e-3, size=wave.shape).astype(np.float32)
        audio.append(wave)
        texts.append(" ".join(DIGIT_WORDS[recs.digit[i]] for i in ids))
    return audio, texts


def pad_audio(audio: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) zero-padded waveforms and (B,) lengths."""
    lengths = torch.tensor([len(a) for a in audio])
    out = torch.zeros(len(audio), int(lengths.max()))
    for row, a in zip(out, audio, strict=True):
        row[: len(a)] = torch.from_numpy(a)
    return out, lengths


def pad_targets(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) label ids padded with blanks, and (B,) target lengths."""
    ids = [encode(t) for t in texts]
    lengths = torch.tensor([len(i) for i in ids])
    out = torch.full((len(ids), int(lengths.max())), BLANK, dtype=torch.long)
    for row, i in zip(out, ids, strict=True):
        row[: len(i)] = torch.tensor(i)
    return out, lengths
