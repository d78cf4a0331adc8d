"""The quick task: spoken digit strings built from real FSDD recordings, its splits and the
order in which training visits it.

An utterance concatenates 1..max_digits recordings drawn from a pool, separated (and
preceded and followed) by 30-150 ms of silence, with faint white noise (-60 dBFS) over the
whole waveform. Its transcript spells the digits as English words, e.g. "four one nine",
which the model emits character by character as Deep Speech 2 does for English.

Splits (:func:`speaker_split`): one speaker is held out entirely (the speaker-independent
test set); of the other five, repetitions 0-4 are FSDD's official test recordings,
repetitions 5-9 the validation set that learning rates are chosen on, and 10-49 the
training recordings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from sutskever30.data.fsdd import SAMPLE_RATE, TEST_INDICES, Recordings
from sutskever30.papers.deep_speech2.model import DS2Config, log_spectrogram

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BLANK = 0
ALPHABET = "_ 'abcdefghijklmnopqrstuvwxyz"  # index 0 is the CTC blank, as in DS2's 29 outputs
VAL_INDICES = range(5, 10)  # carved from the official training repetitions (5-49)


def encode(text: str) -> list[int]:
    return [ALPHABET.index(ch) for ch in text]


def decode(ids: list[int]) -> str:
    return "".join(ALPHABET[i] for i in ids)


@dataclass(frozen=True)
class SpeakerSplit:
    """Recording ids of each set when speaker ``held_out`` is left out."""

    held_out: int
    train: np.ndarray  # repetitions 10-49 of the other speakers
    val: np.ndarray  # repetitions 5-9 of the other speakers
    test_seen: np.ndarray  # repetitions 0-4 of the other speakers: the official test set
    test_unseen: np.ndarray  # every recording of the held-out speaker


def speaker_split(recs: Recordings, held_out: int) -> SpeakerSplit:
    if not 0 <= held_out < len(recs.speakers):
        raise ValueError(f"held_out must index one of {len(recs.speakers)} speakers")
    seen = recs.speaker != held_out
    test = np.isin(recs.index, TEST_INDICES)
    val = np.isin(recs.index, VAL_INDICES)
    return SpeakerSplit(
        held_out=held_out,
        train=np.flatnonzero(seen & ~test & ~val),
        val=np.flatnonzero(seen & val),
        test_seen=np.flatnonzero(seen & test),
        test_unseen=np.flatnonzero(~seen),
    )


def training_pool(recs: Recordings, train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The recordings of ``train`` whose repetition number is among the first ``fraction``
    of a seeded permutation of its repetition numbers: nested across fractions, every
    speaker and digit kept."""
    reps = np.random.default_rng(seed).permutation(np.unique(recs.index[train]))
    keep = reps[: max(1, math.ceil(fraction * len(reps) - 1e-9))]
    return train[np.isin(recs.index[train], keep)]


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
    return pad_sequence([torch.from_numpy(a) for a in audio], batch_first=True), lengths


def pad_targets(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) label ids padded with blanks, and (B,) target lengths."""
    ids = [torch.tensor(encode(t)) for t in texts]
    lengths = torch.tensor([len(i) for i in ids])
    return pad_sequence(ids, batch_first=True, padding_value=BLANK), lengths


class Featurized:
    """A fixed set of utterances as spectrograms and label ids, batched by indexing."""

    def __init__(self, audio: list[np.ndarray], texts: list[str], cfg: DS2Config):
        self.texts = texts
        self.specs: list[torch.Tensor] = []  # (T_i, F) each
        for start in range(0, len(audio), 64):
            wave, n = pad_audio(audio[start : start + 64])
            spec, frames = log_spectrogram(wave, n, n_fft=cfg.n_fft, hop=cfg.hop)
            self.specs += [s[:, :f].T for s, f in zip(spec, frames.tolist(), strict=True)]
        self.frames = torch.tensor([s.shape[0] for s in self.specs])
        self.targets, self.target_lengths = pad_targets(texts)  # (N, S), (N,)

    def __len__(self) -> int:
        return len(self.texts)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, F, T_max) zero-padded spectrograms, (B,) frame counts, (B, S) labels, (B,)
        label counts of utterances ``idx``."""
        spec = pad_sequence([self.specs[i] for i in idx.tolist()], batch_first=True)
        return spec.transpose(1, 2), self.frames[idx], self.targets[idx], self.target_lengths[idx]


def featurize(
    recs: Recordings,
    pool: np.ndarray,
    n: int,
    *,
    max_digits: int,
    rng: np.random.Generator,
    cfg: DS2Config,
) -> Featurized:
    return Featurized(*compose(recs, pool, n, max_digits=max_digits, rng=rng), cfg)


def epoch_batches(
    frames: torch.Tensor,
    batch_size: int,
    epoch: int,
    seed: int,
    *,
    sortagrad: bool,
    bucket: int,
) -> torch.Tensor:
    """The minibatches of one epoch in the order they are visited, (n // batch_size,
    batch_size) utterance ids; the remainder of an epoch is dropped.

    Epoch 0: the utterances sorted by length and cut into consecutive minibatches; SortaGrad
    visits them shortest first (Sec. 3.3), without it in a seeded random order. Later
    epochs (both): a seeded permutation cut into chunks of ``bucket`` minibatches, each
    chunk sorted by length before it is cut (so a minibatch pads little), the minibatches
    visited in a seeded random order.
    """
    n_batches = len(frames) // batch_size
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if epoch == 0:
        order = torch.argsort(frames, stable=True)[: n_batches * batch_size]
    else:
        perm = torch.randperm(len(frames), generator=gen)[: n_batches * batch_size]
        chunks = perm.split(bucket * batch_size)
        order = torch.cat([c[torch.argsort(frames[c], stable=True)] for c in chunks])
    batches = order.view(n_batches, batch_size)
    if epoch == 0 and sortagrad:
        return batches
    return batches[torch.randperm(n_batches, generator=gen)]
