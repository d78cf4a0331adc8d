"""GPipe: the partition, the fill–drain schedule and its bubble, transparency (pipelined
gradients equal full-batch gradients, torchgpipe's test), re-materialization against
torch.utils.checkpoint, saved-activation memory, the two-process torchrun pipeline against
one process, and the quick claims."""

import copy
import itertools
import json

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from sutskever30.cli import main
from sutskever30.papers.gpipe.experiments.bubble import BubbleConfig
from sutskever30.papers.gpipe.experiments.common import GPTSize, gpt_and_batch
from sutskever30.papers.gpipe.experiments.gradients import (
    GradientsConfig,
    allclose_excess,
    full_batch_grads,
    pipelined_grads,
)
from sutskever30.papers.gpipe.experiments.memory import MemoryConfig
from sutskever30.papers.gpipe.experiments.two_process import TwoProcessConfig, torchrun_pipeline
from sutskever30.papers.gpipe.model import (
    GPipe,
    SavedBytes,
    bubble_formula,
    dependencies,
    fill_drain_schedule,
    parameter_costs,
    partition,
    replay,
    split_stages,
)
from sutskever30.papers.gpipe.pipeline import PipeTrainConfig, train_single

from .conftest import has_dataset

needs_text = pytest.mark.skipif(
    not has_dataset("tinyshakespeare"), reason="no tiny-shakespeare copy"
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is faster than two contending with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp(width: int = 8, depth: int = 6, dtype=torch.float64) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(width, 3)).to(dtype)


def mse(out, target):
    return ((out - target) ** 2).mean()


# -- partition ------------------------------------------------------------------------------
def brute_force_max_cost(costs, k):
    n = len(costs)
    best = float("inf")
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = [0, *cuts, n]
        best = min(best, max(sum(costs[a:b]) for a, b in itertools.pairwise(bounds)))
    return best


def test_partition_minimizes_the_largest_cell_against_brute_force():
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        n = int(torch.randint(2, 9, (1,), generator=gen))
        k = int(torch.randint(1, n + 1, (1,), generator=gen))
        costs = torch.rand(n, generator=gen).tolist()
        bounds = partition(costs, k)
        assert bounds[0] == 0 and bounds[-1] == n and len(bounds) == k + 1
        assert all(a < b for a, b in itertools.pairwise(bounds)), "cells are non-empty"
        cells = [sum(costs[a:b]) for a, b in itertools.pairwise(bounds)]
        assert max(cells) == pytest.approx(brute_force_max_cost(costs, k))


def test_partition_exact_cases_and_errors():
    assert partition([1, 1, 1, 1], 2) == [0, 2, 4]
    assert partition([5, 1, 1, 1, 1, 1], 2) == [0, 1, 6]
    with pytest.raises(ValueError):
        partition([1, 1], 3)


def test_split_stages_shares_parameters_and_composes_to_the_model():
    model = mlp()
    stages = split_stages(model, 3)
    assert len(stages) == 3
    assert {id(p) for s in stages for p in s.parameters()} == {id(p) for p in model.parameters()}
    x = torch.randn(5, 8, dtype=torch.float64)
    h = x
    for s in stages:
        h = s(h)
    torch.testing.assert_close(h, model(x), rtol=0, atol=0)


def test_parameter_costs_count_a_tied_parameter_once():
    a, b = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    b.weight = a.weight
    assert parameter_costs([a, b]) == [16.0, 0.0]


# -- the schedule and its bubble ------------------------------------------------------------
@pytest.mark.parametrize("k,m", [(1, 1), (2, 1), (2, 4), (4, 4), (4, 8), (5, 3)])
def test_fill_drain_schedule_is_a_valid_timeline(k, m):
    tasks = fill_drain_schedule(k, m)
    assert len(tasks) == 2 * k * m
    clocks = {(t.kind, t.k, t.m): t.clock for t in tasks}
    assert len({(t.k, t.clock) for t in tasks}) == len(tasks), "one task per stage per tick"
    for t in tasks:
        for dep in dependencies(t, k):
            assert clocks[dep] < t.clock, (t, dep)
    assert max(clocks.values()) + 1 == 2 * (m + k - 1)  # fill + M + drain, twice


