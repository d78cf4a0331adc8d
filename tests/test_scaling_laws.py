"""Scaling laws: the sweep's shapes and FLOP accounting against torch's flop counter, eq. D.1
and the schedule, the power-law fits on laws with known parameters, tokens-to-reach, the
compute frontier, the one-epoch data stream, the claims' verdicts, and the quick claims."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.core.errors import UsageError
from sutskever30.core.train import batch_indices
from sutskever30.nn.gpt import GPT
from sutskever30.papers.scaling_laws.experiment import (
    QUICK,
    SMOKE,
    SweepConfig,
    bench,
    sample_efficiency,
)
from sutskever30.papers.scaling_laws.model import (
    attention_share,
    bootstrap_ci,
    counted_flops_per_token,
    fit_power_law,
    frontier,
    kaplan_lr,
    tokens_to_reach,
)
from sutskever30.papers.scaling_laws.training import (
    load_corpus,
    sequence_losses,
    train_batch,
    trainer,
)

from .conftest import has_dataset
from .scratch import scratch_run

needs_corpus = pytest.mark.skipif(not has_dataset("python_source"), reason="no Python source")


# -- shapes and FLOPs ------------------------------------------------------------------------------
def test_quick_sweep_has_fixed_aspect_and_spans_1_5_decades():
    cfgs = [QUICK.gpt(n) for n in QUICK.n_layers]
    assert all(c.d_model == QUICK.aspect * c.n_layer for c in cfgs)
    # Kaplan's N: 12 n_layer d² weights, 13 n_layer d biases and norm gains, the final norm
    for c in cfgs:
        d, n = c.d_model, c.n_layer
        assert c.non_embedding_params == 12 * n * d * d + 13 * n * d + 2 * d
    n = [c.non_embedding_params for c in cfgs]
    assert n == sorted(n) and math.log10(n[-1] / n[0]) >= 1.5


@pytest.mark.parametrize("n_layer", QUICK.n_layers)
def test_flops_per_token_against_torchs_flop_counter(n_layer):
    """For every size of the quick sweep, torch.utils.flop_counter's count of one training
    step equals Table 1's C per token except for exactly two things: it counts the full
    n_ctx × n_ctx attention (one more 6 n_layer n_ctx d than the causal half) and no FLOPs for
    biases and norms. Within 40% of C in all, and 6N is most of C."""
    cfg = QUICK.gpt(n_layer)
    d, L, n_ctx = cfg.d_model, cfg.n_layer, cfg.context
    counted = counted_flops_per_token(cfg)
    kaplan = cfg.flops_per_token()
    small = cfg.non_embedding_params - 12 * L * d * d
    assert counted == pytest.approx(kaplan - 6 * small + 6 * L * n_ctx * d, rel=1e-12)
    assert counted == pytest.approx(kaplan, rel=0.4)
    assert attention_share(cfg) == pytest.approx(n_ctx / (12 * d + 13 + 2 / L + n_ctx))
    assert 6 * cfg.non_embedding_params / kaplan >= 0.7


# -- learning rate ------------------------------------------------------------------------------
def test_kaplan_learning_rate():
    assert kaplan_lr(1) == pytest.approx(0.003239)
    assert kaplan_lr(10**6) == pytest.approx(0.003239 - 0.0001395 * math.log(1e6))
    assert kaplan_lr(1e9) < kaplan_lr(1e5) < kaplan_lr(1e3)


# -- fits -----------------------------------------------------------------------------------------
def test_power_law_fit_recovers_known_laws():
    n = np.geomspace(1e3, 1e6, 7)
    law = fit_power_law(n, (3e4 / n) ** 0.3 + 1.5, offset=True)
    assert law.alpha == pytest.approx(0.3, rel=1e-3)
    assert law.x_c == pytest.approx(3e4, rel=1e-2)
    assert law.offset == pytest.approx(1.5, rel=1e-3)
    assert law.r2 == pytest.approx(1.0, abs=1e-9)
    pure = fit_power_law(n, (8.8e13 / n) ** 0.076, offset=False)
    assert pure.alpha == pytest.approx(0.076) and pure.x_c == pytest.approx(8.8e13, rel=1e-6)
    assert pure.offset == 0 and pure(n[2]) == pytest.approx((8.8e13 / n[2]) ** 0.076)


def test_power_law_fit_is_poor_on_a_non_power_law():
    n = np.geomspace(1e3, 1e6, 7)
    zigzag = 2.0 + 0.3 * (-1.0) ** np.arange(7)
    assert fit_power_law(n, zigzag, offset=True).r2 < 0.5
    rising = fit_power_law(n, 1 + 0.1 * np.log(n), offset=False)
    assert rising.alpha < 0


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    x = np.random.default_rng(0).normal(5.0, 1.0, 400)
    ci = bootstrap_ci(lambda idx: x[idx].mean(), len(x), resamples=200, seed=3)
    assert ci == bootstrap_ci(lambda idx: x[idx].mean(), len(x), resamples=200, seed=3)
    assert ci[0] < x.mean() < ci[1] and ci[1] - ci[0] < 0.4


# -- sample efficiency and the frontier --------------------------------------------------------
def test_tokens_to_reach_interpolates_the_first_crossing_in_log_tokens():
    tokens = np.array([1e3, 1e4, 1e5, 1e6])
    loss = np.array([3.0, 2.0, 1.0, 1.5])
    assert tokens_to_reach(tokens, loss, 2.0) == pytest.approx(1e4)
    assert tokens_to_reach(tokens, loss, 1.5) == pytest.approx(10**4.5)  # not the last 1.5
    assert tokens_to_reach(tokens, loss, 5.0) == 1e3
    assert tokens_to_reach(tokens, loss, 0.5) == math.inf


def test_frontier_is_the_lower_envelope_inside_each_curves_range():
    small = (np.array([1e2, 1e4]), np.array([2.0, 1.0]))  # fast start, flat end
    big = (np.array([1e3, 1e6]), np.array([2.2, 0.4]))  # starts later, ends lower
    grid = np.array([1e2, 1e3, 1e4, 1e6, 1e7])
    env, best = frontier([small, big], grid)
    assert best.tolist() == [0, 0, 0, 1, -1]
    assert env[0] == 2.0 and env[1] == pytest.approx(1.5)
    assert env[2] == 1.0 and env[3] == 0.4  # the big one is at 1.6 there
    assert not np.isfinite(env[4])


# -- data and training step -------------------------------------------------------------------
@needs_corpus
def test_one_epoch_stream_never_repeats_a_sequence():
    """The quick budget draws every training sequence at most once, and each batch row is
    the context + 1 bytes starting at its sequence's offset."""
    corpus = load_corpus(QUICK)
    idx = [batch_indices(corpus["n_seq"], QUICK.batch_size, i, 0) for i in range(QUICK.steps)]
    assert len(torch.cat(idx).unique()) == QUICK.steps * QUICK.batch_size
    row = int(idx[5][2]) * QUICK.context
    expect = corpus["train"][row : row + QUICK.context + 1].long()
    assert torch.equal(train_batch(corpus, QUICK, 5, 0)[2], expect)
    with pytest.raises(UsageError, match="one epoch"):
        load_corpus(SweepConfig(steps=corpus["n_seq"] // QUICK.batch_size + 1))


@needs_corpus
def test_training_step_uses_the_same_batches_for_every_size_and_learns(tmp_path):
    run = scratch_run(tmp_path, "scaling_laws", "sweep", SMOKE)
    corpus = load_corpus(SMOKE)
    assert torch.equal(train_batch(corpus, SMOKE, 3, 0), train_batch(corpus, SMOKE, 3, 0))
    assert not torch.equal(train_batch(corpus, SMOKE, 3, 0), train_batch(corpus, SMOKE, 4, 0))
    _, model, _, sched, step = trainer(run, SMOKE, 1, corpus)
    before = sequence_losses(model, corpus["val"]).mean()
    for i in range(SMOKE.steps):
        out = step(i)
        sched.step()
    assert "val_loss" in out and out["val_loss"] < before
    chunk = corpus["val"][:3]
    with torch.no_grad():
        expect = F.cross_entropy(model(chunk[:, :-1]).transpose(1, 2), chunk[:, 1:])
    assert sequence_losses(model, chunk).mean() == pytest.approx(expect.item(), rel=1e-5)


@needs_corpus
def test_bench_times_the_smallest_and_largest_models_own_step(tmp_path):
    run = scratch_run(tmp_path, "scaling_laws", "sweep", SMOKE)
    cases = bench(run)
    sizes = [c.model.cfg.n_layer for c in cases]
    assert sizes == [SMOKE.n_layers[0], SMOKE.n_layers[-1]]
    before = [p.clone() for p in cases[1].model.parameters()]
    assert math.isfinite(cases[1].step(0)["loss"])
    after = cases[1].model.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert cases[0].examples_per_step == SMOKE.batch_size * SMOKE.context


def test_sequence_losses_restores_training_mode():
    model = GPT(SMOKE.gpt(1))
    sequence_losses(model, torch.randint(0, 256, (2, 9)))
    assert model.training


# -- claims ----------------------------------------------------------------------------------------
def _size(n_layer, curve):
    return {
        "n_layer": n_layer,
        "N": 10**n_layer,
        "tokens": np.geomspace(1e3, 1e6, len(curve)),
        "val_curve": np.array(curve, dtype=float),
    }


def test_sample_efficiency_claim_follows_the_curves(tmp_path):
    run = scratch_run(tmp_path, "scaling_laws", "sweep", SMOKE)
    good = [_size(1, [3, 2.5, 2.0]), _size(2, [3, 2.0, 1.5]), _size(3, [2.5, 1.8, 1.2])]
    sample_efficiency(run, good)
    slow = [_size(1, [3, 2.5, 2.0]), _size(2, [3, 2.5, 1.5]), _size(3, [3, 2.4, 1.9])]
    sample_efficiency(run, slow)  # the largest reaches 2.0 after the middle one
    never = [_size(1, [3, 2.5, 2.0]), _size(2, [3, 2.4, 2.1]), _size(3, [2.5, 1.8, 1.2])]
    sample_efficiency(run, never)
    verdicts = [c.as_dict()["holds"] for c in run.claims]
    assert verdicts == [True, False, False]


@pytest.mark.slow
@needs_corpus
def test_quick_claims_hold(tmp_path):
    args = ["run", "scaling_laws", "--out", str(tmp_path), "-q", "--no-publish"]
    assert main(args) == 0
    (path,) = tmp_path.glob("scaling_laws/sweep/quick-*/results.json")
    claims = {c["id"]: c for c in json.loads(path.read_text())["claims"] if c["asserted"]}
    assert set(claims) == {"loss_power_law_in_n", "larger_models_more_sample_efficient"}
    for claim in claims.values():
        assert claim["holds"], claim
