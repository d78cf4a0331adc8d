"""Checkpoints written atomically (temp file + rename) and read with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from sutskever30.core.errors import CheckpointError, UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readable(tmp: str) -> None:
    """mkstemp creates files 0600; give them the mode a plain ``open`` would (the umask's)."""
    os.chmod(tmp, 0o666 & ~_umask())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save a dict of tensors, numbers, strings, lists and dicts atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        _readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint`; a corrupt file is a CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None


def finished_run_checkpoint(slug: str, name: str, run_dir: Path | None, out: Path) -> Path:
    """The checkpoint ``name`` that ``s30 sample <slug>`` reads: ``run_dir/name`` (or
    ``run_dir`` itself if it is a file) when a run folder is given, else the newest one
    under ``out/<slug>`` whose run (or seed) finished, i.e. wrote its results.json. A missing
    one is a UsageError that says how to train one."""
    if run_dir is not None:
        path = run_dir / name if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise UsageError(f"no {slug} checkpoint at {path}")
        return path
    finished = [p for p in (out / slug).glob(f"**/{name}") if (p.parent / "results.json").is_file()]
    if not finished:
        raise UsageError(
            f"no finished {slug} run with a checkpoint under {out / slug}; train one with "
            f"`s30 run {slug}` or pass --run <run folder>"
        )
    return max(finished, key=lambda p: (p.parent / "results.json").stat().st_mtime)
