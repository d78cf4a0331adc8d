"""One run of one experiment: its folder, metric log, checkpoints, claims and results.

Every run writes ``<out>/<slug>/<experiment>/<preset>-<timestamp>/`` with ``config.json``,
``metrics.jsonl``, ``results.json``, ``summary.md`` and plots. A quick-preset run also
publishes results.json, summary.md and plots to ``results/<slug>/<experiment>/``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sutskever30.core.checkpoint import (
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from sutskever30.core.config import to_dict
from sutskever30.core.env import environment, seed_everything
from sutskever30.core.errors import CheckpointError, UsageError


def _jsonable(value: Any) -> Any:
    """Numbers from numpy/torch as plain Python; non-finite floats as strings JSON can hold."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass
class Claim:
    id: str
    statement: str
    paper: str
    measured: dict[str, Any]
    holds: bool | None
    asserted: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "paper": self.paper,
            "measured": _jsonable(self.measured),
            "holds": self.holds,
            "asserted": self.asserted,
        }


@dataclass
class Run:
    """The context an experiment's ``run(run, cfg)`` function works in."""

    slug: str
    experiment: str
    preset: str
    cfg: Any
    seed: int
    device: torch.device
    dir: Path
    quiet: bool = False
    publish_dir: Path | None = None
    claims: list[Claim] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resumed: bool = False
    _start: float = field(default_factory=time.time)
    _elapsed_before: float = 0.0

    # -- logging ---------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        """Append one record (a logged step of one model) to ``metrics.jsonl``."""
        with (self.dir / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(_jsonable(record)) + "\n")

    def truncate_metrics(self, key: str, last_step: int) -> None:
        """Drop records of ``key`` logged after ``last_step`` (the resumed checkpoint)."""
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("key") == key and rec.get("step", -1) > last_step:
                continue
            kept.append(line)
        atomic_write_text(path, "".join(k + "\n" for k in kept))

    def progress(self, total: int, desc: str, initial: int = 0) -> tqdm:
        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=self.quiet,
            dynamic_ncols=True,
            leave=False,
        )

    def info(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message)

    # -- claims, summary, plots ------------------------------------------------------------
    def claim(
        self,
        id: str,
        statement: str,
        paper: str,
        measured: dict[str, Any],
        holds: Any,
        *,
        asserted: bool = True,
    ) -> Claim:
        """Record a claim; ``holds`` must be computed from ``measured`` by the caller.

        ``asserted=False`` marks a reported-only comparison (shown, not counted as a verdict).
        """
        claim = Claim(id, statement, paper, dict(measured), bool(holds), asserted)
        self.claims.append(claim)
        return claim

    def report(self, id: str, statement: str, paper: str, measured: dict[str, Any]) -> Claim:
        """Record a number shown beside the paper's with no verdict (e.g. a test error
        after a budget far shorter than the paper's)."""
        claim = Claim(id, statement, paper, dict(measured), None, asserted=False)
        self.claims.append(claim)
        return claim

    def plot_path(self, name: str) -> Path:
        """Where to save a plot; it is listed in results.json and published with it."""
        if name not in self.plots:
            self.plots.append(name)
        return self.dir / name

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self, key: str) -> Path:
        return self.dir / "checkpoints" / f"{key}.pt"

    def save(self, key: str, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path(key), state)
        atomic_write_text(
            self.dir / "progress.json", json.dumps({"elapsed_s": self.elapsed()}, indent=1)
        )

    def load(self, key: str) -> dict[str, Any] | None:
        """The checkpoint saved under ``key`` in this run folder, or None if there is none."""
        path = self.checkpoint_path(key)
        if not path.exists():
            return None
        return load_checkpoint(path)

    def elapsed(self) -> float:
        return self._elapsed_before + time.time() - self._start

    # -- results ---------------------------------------------------------------------------
    def results(self) -> dict[str, Any]:
        return {
            "paper": self.slug,
            "experiment": self.experiment,
            "preset": self.preset,
            "seeds": self.seeds or [self.seed],
            "claims": [c.as_dict() for c in self.claims],
            "summary": _jsonable(self.summary),
            "plots": list(self.plots),
            "notes": list(self.notes),
            "runtime_s": round(self.elapsed(), 1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": _jsonable(to_dict(self.cfg)),
            "env": environment(self.device),
        }

    def finish(self) -> dict[str, Any]:
        """Write results.json and summary.md; publish them (and the plots) if asked."""
        results = self.results()
        atomic_write_text(self.dir / "results.json", json.dumps(results, indent=2) + "\n")
        atomic_write_text(self.dir / "summary.md", summary_markdown(results))
        if self.publish_dir is not None:
            publish(self.dir, self.publish_dir / self.slug / self.experiment, results)
        return results


def summary_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# {results['paper']}:{results['experiment']} ({results['preset']})",
        "",
        f"Runtime {results['runtime_s']:.0f} s on {results['env']['device']}, "
        f"torch {results['env']['torch']}, seeds {results['seeds']}, "
        f"commit {results['env']['commit']}.",
        "",
        "| claim | paper | measured | holds |",
        "|---|---|---|---|",
    ]
    for c in results["claims"]:
        measured = ", ".join(f"{k}={_fmt(v)}" for k, v in c["measured"].items())
        verdict = ("yes" if c["holds"] else "**no**") if c["asserted"] else "reported"
        lines.append(f"| {c['statement']} | {c['paper']} | {measured} | {verdict} |")
    for note in results.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 6:
        return "[" + ", ".join(_fmt(x) for x in v[:3]) + ", …]"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def publish(run_dir: Path, dest: Path, results: dict[str, Any]) -> None:
    """Copy a finished run's results.json, summary.md and plots to ``dest`` (replacing it)."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.png"):
        if old.name not in results["plots"]:
            old.unlink()
    for name in results["plots"]:
        src = run_dir / name
        if src.exists():
            tmp = dest / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            tmp.replace(dest / name)
    atomic_write_text(dest / "summary.md", (run_dir / "summary.md").read_text())
    atomic_write_text(dest / "results.json", (run_dir / "results.json").read_text())


def new_run_dir(out: Path, slug: str, experiment: str, preset: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = out / slug / experiment
    path = base / f"{preset}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{preset}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def resumable_run_dir(out: Path, slug: str, experiment: str, preset: str) -> Path | None:
    """The newest unfinished run folder of this experiment and preset, if any."""
    base = out / slug / experiment
    if not base.is_dir():
        return None
    candidates = sorted(
        (p for p in base.glob(f"{preset}-*") if p.is_dir() and not (p / "results.json").exists()),
        key=lambda p: p.stat().st_mtime,
    )
    return candidates[-1] if candidates else None


def open_run(
    *,
    slug: str,
    experiment: str,
    preset: str,
    cfg: Any,
    seed: int,
    device: torch.device,
    out: Path,
    resume: bool,
    quiet: bool,
    publish_dir: Path | None,
) -> Run:
    """Create a run folder (or reopen the newest unfinished one with ``resume``)."""
    config_record = {
        "paper": slug,
        "experiment": experiment,
        "preset": preset,
        "seed": seed,
        "config": _jsonable(to_dict(cfg)),
    }
    run_dir = resumable_run_dir(out, slug, experiment, preset) if resume else None
    resumed = run_dir is not None
    elapsed = 0.0
    if run_dir is not None:
        try:
            saved = json.loads((run_dir / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            raise CheckpointError(
                f"cannot resume {run_dir}: config.json missing or corrupt"
            ) from None
        mismatch = [k for k in ("seed", "config") if saved.get(k) != config_record[k]]
        if mismatch:
            raise UsageError(
                f"cannot resume {run_dir}: its {' and '.join(mismatch)} differ from this "
                "command's; rerun without --resume or with the same --seed/--set"
            )
        progress = run_dir / "progress.json"
        if progress.exists():
            elapsed = float(json.loads(progress.read_text()).get("elapsed_s", 0.0))
    else:
        run_dir = new_run_dir(out, slug, experiment, preset)
        record = dict(config_record, env=environment(device))
        atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    seed_everything(seed)
    return Run(
        slug=slug,
        experiment=experiment,
        preset=preset,
        cfg=cfg,
        seed=seed,
        device=device,
        dir=run_dir,
        quiet=quiet,
        publish_dir=publish_dir,
        resumed=resumed,
        _elapsed_before=elapsed,
    )