@pytest.mark.parametrize("k,m", [(1, 4), (2, 1), (2, 8), (4, 1), (4, 4), (4, 16), (8, 32)])
def test_unit_time_replay_gives_the_formula(k, m):
    tasks = fill_drain_schedule(k, m)
    durations = {(t.kind, t.k, t.m): 1.0 for t in tasks}
    times, bubble = replay(tasks, durations, k)
    assert bubble == pytest.approx(bubble_formula(k, m), abs=1e-12)
    assert all(times[(t.kind, t.k, t.m)][0] == t.clock for t in tasks)


def test_bubble_formula_values():
    assert bubble_formula(1, 7) == 0
    assert bubble_formula(4, 1) == pytest.approx(3 / 4)
    assert bubble_formula(4, 16) == pytest.approx(3 / 19)


def test_replay_waits_for_a_slow_stage():
    """A stage twice as slow makes the others idle beyond the formula."""
    k, m = 2, 4
    tasks = fill_drain_schedule(k, m)
    durations = {(t.kind, t.k, t.m): 2.0 if t.k == 1 else 1.0 for t in tasks}
    _, bubble = replay(tasks, durations, k)
    assert bubble > bubble_formula(k, m) + 0.1


# -- transparency: pipelined gradients equal full-batch gradients ---------------------------
@pytest.mark.parametrize("remat", [False, True])
@pytest.mark.parametrize("k,m", [(1, 1), (2, 4), (3, 3), (4, 8)])
def test_pipelined_mlp_gradients_equal_full_batch(k, m, remat):
    model = mlp()
    x = torch.randn(10, 8, dtype=torch.float64)  # M = 3, 4, 8 split 10 unevenly
    y = torch.randn(10, 3, dtype=torch.float64)
    model.zero_grad()
    mse(model(x), y).backward()
    reference = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    stats = GPipe(split_stages(model, k), micro_batches=m, loss_fn=mse, remat=remat).step(x, y)
    for p, g in zip(model.parameters(), reference, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-6, atol=1e-6)
    assert stats.loss == pytest.approx(mse(model(x), y).item(), rel=1e-12)


@needs_text
@pytest.mark.parametrize("remat", [False, True])
def test_pipelined_gpt_gradients_equal_full_batch(remat):
    gpt, x, y = gpt_and_batch(
        GPTSize(batch_size=6, context=8, n_layer=2, d_model=16), 0, torch.float64
    )
    model = gpt.sequential()
    reference = full_batch_grads(model, x, y)
    grads = pipelined_grads(copy.deepcopy(model), x, y, k=3, m=4, remat=remat)
    excess, diff = allclose_excess(grads, reference)
    assert excess <= 0 and diff < 1e-12


def test_dropping_the_micro_batch_share_breaks_equality():
    """The mechanism test can fail: micro-batch losses summed without their N_m / N weight
    give M times the gradient."""
    model = mlp()
    x, y = torch.randn(8, 8, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    reference = [g.clone() for g in torch.autograd.grad(mse(model(x), y), model.parameters())]
    model.zero_grad()
    for xm, ym in zip(x.tensor_split(4), y.tensor_split(4), strict=True):
        mse(model(xm), ym).backward()  # no share
    excess, _ = allclose_excess([p.grad for p in model.parameters()], reference)
    assert excess > 0


def test_rematerialization_equals_torch_checkpoint():
    model = mlp()
    x = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    checkpoint(model, x, use_reentrant=False).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    pipe = GPipe(
        split_stages(model, 2), micro_batches=1, loss_fn=lambda out, _: out.sum(), remat=True
    )
    pipe.step(x.detach(), torch.zeros(6))
    for p, g in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-12)


