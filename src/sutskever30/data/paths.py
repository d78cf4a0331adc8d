"""Where datasets live (``S30_DATA_DIR``) and where derived files are cached (``S30_CACHE_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The read-only data directory: ``$S30_DATA_DIR``, default ``~/.cache/sutskever30``."""
    return Path(os.environ.get("S30_DATA_DIR") or Path.home() / ".cache" / "sutskever30")


def cache_dir() -> Path:
    """Derived files (decoded arrays, tokenized corpora): ``$S30_CACHE_DIR``, default
    ``~/.cache/sutskever30/cache``. Never inside the data directory's dataset folders."""
    path = Path(os.environ.get("S30_CACHE_DIR") or Path.home() / ".cache" / "sutskever30" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path
