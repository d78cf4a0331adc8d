"""``s30 bench``: fit and a bare loop run the same steps; the ratio is computed from them."""

import pytest
import torch
from torch import nn

from sutskever30.core.bench import BenchCase, measure
from sutskever30.core.run import open_run


def test_measure_times_fit_and_the_bare_loop_on_the_same_step(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 1

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
            slug="t", experiment="b", preset="quick", cfg=Cfg(), seed=len(calls),
            device=torch.device("cpu"), out=tmp_path, resume=False, quiet=True,
        )  # fmt: skip

    case = BenchCase("lin", model, opt, step, 2)
    result = measure(case, run_factory, steps=4, repeats=2, peak=1, min_block_s=0)
    # one counted step, 3 warm-up and 3 timed steps, then each block's steps, fit and bare
    assert calls[7:15] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len(calls) == 7 + 2 * 2 * 4
    assert result.ratio > 0 and result.fit_s > 0 and result.bare_s > 0
    assert result.gflop_per_step > 0 and result.examples_per_s == 2 / result.fit_s

    # fast steps: each block grows to about min_block_s, so fit's one final checkpoint
    # is spread over as many steps as a short real run has
    calls.clear()
    measure(case, run_factory, steps=4, repeats=1, peak=1, min_block_s=0.2)
    assert len(calls) - 7 > 2 * 4


def test_ratio_pairs_blocks_over_the_same_batches(tmp_path, monkeypatch):
    """Batches that grow block by block (SortaGrad) and one disturbed bare block: the fastest
    fit and bare blocks come from different pairs and their ratio is 0.83; the pairs' median
    is the true 1."""
    from dataclasses import dataclass
    from types import SimpleNamespace

    import sutskever30.core.bench as bench

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 1

    clock = [0.0]
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def step(i):
        calls.append(i)
        cost = 1.0 + 0.2 * (i // 4)  # batch i's own cost: later blocks are longer
        disturbed = 11 <= len(calls) - 1 <= 14  # the first pair's bare block, slowed down
        clock[0] += cost * (1.5 if disturbed else 1.0)
        return {"loss": 0.0}

    def run_factory():
        return open_run(
            slug="t", experiment="b", preset="quick", cfg=Cfg(), seed=len(calls),
            device=torch.device("cpu"), out=tmp_path, resume=False, quiet=True,
        )  # fmt: skip

    case = BenchCase("grow", model, opt, step, 2)
    result = measure(case, run_factory, steps=4, repeats=3, peak=1, min_block_s=0)
    assert result.fit_s / result.bare_s == pytest.approx(1.0 / 1.2)
    assert result.ratio == pytest.approx(1.0)
