"""Derived arrays cached as ``.npz`` in the cache directory, keyed by their sources' content.

A cache file is ``<cache>/<name>.<fingerprint>.npz``: the fingerprint covers the files it
was built from (path, size and modification time of each), so a changed, replaced, emptied
or moved source rebuilds the arrays instead of training on the old ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.paths import cache_dir

Arrays = dict[str, np.ndarray]


def fingerprint(sources: Iterable[Path]) -> str:
    """16 hex digits that change when any source changes: for a file, its resolved path,
    size and mtime_ns; for a folder, its resolved path and the sorted (relative path, size,
    mtime_ns) of every file below it (symbolic links followed)."""
    digest = hashlib.sha256()
    for source in sources:
        if not source.exists():
            raise DataMissingError(f"{source} does not exist")
        digest.update(f"{source.resolve()}\n".encode())
        try:
            files = sorted(_tree(source)) if source.is_dir() else [("", source.stat())]
        except OSError as err:  # a dangling link, a file deleted while listing
            raise DataCorruptError(f"cannot read {source}: {err}") from None
        for rel, st in files:
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _tree(folder: Path | str, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, stat) of every file below ``folder``; os.scandir, as a 50,000-file
    image tree is stat'ed on every load."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                yield from _tree(entry.path, f"{prefix}{entry.name}/")
            else:
                yield f"{prefix}{entry.name}", entry.stat()


def _cached(name: str, suffix: str, build, *, sources, save, load, salt: str = ""):
    """Load ``<cache>/<name>.<fingerprint of sources and salt><suffix>``, or ``build()`` it
    and save it first (written to a temporary file, then renamed). Cache files of ``name``
    with another fingerprint are deleted; an unreadable cache file is rebuilt."""
    folder = cache_dir()
    key = fingerprint(sources)
    if salt:
        key = hashlib.sha256(f"{key}\n{salt}".encode()).hexdigest()[:16]
    path = folder / f"{name}.{key}{suffix}"
    own = re.compile(rf"{re.escape(name)}(\.[0-9a-f]{{16}})?{re.escape(suffix)}")
    for stale in folder.iterdir():
        if stale != path and own.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)
    value = build()
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(fd)
    try:
        save(tmp, value)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return value


def cached_arrays(name: str, build: Callable[[], Arrays], *, sources: Iterable[Path]) -> Arrays:
    """Load ``<cache>/<name>.<fingerprint of sources>.npz``, or ``build()`` it and save it
    first. ``sources`` are the files or folders ``build`` reads."""

    def load(path: Path) -> Arrays:
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}

    def save(tmp: str, arrays: Arrays) -> None:
        np.savez(tmp, **arrays)

    return _cached(name, ".npz", build, sources=sources, save=save, load=load)


def cached_json(name: str, build: Callable[[], object], *, sources: Iterable[Path], salt: str = ""):
    """As :func:`cached_arrays`, for a JSON value (``<cache>/<name>.<fingerprint>.json``).
    ``salt`` joins the fingerprint: what else the value depends on (a format version, the
    inputs' own digest)."""

    def save(tmp: str, value: object) -> None:
        Path(tmp).write_text(json.dumps(value))

    return _cached(
        name,
        ".json",
        build,
        sources=sources,
        save=save,
        load=lambda p: json.loads(p.read_text()),
        salt=salt,
    )
