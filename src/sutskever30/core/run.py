"""One run of one experiment: its folder, metric log, checkpoints, claims and results.

Every run writes ``<out>/<slug>/<experiment>/<preset>-<timestamp>/`` with ``config.json``,
``metrics.jsonl``, ``results.json``, ``summary.md`` and plots. A quick-preset run also
publishes results.json, summary.md and plots to ``results/<slug>/<experiment>/``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from sutskever30.core import distributed
from sutskever30.core.checkpoint import (
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from sutskever30.core.config import to_dict
from sutskever30.core.env import environment, machine_load, seed_everything
from sutskever30.core.errors import CheckpointError, UsageError
from sutskever30.core.results import aggregate_results, holds, parse_rule, summary_markdown

LOG_FLUSH_S = 1.0  # metrics records wait at most this long before they are written


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
    """A claim with its rule (see :mod:`sutskever30.core.results`), or a reported number
    (``rule`` None: shown beside the paper's, no verdict)."""

    id: str
    statement: str
    paper: str
    measured: dict[str, Any]
    rule: str | None

    def as_dict(self) -> dict[str, Any]:
        measured = _jsonable(self.measured)
        return {
            "id": self.id,
            "statement": self.statement,
            "paper": self.paper,
            "measured": measured,
            "rule": self.rule,
            "holds": None if self.rule is None else holds(self.rule, measured),
            "asserted": self.rule is not None,
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
    claims: list[Claim] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resumed: bool = False
    nets_total: int | None = None  # how many networks the experiment trains, if it says
    nets_started: int = 0
    _start: float = field(default_factory=time.time)
    _elapsed_before: float = 0.0
    _env: dict[str, Any] = field(default_factory=dict)  # taken when the run starts
    _pending: list[str] = field(default_factory=list)  # metrics records not yet written
    _flushed_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        # the code that runs is the code at the start: a commit made while it trains is not
        self._env = environment(self.device)

    # -- logging ---------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        """Append one record (a logged step of one model) to ``metrics.jsonl`` (rank 0).
        Records are written in batches, at most ``LOG_FLUSH_S`` apart, and always before a
        checkpoint, when ``fit`` ends and when the run finishes (:meth:`flush_metrics`): a
        record lost in a crash is after the last checkpoint, and ``--resume`` logs it again."""
        if not distributed.is_main():
            return
        self._pending.append(json.dumps(_jsonable(record)) + "\n")
        if time.monotonic() - self._flushed_at >= LOG_FLUSH_S:
            self.flush_metrics()

    def flush_metrics(self) -> None:
        """Write the records :meth:`log` holds to ``metrics.jsonl``."""
        if self._pending:
            with (self.dir / "metrics.jsonl").open("a") as fh:
                fh.write("".join(self._pending))
            self._pending.clear()
        self._flushed_at = time.monotonic()

    def truncate_metrics(self, key: str, last_step: int) -> None:
        """Drop records of ``key`` logged after ``last_step`` (the resumed checkpoint)."""
        self.flush_metrics()
        path = self.dir / "metrics.jsonl"
        if not distributed.is_main() or not path.exists():
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
        """A progress bar (none with ``-q``) for ``total`` units of long work."""
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
        self, id: str, statement: str, paper: str, measured: dict[str, Any], rule: str
    ) -> Claim:
        """Record a claim whose verdict is ``rule`` evaluated on ``measured``, e.g.
        ``"plain56_err > plain20_err + spread"`` (the rule language and how it is decided
        over several seeds: :mod:`sutskever30.core.results`)."""
        parse_rule(rule, list(measured))
        claim = Claim(id, statement, paper, dict(measured), rule)
        self.claims.append(claim)
        return claim

    def report(self, id: str, statement: str, paper: str, measured: dict[str, Any]) -> Claim:
        """Record a number shown beside the paper's with no verdict (e.g. a test error
        after a budget far shorter than the paper's)."""
        claim = Claim(id, statement, paper, dict(measured), None)
        self.claims.append(claim)
        return claim

    def plot_path(self, name: str) -> Path:
        """Where to save a plot; it is listed in results.json and published with it. Under
        torchrun the other ranks draw into a scratch folder of their own."""
        if name not in self.plots:
            self.plots.append(name)
        if not distributed.is_main():
            scratch = Path(tempfile.gettempdir()) / f"s30-rank{distributed.rank()}"
            scratch.mkdir(exist_ok=True)
            return scratch / name
        return self.dir / name

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self, key: str) -> Path:
        return self.dir / "checkpoints" / f"{key}.pt"

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Write the checkpoint of ``key`` (rank 0; every rank holds the same state)."""
        if not distributed.is_main():
            return
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
        """This seed's results (the schema of CONVENTIONS.md, one seed)."""
        return {
            "paper": self.slug,
            "experiment": self.experiment,
            "preset": self.preset,
            "seeds": [self.seed],
            "claims": [c.as_dict() for c in self.claims],
            "summary": _jsonable(self.summary),
            "plots": list(self.plots),
            "notes": list(self.notes),
            "runtime_s": round(self.elapsed(), 1),
            "load_avg": machine_load(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": _jsonable(to_dict(self.cfg)),
            "env": self._env,
        }

    def finish(self) -> dict[str, Any]:
        """Write this seed's results.json and summary.md (rank 0 only); return the results."""
        results = self.results()
        if distributed.is_main():
            self.flush_metrics()
            write_results(self.dir, results)
        return results


def write_results(folder: Path, results: dict[str, Any]) -> None:
    atomic_write_text(folder / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(folder / "summary.md", summary_markdown(results))


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


def _check_resumable(run_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to resume a run folder made with another seed list or config."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise CheckpointError(f"cannot resume {run_dir}: config.json missing or corrupt") from None
    keys = [k for k in ("seed", "seeds", "config") if k in record]
    mismatch = [k for k in keys if saved.get(k) != record[k]]
    if mismatch:
        raise UsageError(
            f"cannot resume {run_dir}: its {' and '.join(mismatch)} differ from this "
            "command's; rerun without --resume or with the same --seed(s)/--set"
        )


def _seed_run(
    run_dir: Path,
    *,
    slug: str,
    experiment: str,
    preset: str,
    cfg: Any,
    seed: int,
    device: torch.device,
    quiet: bool,
) -> Run:
    """Open the run of one seed in ``run_dir``: continue it if it has a config.json (its
    checkpoints then resume the training), else start it there."""
    record = {
        "paper": slug,
        "experiment": experiment,
        "preset": preset,
        "seed": seed,
        "config": _jsonable(to_dict(cfg)),
    }
    elapsed = 0.0
    resumed = (run_dir / "config.json").exists()
    if resumed:
        _check_resumable(run_dir, record)
        progress = run_dir / "progress.json"
        if progress.exists():
            elapsed = float(json.loads(progress.read_text()).get("elapsed_s", 0.0))
    elif distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        record = dict(record, env=environment(device))
        atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    seed_everything(seed)
    run = Run(
        slug=slug,
        experiment=experiment,
        preset=preset,
        cfg=cfg,
        seed=seed,
        device=device,
        dir=run_dir,
        quiet=quiet or not distributed.is_main(),
        resumed=resumed,
        _elapsed_before=elapsed,
    )
    _ACTIVE[:] = [run]
    return run


_ACTIVE: list[Run] = []


def interrupted_message() -> str:
    """What Ctrl-C leaves behind: which run folder, whether it has checkpoints, and the
    command that continues it."""
    if not _ACTIVE:
        return "interrupted before any run started; nothing was written"
    run = _ACTIVE[0]
    folder = run.dir.parent if run.dir.name.startswith("seed-") else run.dir
    kept = sorted(p.stem for p in (run.dir / "checkpoints").glob("*.pt"))
    if kept:
        return (
            f"interrupted; checkpoints of {', '.join(kept)} kept in {run.dir}; "
            f"`s30 run --resume {folder}` continues from them"
        )
    return (
        f"interrupted before the first checkpoint of seed {run.seed}: nothing to resume in "
        f"{run.dir}; `s30 run --resume {folder}` starts that seed again from step 0"
    )


def _run_dir(out: Path, slug: str, experiment: str, preset: str, resume: bool) -> Path:
    """The newest unfinished run folder (with ``resume``) or a new one; under torchrun,
    rank 0 decides and every rank gets the same folder."""
    found: Path | None = None
    if distributed.is_main():
        found = resumable_run_dir(out, slug, experiment, preset) if resume else None
        found = found or new_run_dir(out, slug, experiment, preset)
    return Path(distributed.broadcast(str(found) if found else ""))


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
) -> Run:
    """One seed's run in a new folder (or the newest unfinished one, with ``resume``)."""
    return _seed_run(
        _run_dir(out, slug, experiment, preset, resume),
        slug=slug,
        experiment=experiment,
        preset=preset,
        cfg=cfg,
        seed=seed,
        device=device,
        quiet=quiet,
    )


def _exit_with_parent(parent: int) -> None:
    """Worker initializer for seeds side by side: end this worker once the process that
    started it is gone (killed, say), instead of training on unseen as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_one_seed(
    seed_dir: Path,
    seed: int,
    threads: int | None,
    *,
    body: Callable[[Run, Any], None],
    quiet: bool = True,
    **where: Any,
) -> dict[str, Any]:
    """Train and measure one seed in ``seed_dir`` (continuing it if it was started); return
    its results. With ``threads`` it runs in a worker process of its own, torch and NumPy's
    BLAS both limited to that many threads (three 2-thread BLAS pools side by side on 2
    cores spin against one another: cs231n's NumPy steps ran ~40× slower)."""
    if threads is not None:
        torch.set_num_threads(threads)
        threadpool_limits(limits=threads)
    run = _seed_run(seed_dir, seed=seed, quiet=quiet, **where)
    if run.resumed:
        run.info(f"{run.slug}:{run.experiment} seed {seed}: resuming in {seed_dir}")
    body(run, where["cfg"])
    return run.finish()


def run_experiment(
    *,
    slug: str,
    experiment: str,
    preset: str,
    cfg: Any,
    body: Callable[[Run, Any], None],
    seeds: list[int],
    device: torch.device,
    out: Path,
    resume: bool = False,
    run_dir: Path | None = None,
    quiet: bool = False,
    publish_dir: Path | None = None,
    jobs: int = 1,
    announce: Callable[[str], None] = print,
) -> tuple[Path, dict[str, Any]]:
    """Run ``body(run, cfg)`` once per seed and write one results.json over all seeds.

    One seed runs in the run folder itself; several run in ``seed-<k>/`` subfolders and the
    folder gets the aggregate (:func:`sutskever30.core.results.aggregate_results`) with the
    first seed's plots. A finished seed is not run again on resume; an unfinished one
    continues from its checkpoints. ``run_dir`` names the folder to continue; otherwise
    ``resume`` picks the newest unfinished one. ``publish_dir`` gets a copy of the results.
    ``jobs`` > 1 runs that many seeds side by side in worker processes, the threads split
    between them (on 2 cores, two 1-thread seeds beat one 2-thread seed after another when
    the models are small: ``s30 bench`` and the READMEs say which).
    """
    if run_dir is None:
        run_dir = _run_dir(out, slug, experiment, preset, resume)
    record = {
        "paper": slug,
        "experiment": experiment,
        "preset": preset,
        "seeds": seeds,
        "config": _jsonable(to_dict(cfg)),
    }
    if len(seeds) > 1:
        if (run_dir / "config.json").exists():
            _check_resumable(run_dir, record)
        elif distributed.is_main():
            record = dict(record, env=environment(device))
            atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
    common = dict(
        slug=slug, experiment=experiment, preset=preset, cfg=cfg, body=body, device=device
    )
    todo, done = [], {}
    for k, seed in enumerate(seeds):
        seed_dir = run_dir if len(seeds) == 1 else run_dir / f"seed-{seed}"
        if len(seeds) > 1 and (seed_dir / "results.json").exists():
            done[seed] = json.loads((seed_dir / "results.json").read_text())
            announce(f"{slug}:{experiment} seed {seed} ({k + 1}/{len(seeds)}): done already")
        else:
            todo.append((k, seed, seed_dir))
    if jobs > 1 and len(todo) > 1:
        threads = max(1, torch.get_num_threads() // jobs)
        announce(
            f"{slug}:{experiment} [{preset}] seeds {[s for _, s, _ in todo]}: {jobs} side by "
            f"side, {threads} thread(s) each, in {run_dir}"
        )
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {
                pool.submit(_run_one_seed, seed_dir, seed, threads, **common): seed
                for _, seed, seed_dir in todo
            }
            start = time.time()
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                announce(f"{slug}:{experiment} seed {futures[future]}: finished")
            side_by_side_s = time.time() - start
    else:
        for k, seed, seed_dir in todo:
            announce(
                f"{slug}:{experiment} [{preset}] seed {seed} ({k + 1}/{len(seeds)}) in {seed_dir}"
            )
            done[seed] = _run_one_seed(seed_dir, seed, None, quiet=quiet, **common)
    per_seed = [done[seed] for seed in seeds]
    results = aggregate_results(per_seed)
    if jobs > 1 and len(todo) > 1:
        # wall-clock, not the sum: the seeds of this call ran side by side
        parallel = {seed for _, seed, _ in todo}
        earlier = sum(done[s]["runtime_s"] for s in seeds if s not in parallel)
        results["runtime_s"] = round(earlier + side_by_side_s, 1)
        results["jobs"] = jobs
    results["load_avg"] = machine_load()
    if distributed.is_main():
        if len(seeds) > 1:
            first = run_dir / f"seed-{seeds[0]}"
            for name in results["plots"]:
                if (first / name).exists():
                    shutil.copyfile(first / name, run_dir / name)
        write_results(run_dir, results)
        if publish_dir is not None:
            publish(run_dir, publish_dir / slug / experiment, results)
    return run_dir, results
