"""``s30 bench``: fit and a bare loop run the same steps; the ratio is computed from them."""

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
    assert result.ratio == result.fit_s / result.bare_s > 0
    assert result.gflop_per_step > 0 and result.examples_per_s == 2 / result.fit_s

    # fast steps: each block grows to about min_block_s, so fit's one final checkpoint
    # is spread over as many steps as a short real run has
    calls.clear()
    measure(case, run_factory, steps=4, repeats=1, peak=1, min_block_s=0.2)
    assert len(calls) - 7 > 2 * 4
