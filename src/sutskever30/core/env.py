"""Seeding, device selection and the environment recorded with every run."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from sutskever30 import __version__
from sutskever30.core.errors import UsageError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but no CUDA device is available; use cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {name!r}; choose from: auto, cpu, cuda")
    return torch.device(name)


def git_commit(cwd: Path | None = None) -> str:
    """The short commit of the checkout this package is imported from ("unknown" for an
    installed copy outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine_load() -> list[float]:
    """The 1-, 5- and 15-minute load averages (runnable processes, this run's own included;
    empty where the platform has none): a runtime measured beside other jobs says so."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def environment(device: torch.device) -> dict[str, str | int]:
    return {
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "device": device.type,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count() or 1,
        "platform": sys.platform,
        "commit": git_commit(),
        "sutskever30": __version__,
    }
