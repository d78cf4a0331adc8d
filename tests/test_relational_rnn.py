"""relational_rnn: the RMC step written out by hand from its raw weights, the attention
against MultiHeadAttention's fused path, permutation-equivariance over memory slots, the
gates (saturated: memory kept; opened: memory replaced), M_0, the N-th farthest labels
against a brute-force search, held-out splits, a few steps lowering the loss, the config's
checks, bench, the quick claim."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.core.train import step_generator
from sutskever30.papers.relational_rnn.experiment import (
    ARMS,
    PAPER,
    QUICK,
    SMOKE,
    SPLIT_SEEDS,
    NthFarthestConfig,
    held_out,
    nth_farthest,
)
from sutskever30.papers.relational_rnn.model import (
    ClassifierConfig,
    RelationalMemory,
    RMCConfig,
    SequenceClassifier,
)

from .scratch import bench_cases_that_train

IN = 7  # input size of the tiny cores


def tiny(**kw) -> RelationalMemory:
    """An RMC of 3 slots, 2 heads of 4 (d = 8), with large random weights."""
    torch.manual_seed(0)
    rmc = RelationalMemory(RMCConfig(input_size=IN, mem_slots=3, head_size=4, n_heads=2, **kw))
    with torch.no_grad():
        for p in rmc.parameters():
            p.normal_(0.0, 0.7)
    return rmc.eval()


def memory_and_input(b: int = 2, n: int = 3, d: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, IN, generator=g), torch.randn(b, n, d, generator=g)


def by_hand(rmc: RelationalMemory, x_t: torch.Tensor, M: torch.Tensor):
    """The RMC update from the raw weights: per-head softmax(q kᵀ/√d_k) v over [M; x], W^O, the
    two residual layer norms, the MLP, the gates, the update. Returns M_t and the weights."""
    lin = lambda layer, t: t @ layer.weight.T + (0 if layer.bias is None else layer.bias)  # noqa: E731
    a, h = rmc.attn, rmc.cfg.n_heads
    d = M.shape[-1]
    Mx = torch.cat([M, lin(rmc.W_in, x_t)[:, None]], 1)  # (B, N + 1, d)
    heads, weights = [], []
    for i in range(h):
        cols = slice(i * d // h, (i + 1) * d // h)
        q = lin(a.w_q, M)[..., cols]
        k, v = lin(a.w_k, Mx)[..., cols], lin(a.w_v, Mx)[..., cols]
        w = torch.softmax(q @ k.transpose(1, 2) / (d // h) ** 0.5, dim=-1)  # (B, N, N + 1)
        heads.append(w @ v)
        weights.append(w)
    A = lin(a.w_o, torch.cat(heads, -1))
    ln = lambda norm, t: F.layer_norm(t, (d,), norm.weight, norm.bias)  # noqa: E731
    M1 = ln(rmc.norm_attn, M + A)
    mlp = lin(rmc.g_psi[2], torch.relu(lin(rmc.g_psi[0], M1)))
    M_tilde = ln(rmc.norm_mlp, M1 + mlp)
    gates = lin(rmc.W_gate, x_t)[:, None] + torch.tanh(M) @ rmc.U_gate.weight.T
    i_gate = torch.sigmoid(gates[..., :d] + rmc.cfg.input_bias)
    f_gate = torch.sigmoid(gates[..., d:] + rmc.cfg.forget_bias)
    return i_gate * torch.tanh(M_tilde) + f_gate * M, torch.stack(weights, 1)


# -- the relational memory core ----------------------------------------------------------------


def test_step_equals_the_equations_by_hand():
    rmc = tiny()
    x_t, M = memory_and_input()
    with torch.no_grad():
        expected, expected_w = by_hand(rmc, x_t, M)
        got, w = rmc.step(x_t, M, need_weights=True)
        fused, none = rmc.step(x_t, M)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w, expected_w, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused, got, rtol=1e-5, atol=1e-5)  # F.scaled_dot_product_attention
    assert none is None


def test_attention_rows_are_memory_slots_over_memory_and_input():
    """(B, h, N, N + 1) weights, each row a distribution, and the input column is used."""
    rmc = tiny()
    x_t, M = memory_and_input()
    with torch.no_grad():
        _, w = rmc.step(x_t, M, need_weights=True)
    assert w.shape == (2, 2, 3, 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 3))
    assert w[..., -1].min() > 0


def test_memory_slots_are_permutation_equivariant():
    """Permuting M_{t−1}'s slots permutes M_t's and the attention rows and columns alike."""
    rmc = tiny()
    x_t, M = memory_and_input()
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        out, w = rmc.step(x_t, M, need_weights=True)
        out_p, w_p = rmc.step(x_t, M[:, perm], need_weights=True)
    torch.testing.assert_close(out_p, out[:, perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w_p, w[:, :, perm][..., [*perm.tolist(), 3]], rtol=1e-5, atol=1e-6)
    assert (out_p - out).abs().max() > 1e-2  # the slots differ: the check is not vacuous


def test_saturated_gates_keep_the_memory():
    """Forget gate σ(f) = 1 and input gate σ(i) = 0: M_t = M_{t−1} whatever the input."""
    rmc = tiny(forget_bias=60.0, input_bias=-60.0)
    x_t, M = memory_and_input()
    with torch.no_grad():
        i, f = rmc.gates(x_t, M)
        out, _ = rmc.step(x_t * 5, M)
    assert i.max() < 1e-6 and f.min() > 1 - 1e-6
    torch.testing.assert_close(out, M, rtol=0, atol=1e-6)


def test_open_input_gate_and_closed_forget_gate_replace_the_memory():
    """σ(i) = 1, σ(f) = 0: M_t = tanh(M̃), the attended memory alone."""
    rmc = tiny(forget_bias=-60.0, input_bias=60.0)
    x_t, M = memory_and_input()
    with torch.no_grad():
        out, _ = rmc.step(x_t, M)
        M_tilde, _ = rmc.attend(M, rmc.W_in(x_t))
    torch.testing.assert_close(out, torch.tanh(M_tilde), rtol=0, atol=1e-6)


def test_initial_memory_is_the_padded_identity():
    rmc = tiny()
    M0 = rmc.initial_memory(2)
    assert M0.shape == (2, 3, 8)
    torch.testing.assert_close(M0[:, :, :3], torch.eye(3).expand(2, 3, 3))
    assert M0[:, :, 3:].abs().max() == 0


def test_forward_runs_the_step_over_the_sequence():
    rmc = tiny()
    x = torch.randn(2, 4, IN)
    with torch.no_grad():
        out, weights = rmc(x, need_weights=True)
        M = rmc.initial_memory(2)
        for t in range(4):
            M, _ = rmc.step(x[:, t], M)
    torch.testing.assert_close(out, M.flatten(1))
    assert len(weights) == 4


# -- the task ------------------------------------------------------------------------------------


def test_labels_are_the_nth_farthest_by_brute_force():
    k, feats = 5, 3
    data = nth_farthest(300, k, feats, torch.Generator().manual_seed(0))
    x, y = data["x"], data["y"]
    assert x.shape == (300, k, feats + 3 * k)
    for b in range(300):
        ids = x[b, :, feats : feats + k].argmax(-1)
        assert sorted(ids.tolist()) == list(range(k))
        vectors = x[b, ids.argsort(), :feats].numpy()  # rows back in id order
        m = int(x[b, 0, feats + k : feats + 2 * k].argmax())
        n = int(x[b, 0, feats + 2 * k :].argmax()) + 1
        assert (x[b, :, feats + k :] == x[b, :1, feats + k :]).all()  # the question every step
        dist = {j: float(np.linalg.norm(vectors[j] - vectors[m])) for j in range(k) if j != m}
        ranked = sorted(dist, key=dist.get, reverse=True)
        assert int(y[b]) == ranked[n - 1]
    assert set(y.tolist()) == set(range(k)) and (data["n"] >= 1).all()
    shown_first = x[:, 0, feats : feats + k].argmax(-1)
    assert len(set(shown_first.tolist())) == k  # the presentation order is shuffled


def test_held_out_splits_differ_and_are_fixed():
    val = held_out(dataclasses.replace(SMOKE, split="val"))
    test, again = held_out(SMOKE), held_out(SMOKE)
    assert torch.equal(test["x"], again["x"])
    assert not torch.allclose(val["x"], test["x"])
    assert all(s % 7919 for s in SPLIT_SEEDS.values())
    training = [step_generator(seed, s).initial_seed() for seed in range(3) for s in (0, 7, 999)]
    assert all(s % 7919 == 0 for s in training)  # never a held-out split's seed


@pytest.mark.parametrize("arm", ARMS)
def test_a_few_steps_lower_the_loss(arm):
    """40 Adam steps on one batch lower its loss well below log k; every parameter learns."""
    cfg = SMOKE
    torch.manual_seed(0)
    model = SequenceClassifier(cfg.model(arm))
    data = nth_farthest(32, cfg.k, cfg.features, torch.Generator().manual_seed(3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(data["x"]), data["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_config_rejects_meaningless_values():
    for bad in (
        dict(k=2),
        dict(features=0),
        dict(n_heads=0),
        dict(steps=0),
        dict(eval_every=0),
        dict(lr_rmc=0.0),
        dict(lr_lstm=-1e-3),
        dict(clip=0.0),
        dict(split="train"),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(QUICK, **bad)
    with pytest.raises(ValueError):
        RMCConfig(input_size=4, mem_slots=0)
    with pytest.raises(ValueError):
        ClassifierConfig(core="rmc", input_size=4, n_classes=3)
    with pytest.raises(ValueError):
        ClassifierConfig(core="gru", input_size=4, n_classes=3)
    assert NthFarthestConfig().split == "test"


def test_bench_times_each_arms_own_training_step(tmp_path):
    cases = bench_cases_that_train(tmp_path, PAPER, "nth_farthest")
    assert [c.name for c in cases] == list(ARMS)


class ClaimNotHolding(AssertionError):
    """An asserted claim of a finished, valid run did not hold."""


@pytest.mark.slow
@pytest.mark.xfail(
    reason="rmc_beats_lstm does not hold at the quick budget: both cores stay at chance "
    "(README: Results); strict, so a run where it holds shows up",
    raises=ClaimNotHolding,
    strict=True,
)
def test_quick_claims_hold(tmp_path):
    args = ["run", "relational_rnn", "--out", str(tmp_path), "-q", "--no-publish"]
    assert main([*args, "--jobs", "3"]) == 0
    (run_dir,) = (tmp_path / "relational_rnn" / "nth_farthest").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    assert {"accuracy_curves.png", "attention.png"} <= {p.split("/")[-1] for p in results["plots"]}
    failed = [c for c in results["claims"] if c["asserted"] and not c["holds"]]
    if failed:
        raise ClaimNotHolding(failed)
