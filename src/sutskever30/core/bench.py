"""``s30 bench``: the framework tax of :func:`~sutskever30.core.train.fit`, and how close each
model's training step comes to the machine's matmul peak.

A paper's ``bench(run)`` returns :class:`BenchCase` objects: a model, its optimizer and the
paper's own ``step(i)`` (the same function its experiment hands to ``fit``: same batch and
data path). Each case trains in blocks of a few seconds through ``fit`` (progress bar,
metric logging, the final checkpoint), and every call of ``step`` inside ``fit`` is timed
as well: those calls are exactly the body of a bare hand-written ``for i: step(i)`` loop.
The tax is a block's wall time over its steps' time, the median over blocks (the bar is
≤ 1.05). After each fit block a real bare loop runs over the same batches, its time
reported beside. The step's floating-point operations are counted once with
``torch.utils.flop_counter`` and divided by the step time and by the measured fp32 matmul
rate of this machine.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from sutskever30.core.train import fit

TAX_BAR = 1.05
MIN_BLOCK_S = 2.0  # seconds per timed block, at least


@dataclass
class BenchCase:
    """One model's training step as its experiment runs it."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: Callable[[int], dict[str, float]]
    examples_per_step: int
    log_every: int = 10


@dataclass(frozen=True)
class BenchResult:
    name: str
    fit_s: float  # seconds per step through fit, fastest block
    bare_s: float  # seconds per step in a bare loop, fastest block
    ratio: float  # a fit block's wall time over its own steps' time, median over blocks
    examples_per_s: float
    gflop_per_step: float
    peak_gflops: float

    @property
    def peak_fraction(self) -> float:
        return self.gflop_per_step / self.fit_s / self.peak_gflops

    def line(self) -> str:
        verdict = "ok" if self.ratio <= TAX_BAR else f"ABOVE {TAX_BAR}"
        return (
            f"{self.name:36} fit {1e3 * self.fit_s:8.1f} ms  bare {1e3 * self.bare_s:8.1f} ms  "
            f"ratio {self.ratio:5.3f} ({verdict})  {self.examples_per_s:8.0f} ex/s  "
            f"{self.gflop_per_step / self.fit_s:6.1f} GFLOP/s = "
            f"{100 * self.peak_fraction:4.1f}% of peak"
        )


def median_seconds(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 5) -> float:
    """Median wall-clock seconds of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_gflops(sizes: tuple[int, ...] = (512, 1024, 2048)) -> float:
    """This machine's fp32 matmul peak (GFLOP/s) at the current thread count: the fastest
    of several square sizes, each its fastest of 10 calls."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(10):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def step_gflop(case: BenchCase, i: int) -> float:
    """Floating-point operations of one training step (forward, backward, update), GFLOP."""
    with FlopCounterMode(display=False) as counter:
        case.step(i)
    return counter.get_total_flops() / 1e9


def measure(
    case: BenchCase,
    run_factory,
    *,
    steps: int,
    repeats: int,
    peak: float,
    min_block_s: float = MIN_BLOCK_S,
) -> BenchResult:
    """Train ``repeats`` blocks through fit, each of at least ``steps`` steps and about
    ``min_block_s`` seconds, timing every ``step`` call inside them; after each, a bare loop
    over the same batches.

    Why the tax is taken inside each fit block, not from fit blocks against bare blocks:
    on the shared 2-core machine two bare blocks of the same 200 steps, one right after
    the other, differ by up to 25% (measured), far more than the 5% to be resolved. A step
    timed inside fit and the fit around it see the same machine at the same moment, so
    what is left of their ratio is fit's own cost: the progress bar, logging, mode
    switches and the checkpoint it writes at the end of a block, which a block of a few
    seconds weighs as a real run of a few hundred steps does.
    """
    fit_times, bare_times, ratios = [], [], []
    gflop = step_gflop(case, 0)
    for i in range(3):  # warm-up: allocator, caches, threads
        case.step(i)
    t = time.perf_counter()
    for i in range(3, 6):
        case.step(i)
    step_s = (time.perf_counter() - t) / 3
    steps = max(steps, math.ceil(min_block_s / step_s))
    for r in range(repeats):
        start = r * steps
        run = run_factory()  # a fresh folder per block, made before the clock starts
        inside = [0.0]

        def timed(i: int, start=start, inside=inside) -> dict[str, float]:
            t = time.perf_counter()
            metrics = case.step(start + i)
            inside[0] += time.perf_counter() - t
            return metrics

        t = time.perf_counter()
        fit(
            run,
            case.name,
            model=case.model,
            optimizer=case.optimizer,
            steps=steps,
            step=timed,
            log_every=case.log_every,
        )
        wall = time.perf_counter() - t
        fit_times.append(wall / steps)
        ratios.append(wall / inside[0])
        case.model.train()
        t = time.perf_counter()
        for i in range(steps):
            case.step(start + i)
        bare_times.append((time.perf_counter() - t) / steps)
    fit_s = min(fit_times)
    return BenchResult(
        name=case.name,
        fit_s=fit_s,
        bare_s=min(bare_times),
        ratio=statistics.median(ratios),
        examples_per_s=case.examples_per_step / fit_s,
        gflop_per_step=gflop,
        peak_gflops=peak,
    )


def bench_experiment(paper):
    """The experiment whose quick-preset Run ``paper.bench`` is given: the one whose ``run``
    is defined in the bench's own module (one module per experiment), else the first."""
    for exp in paper.experiments:
        if exp.run.__module__ == paper.bench.__module__:
            return exp
    return paper.experiments[0]


def bench_paper(
    paper, *, steps: int = 40, repeats: int = 5, quiet: bool = True
) -> list[BenchResult]:
    """Every bench case of ``paper``, measured in a scratch run folder (deleted after)."""
    from sutskever30.core.env import select_device
    from sutskever30.core.run import open_run

    if paper.bench is None:
        return []
    exp = bench_experiment(paper)
    device = select_device("auto")
    peak = matmul_peak_gflops()
    with tempfile.TemporaryDirectory(prefix="s30-bench-") as tmp:
        counter = iter(range(1_000_000))

        def run_factory():
            return open_run(
                slug=paper.slug,
                experiment=exp.name,
                preset="quick",
                cfg=exp.presets["quick"],
                seed=next(counter),
                device=device,
                out=Path(tmp),
                resume=False,
                quiet=quiet,
            )

        cases = paper.bench(run_factory())
        return [measure(c, run_factory, steps=steps, repeats=repeats, peak=peak) for c in cases]
