"""``s30 bench``: fit and a bare loop run the same steps; the ratio is computed from them."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sutskever30.core.bench import BenchCase, bench_experiment, measure
from sutskever30.core.run import open_run


@dataclass(frozen=True)
class _Cfg:
    steps: int = 1


def _case_and_factory(tmp_path, step_cost, calls, clock):
    """A linear model whose step advances a fake clock by ``step_cost(i)``."""
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(i):
        calls.append(i)
        clock[0] += step_cost(i)
        return {"loss": 0.0}

    def run_factory():
        return open_run(
            slug="t", experiment="b", preset="quick", cfg=_Cfg(), seed=len(calls),
            device=torch.device("cpu"), out=tmp_path, resume=False, quiet=True,
        )  # fmt: skip

    return BenchCase("fake", model, opt, step, 2), run_factory


def test_measure_runs_fit_and_the_bare_loop_over_the_same_batches(tmp_path):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def step(i):
        calls.append(i)
        loss = model(torch.ones(2, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def run_factory():
        return open_run(
            slug="t", experiment="b", preset="quick", cfg=_Cfg(), seed=len(calls),
            device=torch.device("cpu"), out=tmp_path, resume=False, quiet=True,
        )  # fmt: skip

    case = BenchCase("lin", model, opt, step, 2)
    result = measure(case, run_factory, steps=4, repeats=2, peak=1, min_block_s=0)
    # one counted step, 3 warm-up and 3 timed steps, then per block fit's steps and the bare's
    assert calls[7:23] == [0, 1, 2, 3] * 2 + [4, 5, 6, 7] * 2
    assert result.ratio >= 1 and result.fit_s > 0 and result.bare_s > 0
    assert result.gflop_per_step > 0 and result.examples_per_s == 2 / result.fit_s

    # fast steps: each block grows to about min_block_s, so fit's one final checkpoint
    # is spread over as many steps as a short real run has
    calls.clear()
    measure(case, run_factory, steps=4, repeats=1, peak=1, min_block_s=0.2)
    assert len(calls) - 7 > 2 * 4


def test_the_tax_is_fits_own_time_whatever_the_machine_does_between_blocks(tmp_path, monkeypatch):
    """Steps that cost 1 on a fake clock, batches that grow block by block (SortaGrad),
    bare blocks disturbed by another job, and a fit that spends 2 per block of its own
    (here: writing its checkpoint): the tax is (4 + 2) / 4, whatever the bare blocks did."""
    import sutskever30.core.bench as bench
    from sutskever30.core.run import Run

    clock = [0.0]
    calls = []
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    saved = Run.save

    def slow_save(self, key, state):
        clock[0] += 2.0
        return saved(self, key, state)

    monkeypatch.setattr(Run, "save", slow_save)
    in_fit = [False]
    monkeypatch.setattr(bench, "fit", _flagging(bench.fit, in_fit))

    def cost(i):
        grow = 1.0 + 0.2 * (i // 4)
        return grow * (1.0 if in_fit[0] or len(calls) <= 7 else 1.7)

    case, run_factory = _case_and_factory(tmp_path, lambda i: 1.0, calls, clock)
    result = measure(case, run_factory, steps=4, repeats=3, peak=1, min_block_s=0)
    assert result.ratio == pytest.approx(6 / 4)

    calls.clear()
    case, run_factory = _case_and_factory(tmp_path, cost, calls, clock)
    result = measure(case, run_factory, steps=4, repeats=3, peak=1, min_block_s=0)
    assert result.ratio == pytest.approx((4 * 1.2 + 2) / (4 * 1.2))  # the median block
    assert result.bare_s > result.fit_s  # the disturbed bare loop looks slower than fit


def _flagging(fn, flag):
    def wrapped(*args, **kwargs):
        flag[0] = True
        try:
            return fn(*args, **kwargs)
        finally:
            flag[0] = False

    return wrapped


def test_every_bench_gets_a_run_of_the_experiment_it_was_written_for():
    """A bench reading ``run.cfg`` must get its own experiment's quick config, not the
    paper's first experiment's (multi_token_prediction's bench is the second's)."""
    from sutskever30.core.registry import all_papers

    chosen = {p.slug: bench_experiment(p).name for p in all_papers() if p.bench}
    assert chosen["multi_token_prediction"] == "speculative"
    assert chosen["resnet"] == "degradation"
    for paper in all_papers():
        if paper.bench and paper.bench.__module__.endswith(".experiment"):
            assert bench_experiment(paper) is paper.experiments[0]
