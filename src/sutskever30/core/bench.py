"""``s30 bench``: the framework tax of :func:`~sutskever30.core.train.fit`, and how close each
model's training step comes to the machine's matmul peak.

A paper's ``bench(run)`` returns :class:`BenchCase` objects: a model, its optimizer and the
paper's own ``step(i)`` (the same function its experiment hands to ``fit``: same batch and
data path). Each case is timed in one process in pairs of blocks over the same batches:
through ``fit`` (progress bar, metric logging, the final checkpoint; blocks of a few
seconds, see :func:`measure`) and through a bare ``for i: step(i)`` loop, which of the two
goes first alternating from pair to pair. The median of the pairs' time ratios is the tax
(the bar is ≤ 1.05). The step's floating-point
operations are counted once with ``torch.utils.flop_counter`` and divided by the step time
and by the measured fp32 matmul rate of this machine.
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
    bare_s: float  # seconds per step in the bare loop, fastest block
    ratio: float  # fit over bare: the median of the paired blocks' ratios
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
    """Time ``repeats`` pairs of blocks, one through fit and one bare over the same batches,
    each of at least ``steps`` steps and about ``min_block_s`` seconds.

    The ratio is taken within a pair, then the median over pairs: a step's cost can depend on
    its batch (utterances grow block by block under SortaGrad), so the fastest fit block and
    the fastest bare block of different pairs would compare different work.

    ``fit`` writes one checkpoint when it ends, as it does once per trained net; a block of a
    few seconds weighs that write as a real run of a few hundred steps does, rather than
    charging it all to 40 fast steps.
    """
    fit_times, bare_times = [], []
    i0 = 0
    gflop = step_gflop(case, i0)
    for i in range(3):  # warm-up: allocator, caches, threads
        case.step(i)
    t = time.perf_counter()
    for i in range(3, 6):
        case.step(i)
    step_s = (time.perf_counter() - t) / 3
    steps = max(steps, math.ceil(min_block_s / step_s))
    for r in range(repeats):
        start = i0 + r * steps
        run = run_factory()  # a fresh folder per block, made before the clock starts

        def through_fit(run=run, start=start) -> float:
            t = time.perf_counter()
            fit(
                run,
                case.name,
                model=case.model,
                optimizer=case.optimizer,
                steps=steps,
                step=lambda i: case.step(start + i),
                log_every=case.log_every,
            )
            return (time.perf_counter() - t) / steps

        def bare(start=start) -> float:
            t = time.perf_counter()
            for i in range(steps):
                case.model.train()
                case.step(start + i)
            return (time.perf_counter() - t) / steps

        # which goes first alternates: the weights change as both train, and a later block
        # can be faster or slower for that alone (e.g. denormal numbers early in training)
        if r % 2 == 0:
            fit_times.append(through_fit())
            bare_times.append(bare())
        else:
            bare_times.append(bare())
            fit_times.append(through_fit())
    fit_s, bare_s = min(fit_times), min(bare_times)
    return BenchResult(
        name=case.name,
        fit_s=fit_s,
        bare_s=bare_s,
        ratio=statistics.median(f / b for f, b in zip(fit_times, bare_times, strict=True)),
        examples_per_s=case.examples_per_step / fit_s,
        gflop_per_step=gflop,
        peak_gflops=peak,
    )


def bench_paper(
    paper, *, steps: int = 40, repeats: int = 5, quiet: bool = True
) -> list[BenchResult]:
    """Every bench case of ``paper``, measured in a scratch run folder (deleted after)."""
    from sutskever30.core.env import select_device
    from sutskever30.core.run import open_run

    if paper.bench is None:
        return []
    exp = paper.experiments[0]
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
