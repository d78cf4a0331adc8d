"""Derived arrays cached once as ``.npz`` in the cache directory, written atomically."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sutskever30.data.paths import cache_dir

Arrays = dict[str, np.ndarray]


def cached_arrays(name: str, build: Callable[[], Arrays]) -> Arrays:
    """Load ``<cache>/<name>.npz``, or ``build()`` it and save it first. A corrupt cache file
    is rebuilt."""
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        try:
            with np.load(path) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)
    arrays = build()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return arrays
