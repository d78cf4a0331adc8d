"""A real source-code corpus: the Python standard library's own ``.py`` files, present on
every machine that runs this package (``sysconfig.get_paths()["stdlib"]``; about 12 MB in
730 files for CPython 3.11, its test suite and installed packages left out). A user can put
their own ``.py`` files in ``<data>/python_source/`` instead.

Tokens are the UTF-8 bytes of the files (vocabulary 256, lossless, no tokenizer to fit),
files joined in path order, each followed by a NUL byte (``FILE_END``, which no source file
contains). Whole files are held out: a file goes to validation or test by a checksum of its
path relative to the root (5% each), so the split is fixed by the file names, not by their
order or count.
"""

from __future__ import annotations

import sysconfig
import zlib
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.registry import Dataset, register

FILE_END = 0  # the byte that ends every file
VOCAB_SIZE = 256
LEFT_OUT = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
HELD_OUT_PERCENT = 5  # per held-out split


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _locate(root: Path) -> Path | None:
    own = root / "python_source"
    if own.is_dir() and any(own.rglob("*.py")):
        return own
    stdlib = _stdlib()
    return stdlib if stdlib.is_dir() else None


def source_files(root: Path) -> list[Path]:
    """The corpus's files under ``root``, sorted: every ``.py`` outside test suites and
    installed packages."""
    files = [
        f
        for f in sorted(root.rglob("*.py"))
        if f.is_file() and not LEFT_OUT & set(f.relative_to(root).parts[:-1])
    ]
    if not files:
        raise DataCorruptError(f"{root}: no .py files outside test suites and packages")
    return files


def split_of(relative: str) -> str:
    """train, val or test for a file, by the CRC-32 of its relative path."""
    bucket = zlib.crc32(relative.encode()) % 100
    if bucket < HELD_OUT_PERCENT:
        return "val"
    return "test" if bucket < 2 * HELD_OUT_PERCENT else "train"


PYTHON_SOURCE = register(
    Dataset(
        name="python_source",
        description="the Python standard library's source, ~12 MB of .py files (bytes)",
        url=None,
        filename=None,
        md5=None,
        locate=_locate,
        hint="it is the running Python's standard library; or put .py files in "
        "<data>/python_source/",
        check=source_files,
    )
)


def load_python_source() -> dict[str, np.ndarray]:
    """{train, val, test}: uint8 token arrays (N,) of whole files, each ended by FILE_END."""
    root = PYTHON_SOURCE.require()
    files = source_files(root)

    def build() -> dict[str, np.ndarray]:
        parts: dict[str, list[bytes]] = {"train": [], "val": [], "test": []}
        for f in files:
            data = f.read_bytes()
            if bytes([FILE_END]) in data:
                continue  # not a text file after all
            parts[split_of(f.relative_to(root).as_posix())].append(data + bytes([FILE_END]))
        return {k: np.frombuffer(b"".join(v), dtype=np.uint8).copy() for k, v in parts.items()}

    return cached_arrays(f"python_source-{root.name}", build, sources=files)
