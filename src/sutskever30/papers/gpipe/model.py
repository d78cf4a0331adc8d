"""GPipe: Efficient Training of Giant Neural Networks using Pipeline Parallelism.

Huang, Cheng, Bapna, Firat, Chen, Chen, Lee, Ngiam, Le, Wu, Chen, 2019
(arXiv:1811.06965, NeurIPS 2019).

**Idea.** A network that is a sequence of L layers is cut into K consecutive *cells*
(stages), one per accelerator. A mini-batch of N examples is split into M equal
*micro-batches*, which flow through the stages like an assembly line: stage k runs the
forward F_{k,m} of micro-batch m as soon as stage k−1 has handed it over, so after a fill
of K−1 clock ticks all stages work at once. Gradients of the M micro-batches are
accumulated and applied in one synchronous update at the end of the mini-batch, so the
update is *the same* as the one of the whole batch on one device, whatever K and M.

**Key equations.**

    schedule (fill–drain, Fig. 2c): F_{k,m} at clock k + m,
                                    B_{k,m} at clock (M + K − 1) + (K − 1 − k) + (M − 1 − m)
    bubble (idle) fraction:         O((K − 1) / (M + K − 1)), "negligible when M ≥ 4K" (§2.3)
    gradient:                       ∇ (1/N) Σ_n ℓ_n = Σ_m (N_m / N) ∇ (1/N_m) Σ_{n ∈ m} ℓ_n
    peak activation memory:         O(N · L) without re-materialization,
                                    O(N + L/K · N/M) with it (§2.3)

**Re-materialization.** During the forward pass each stage keeps only its input (the
activation at the partition boundary) for every micro-batch and drops everything inside;
during the backward pass it recomputes the stage's forward F_{k,m} from that input, then
back-propagates through it.

**Partitioning.** "The partitioning algorithm minimizes the variance in the estimated costs
of all cells" (§2.2). :func:`partition` chooses the K contiguous cells that minimize the
cost of the most expensive cell (the pipeline runs at the pace of its slowest stage), with a
cost per layer that is its parameter count (default) or a measured time.

Deviations from the paper:

- The paper's library runs on TPUs/GPUs in Lingvo; :class:`GPipe` here executes the K
  stages of the schedule one task at a time in one process (the order, the dependencies
  and the memory of the pipeline, not its concurrency). The concurrent pipeline is
  :mod:`sutskever30.papers.gpipe.pipeline`, one process per stage over
  ``torch.distributed.pipelining`` (``ScheduleGPipe``).
- Re-materialization is written out: the forward of each stage runs under ``no_grad`` and
  keeps its input; the backward recomputes the stage with gradients, then back-propagates
  (``torch.utils.checkpoint`` does the same thing implicitly; a test checks the two agree).
- Partitioning minimizes the maximum cell cost, not the variance of the cell costs; for
  contiguous cells both aim at equal cells and agree on balanced networks.
- The backward of the last stage runs micro-batches in reverse order (as torchgpipe does);
  the paper's Fig. 2c does not fix the order within a stage, and the bubble is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- partitioning ---------------------------------------------------------------------------
def parameter_costs(layers: Sequence[nn.Module]) -> list[float]:
    """Each layer's cost as its number of parameters (a tied parameter counted once, in the
    first layer that holds it)."""
    seen: set[int] = set()
    costs = []
    for layer in layers:
        n = 0
        for p in layer.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        costs.append(float(n))
    return costs


def timed_costs(layers: Sequence[nn.Module], x: torch.Tensor, repeats: int = 3) -> list[float]:
    """Each layer's cost as its measured forward time (s, median of ``repeats``) on ``x``
    fed through the layers in order: the paper's "estimated cost" per layer, measured."""
    times: list[list[float]] = [[] for _ in layers]
    with torch.no_grad():
        for _ in range(repeats):
            h = x
            for i, layer in enumerate(layers):
                tic = time.perf_counter()
                h = layer(h)
                times[i].append(time.perf_counter() - tic)
    return [sorted(t)[len(t) // 2] for t in times]


def partition(costs: Sequence[float], k: int) -> list[int]:
    """Cut layers 0..L−1 with ``costs`` into ``k`` contiguous non-empty cells minimizing the
    largest cell cost (dynamic programming over the cut points). Returns the k + 1 cell
    boundaries [0, b_1, …, L]; cell i is layers b_i … b_{i+1} − 1."""
    n = len(costs)
    if not 1 <= k <= n:
        raise ValueError(f"cannot cut {n} layers into {k} non-empty stages")
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    inf = float("inf")
    # best[j][i]: the smallest max-cell cost of the first i layers in j cells
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, n + 1):
            for s in range(j - 1, i):
                cost = max(best[j - 1][s], prefix[i] - prefix[s])
                if cost < best[j][i]:
                    best[j][i], cut[j][i] = cost, s
    bounds = [n]
    for j in range(k, 0, -1):
        bounds.append(cut[j][bounds[-1]])
    return bounds[::-1]


def split_stages(
    model: nn.Sequential, k: int, costs: Sequence[float] | None = None
) -> list[nn.Sequential]:
    """The K cells of ``model`` (sharing its parameters), balanced by ``costs`` (default:
    :func:`parameter_costs`)."""
    layers = list(model)
    bounds = partition(parameter_costs(layers) if costs is None else costs, k)
    return [nn.Sequential(*layers[a:b]) for a, b in pairwise(bounds)]


# -- the schedule ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit of pipeline work: the forward ``"F"`` or backward ``"B"`` of stage ``k`` on
    micro-batch ``m``, at ``clock`` in the fill–drain schedule (unit-time tasks)."""

    kind: str
    k: int
    m: int
    clock: int


def fill_drain_schedule(k: int, m: int) -> list[Task]:
    """GPipe's schedule (Fig. 2c) for K stages and M micro-batches, in clock order: all
    forwards, a fill of K−1 ticks, then all backwards in reverse, draining the pipeline."""
    if k < 1 or m < 1:
        raise ValueError(f"K and M must be ≥ 1, got K={k}, M={m}")
    forward_end = m + k - 1
    tasks = [Task("F", s, j, s + j) for s in range(k) for j in range(m)]
    tasks += [
        Task("B", s, j, forward_end + (k - 1 - s) + (m - 1 - j)) for s in range(k) for j in range(m)
    ]
    return sorted(tasks, key=lambda t: (t.clock, t.k))


def bubble_formula(k: int, m: int) -> float:
    """The idle fraction of the fill–drain schedule, (K − 1) / (M + K − 1) (§2.3)."""
    return (k - 1) / (m + k - 1)


def dependencies(task: Task, k: int) -> list[tuple[str, int, int]]:
    """The tasks ``task`` waits for besides the previous task on its own stage: the forward
    of the stage before (F), or the backward of the stage after (B; the last stage's
    backward starts from its own forward)."""
    if task.kind == "F":
        return [("F", task.k - 1, task.m)] if task.k > 0 else []
    if task.k < k - 1:
        return [("B", task.k + 1, task.m)]
    return [("F", task.k, task.m)]


def replay(schedule: Sequence[Task], durations: dict[tuple[str, int, int], float], k: int):
    """Start and end times of each task when every stage runs its tasks in schedule order as
    soon as its dependencies are done, each taking its measured duration. Returns
    ({task key: (start, end)}, the bubble fraction 1 − Σ busy / (K · makespan))."""
    end: dict[tuple[str, int, int], float] = {}
    times: dict[tuple[str, int, int], tuple[float, float]] = {}
    free = [0.0] * k
    for task in schedule:
        key = (task.kind, task.k, task.m)
        start = max([free[task.k], *(end[d] for d in dependencies(task, k))])
        end[key] = start + durations[key]
        times[key] = (start, end[key])
        free[task.k] = end[key]
    makespan = max(free)
    busy = sum(durations[(t.kind, t.k, t.m)] for t in schedule)
    return times, 1.0 - busy / (k * makespan)


# -- saved-activation memory ----------------------------------------------------------------
class SavedBytes:
    """Bytes of the tensors autograd saves for backward inside ``with`` (each storage counted
    once; parameters, which exist anyway, are not activations and are left out)."""

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self._params = {p.untyped_storage().data_ptr() for p in params}
        self._seen: set[int] = set()
        self.bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._params and ptr not in self._seen:
            self._seen.add(ptr)
            self.bytes += storage.nbytes()
        return t

    def __enter__(self) -> SavedBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


# -- the pipeline ---------------------------------------------------------------------------
@dataclass
class StepStats:
    """What one :meth:`GPipe.step` measured: the mean loss, each task's duration (s), the
    peak bytes of activations held for backward at any point of the schedule by all stages
    together, and by each stage."""

    loss: float
    durations: dict[tuple[str, int, int], float] = field(default_factory=dict)
    peak_activation_bytes: int = 0
    stage_peak_bytes: list[int] = field(default_factory=list)


class GPipe:
    """K stages, M micro-batches, the fill–drain schedule, optional re-materialization.

    ``step(x, y)`` runs the forward and backward of one mini-batch and leaves the summed
    gradients in the stages' parameters (the caller steps its optimizer once per
    mini-batch, the synchronous update of §2.2). The loss is a mean over examples, so each
    micro-batch's loss is weighted by its share N_m / N of the mini-batch.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        micro_batches: int,
        loss_fn: LossFn,
        remat: bool = False,
    ) -> None:
        if micro_batches < 1:
            raise ValueError(f"micro_batches must be ≥ 1, got {micro_batches}")
        self.stages = list(stages)
        self.K, self.M = len(self.stages), micro_batches
        self.loss_fn, self.remat = loss_fn, remat
        self.schedule = fill_drain_schedule(self.K, self.M)
        self._params = [p for s in self.stages for p in s.parameters()]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> StepStats:
        n = x.shape[0]
        if n < self.M:
            raise ValueError(f"a batch of {n} cannot be split into {self.M} micro-batches")
        # M micro-batches of ~N/M examples, each its own tensor (not a view of the batch)
        xs = [c.clone() for c in x.tensor_split(self.M)]
        ys = y.tensor_split(self.M)
        inputs: dict[tuple[int, int], torch.Tensor] = {}  # boundary input of (k, m)
        outputs: dict[tuple[int, int], torch.Tensor] = {}  # handed on to stage k + 1
        graphs: dict[tuple[int, int], torch.Tensor] = {}  # output with its graph (no remat)
        grads: dict[tuple[int, int], torch.Tensor] = {}  # ∂loss/∂ input of (k, m)
        held: dict[tuple[int, int], int] = {}  # bytes held for backward by (k, m)
        stats = StepStats(loss=0.0, stage_peak_bytes=[0] * self.K)
        total = 0.0
        for task in self.schedule:
            k, m = task.k, task.m
            tic = time.perf_counter()
            if task.kind == "F":
                inp = xs[m] if k == 0 else outputs.pop((k - 1, m)).detach()
                inputs[(k, m)] = inp
                if self.remat:  # keep only the boundary input; recompute in backward
                    with torch.no_grad(), SavedBytes(self._params) as saved:
                        out = self.stages[k](inp)
                    held[(k, m)] = _nbytes(inp) + saved.bytes  # nothing saved under no_grad
                else:
                    inp.requires_grad_(k > 0)
                    with SavedBytes(self._params) as saved:
                        out = self.stages[k](inp)
                    held[(k, m)] = saved.bytes
                    graphs[(k, m)] = out
                if k < self.K - 1:
                    outputs[(k, m)] = out
                extra = 0
            else:
                inp = inputs.pop((k, m))
                if self.remat:  # F_{k,m} again, this time keeping what backward needs
                    inp = inp.detach().requires_grad_(k > 0)
                    with SavedBytes(self._params) as saved:
                        out = self.stages[k](inp)
                    extra = saved.bytes
                else:
                    out, extra = graphs.pop((k, m)), 0
                if k == self.K - 1:
                    share = ys[m].shape[0] / n  # N_m / N
                    loss = self.loss_fn(out, ys[m])
                    total += share * loss.item()
                    (share * loss).backward()
                else:
                    out.backward(grads.pop((k + 1, m)))
                if k > 0:
                    grads[(k, m)] = inp.grad
            stats.durations[(task.kind, k, m)] = time.perf_counter() - tic
            stats.peak_activation_bytes = max(
                stats.peak_activation_bytes, sum(held.values()) + extra
            )
            on_stage = sum(b for (s, _), b in held.items() if s == k) + extra
            stats.stage_peak_bytes[k] = max(stats.stage_peak_bytes[k], on_stage)
            if task.kind == "B":
                del held[(k, m)]
        stats.loss = total
        return stats


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
