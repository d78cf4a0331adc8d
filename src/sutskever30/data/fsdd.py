"""Free Spoken Digit Dataset (Jackson et al.): 3,000 real recordings of the digits 0-9,
6 speakers x 10 digits x 50 repetitions, mono 8 kHz 16-bit WAV.

Files are ``recordings/{digit}_{speaker}_{index}.wav``; the official split puts index 0-4
in the test set and 5-49 in the training set. The WAV files are decoded with the standard
library's ``wave`` module once into ``<cache>/fsdd-recordings.<fingerprint>.npz``.
"""

from __future__ import annotations

import re
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.download import download
from sutskever30.data.paths import data_dir
from sutskever30.data.registry import Dataset, register

SAMPLE_RATE = 8000
ARCHIVE_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
)
ARCHIVE = "free-spoken-digit-dataset-master.zip"
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
TEST_INDICES = range(5)  # the official split: repetitions 0-4 are the test set


def _locate(root: Path) -> Path | None:
    for folder in (
        root / "fsdd" / "recordings",
        root / "free-spoken-digit-dataset-master" / "recordings",
        root / "free-spoken-digit-dataset" / "recordings",
    ):
        if folder.is_dir() and any(folder.glob("*.wav")):
            return folder
    return None


def fetch_archive(url: str) -> Path:
    """Download the GitHub archive from ``url`` into the data directory and extract it."""
    root = data_dir()
    archive = download(url, root / ARCHIVE, None)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataCorruptError(f"cannot extract {archive}: {err}") from None
    found = _locate(root)
    if found is None:
        raise DataCorruptError(f"{archive} holds no recordings/*.wav folder")
    return found


FSDD = register(
    Dataset(
        name="fsdd",
        description="Free Spoken Digit Dataset: 3,000 mono 8 kHz recordings, 6 speakers",
        url=ARCHIVE_URL,
        filename=ARCHIVE,
        md5=None,  # a branch archive: GitHub does not promise stable bytes
        locate=_locate,
        hint="run `s30 data fetch fsdd` (or put the recordings/ folder in <data>/fsdd/)",
        fetcher=fetch_archive,
    )
)


def read_wav(path: Path) -> np.ndarray:
    """A mono 16-bit PCM WAV file at 8 kHz as float32 samples in [-1, 1)."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, OSError) as err:
        reason = str(err).strip() or f"{type(err).__name__} (truncated or not a WAV file)"
        raise DataCorruptError(f"cannot read {path}: {reason}") from None
    if (channels, width, rate) != (1, 2, SAMPLE_RATE):
        raise DataCorruptError(
            f"{path}: {channels} channel(s), {8 * width}-bit, {rate} Hz; "
            f"expected mono 16-bit {SAMPLE_RATE} Hz"
        )
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def read_recordings(folder: Path) -> dict[str, np.ndarray]:
    """All recordings concatenated: ``audio`` float32, ``offsets`` (N+1,), and per
    recording ``digit``, ``speaker`` (index into sorted speaker names), ``index``."""
    entries = []
    for path in sorted(folder.glob("*.wav")):
        match = NAME.match(path.name)
        if match is None:
            raise DataCorruptError(f"{path}: not named {{digit}}_{{speaker}}_{{index}}.wav")
        entries.append((int(match[1]), match[2], int(match[3]), path))
    if not entries:
        raise DataCorruptError(f"{folder} holds no .wav recordings")
    speakers = sorted({e[1] for e in entries})
    clips = [read_wav(e[3]) for e in entries]
    return {
        "audio": np.concatenate(clips),
        "offsets": np.cumsum([0] + [len(c) for c in clips]).astype(np.int64),
        "digit": np.array([e[0] for e in entries], dtype=np.int64),
        "speaker": np.array([speakers.index(e[1]) for e in entries], dtype=np.int64),
        "index": np.array([e[2] for e in entries], dtype=np.int64),
        "speakers": np.array(speakers),
    }


@dataclass(frozen=True)
class Recordings:
    """Decoded FSDD recordings; ``clip(i)`` is recording ``i``'s waveform."""

    audio: np.ndarray  # (total samples,) float32
    offsets: np.ndarray  # (N + 1,)
    digit: np.ndarray  # (N,)
    speaker: np.ndarray  # (N,)
    index: np.ndarray  # (N,) repetition number 0-49
    speakers: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.digit)

    def clip(self, i: int) -> np.ndarray:
        return self.audio[self.offsets[i] : self.offsets[i + 1]]

    def split(self, name: str) -> np.ndarray:
        """Recording ids of the official ``train`` (index 5-49) or ``test`` (0-4) split."""
        if name not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {name!r}")
        is_test = np.isin(self.index, TEST_INDICES)
        return np.flatnonzero(is_test if name == "test" else ~is_test)


def load_fsdd() -> Recordings:
    folder = FSDD.require()
    arrays = cached_arrays("fsdd-recordings", lambda: read_recordings(folder), sources=[folder])
    return Recordings(
        audio=arrays["audio"],
        offsets=arrays["offsets"],
        digit=arrays["digit"],
        speaker=arrays["speaker"],
        index=arrays["index"],
        speakers=tuple(str(s) for s in arrays["speakers"]),
    )