# -- memory ---------------------------------------------------------------------------------
def test_saved_bytes_counts_activations_not_parameters():
    layer = nn.Linear(4, 3)
    x = torch.randn(5, 4, requires_grad=True)
    with SavedBytes(list(layer.parameters())) as saved:
        layer(x)
    assert saved.bytes == 5 * 4 * 4  # the input only; the weight is a parameter


def test_rematerialization_lowers_peak_and_falls_with_m():
    model = mlp(width=32, depth=8, dtype=torch.float32)
    x, y = torch.randn(64, 32), torch.randn(64, 3)

    def peaks(m, remat):
        model.zero_grad()
        stats = GPipe(split_stages(model, 4), micro_batches=m, loss_fn=mse, remat=remat).step(x, y)
        return stats.peak_activation_bytes, max(stats.stage_peak_bytes)

    plain = [peaks(m, False) for m in (1, 4, 16)]
    remat = [peaks(m, True) for m in (1, 4, 16)]
    assert all(r[0] < p[0] for r, p in zip(remat, plain, strict=True))
    assert plain[0][0] == plain[1][0] == plain[2][0], "without remat every activation is kept"
    assert remat[0][1] > remat[1][1] > remat[2][1], "a stage's peak falls as N/M"


# -- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientsConfig(stages=(9,)),
        lambda: GradientsConfig(micro_batches=()),
        lambda: BubbleConfig(repeats=0),
        lambda: MemoryConfig(micro_batches=(64,)),
        lambda: GPTSize(d_model=30, n_head=4),
        lambda: TwoProcessConfig(processes=1),
        lambda: TwoProcessConfig(batch_size=30, micro_batches=4),
        lambda: PipeTrainConfig(lr=0),
    ],
)
def test_configs_reject_meaningless_values(make):
    with pytest.raises(ValueError):
        make()


def test_gpipe_rejects_more_micro_batches_than_examples():
    with pytest.raises(ValueError):
        GPipe(split_stages(mlp(), 2), micro_batches=4, loss_fn=mse).step(
            torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
        )


# -- the two-process pipeline ---------------------------------------------------------------
@needs_text
def test_two_gloo_processes_train_like_one(tmp_path):
    cfg = PipeTrainConfig(steps=3, batch_size=8, context=16, n_layer=2, d_model=16)
    piped = torchrun_pipeline(cfg, 2, str(tmp_path / "losses.json"), timeout_s=120)
    single = train_single(cfg)
    assert len(piped) == len(single) == 3
    for a, b in zip(piped, single, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert single[-1] < single[0]


# -- the quick claims -----------------------------------------------------------------------
@needs_text
@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    out = tmp_path / "runs"
    code = main(["run", "gpipe", "--out", str(out), "-q", "--no-publish"])
    assert code == 0
    claims = {}
    for path in out.glob("gpipe/*/*/results.json"):
        for claim in json.loads(path.read_text())["claims"]:
            claims[claim["id"]] = claim
    assert {
        "gradients_equal_full_batch",
        "bubble_matches_formula",
        "remat_lowers_peak_memory",
        "pipeline_matches_one_process",
    } <= set(claims)
    for claim in claims.values():
        assert claim["holds"] in (True, None), claim


@needs_text
def test_bench_cases_take_a_training_step(tmp_path):
    from sutskever30.core.run import open_run
    from sutskever30.papers.gpipe.experiment import PAPER

    exp = PAPER.experiments[0]
    run = open_run(
        slug="gpipe",
        experiment=exp.name,
        preset="quick",
        cfg=exp.presets["quick"],
        seed=0,
        device=torch.device("cpu"),
        out=tmp_path,
        resume=False,
        quiet=True,
    )
    cases = PAPER.bench(run)
    assert [c.name.endswith("remat") for c in cases] == [False, True]
    for case in cases:
        before = [p.detach().clone() for p in case.model.parameters()]
        assert case.step(0)["loss"] > 0
        assert any(
            not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True)
        )
