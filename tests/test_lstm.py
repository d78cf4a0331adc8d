"""LSTM/GRU cells written gate by gate vs PyTorch's, the variants' defining identities, the
gradient-vs-lag measurement, the long-range task, its held-out streams, the learning-rate
choice on validation, and the bench case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sutskever30.cli import main
from sutskever30.core.train import step_generator
from sutskever30.data.long_range import first_bit_batch
from sutskever30.papers.lstm.experiment import PAPER
from sutskever30.papers.lstm.experiments.long_range import (
    QUICK,
    TEST_STREAM,
    VAL_STREAM,
    LongRangeConfig,
    accuracy,
    build,
    held_out,
    select,
)
from sutskever30.papers.lstm.model import (
    GRUCell,
    LSTMCell,
    Recurrent,
    SequenceClassifier,
    TanhRNNCell,
    copy_from_torch_gru,
    copy_from_torch_lstm,
    copy_from_torch_rnn,
    gradient_vs_lag,
)

from .scratch import scratch_run

TOL = {"atol": 1e-5, "rtol": 1e-5}
D_IN, H, B, T = 5, 16, 4, 30


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomize(module: torch.nn.Module, scale: float = 1.0) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-scale, scale)


def _state(kind: str):
    h0 = torch.randn(B, H)
    return (h0, torch.randn(B, H)) if kind == "lstm" else h0


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_cells_equal_torch_with_copied_weights(kind):
    ref = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](
        D_IN, H, batch_first=True
    )
    _randomize(ref)  # large weights: the gates saturate as well as sit in their linear range
    if kind == "lstm":
        cell = LSTMCell(input_size=D_IN, hidden_size=H)
        copy_from_torch_lstm(cell, ref)
    elif kind == "gru":
        cell = GRUCell(input_size=D_IN, hidden_size=H, reset_after=True)
        copy_from_torch_gru(cell, ref)
    else:
        cell = TanhRNNCell(input_size=D_IN, hidden_size=H)
        copy_from_torch_rnn(cell, ref)
    x = torch.randn(B, T, D_IN)
    s0 = _state(kind)
    ours, our_state = Recurrent(cell)(x, s0)
    ref_s0 = tuple(s[None] for s in s0) if kind == "lstm" else s0[None]
    theirs, their_state = ref(x, ref_s0)
    torch.testing.assert_close(ours, theirs, **TOL)
    if kind == "lstm":
        torch.testing.assert_close(our_state[0], their_state[0][0], **TOL)
        torch.testing.assert_close(our_state[1], their_state[1][0], **TOL)
    else:
        torch.testing.assert_close(our_state, their_state[0], **TOL)
    # the same function has the same input gradient (float64: large recurrent weights
    # amplify float32 rounding over 30 steps of backpropagation)
    x64 = x.detach().double().requires_grad_(True)
    s64 = tuple(s.double() for s in s0) if kind == "lstm" else s0.double()
    ref_s64 = tuple(s[None] for s in s64) if kind == "lstm" else s64[None]
    (g_ours,) = torch.autograd.grad(Recurrent(cell.double())(x64, s64)[0].square().sum(), x64)
    (g_theirs,) = torch.autograd.grad(ref.double()(x64, ref_s64)[0].square().sum(), x64)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-10, rtol=1e-10)


def test_lstm_cell_gate_equations_by_hand():
    cell = LSTMCell(input_size=D_IN, hidden_size=H)
    x, (h, C) = torch.randn(B, D_IN), _state("lstm")
    hx = torch.cat([h, x], 1)
    f = torch.sigmoid(hx @ cell.W_f.weight.T + cell.W_f.bias)
    i = torch.sigmoid(hx @ cell.W_i.weight.T + cell.W_i.bias)
    C_tilde = torch.tanh(hx @ cell.W_C.weight.T + cell.W_C.bias)
    o = torch.sigmoid(hx @ cell.W_o.weight.T + cell.W_o.bias)
    C_new = f * C + i * C_tilde
    h_t, C_t = cell(x, (h, C))
    torch.testing.assert_close(C_t, C_new, **TOL)
    torch.testing.assert_close(h_t, o * torch.tanh(C_new), **TOL)


def test_open_forget_gate_keeps_cell_state():
    """f = 1, i = 0: the cell state passes through unchanged (the LSTM's 'conveyor belt')."""
    cell = LSTMCell(input_size=D_IN, hidden_size=H)
    with torch.no_grad():
        cell.W_f.bias.fill_(100.0)
        cell.W_i.bias.fill_(-100.0)
    x, (h, C) = torch.randn(B, D_IN), _state("lstm")
    _, C_t = cell(x, (h, C))
    torch.testing.assert_close(C_t, C, atol=1e-6, rtol=0)


def test_peephole_zero_equals_lstm_and_peepholes_act_where_they_should():
    plain = LSTMCell(input_size=D_IN, hidden_size=H)
    peep = LSTMCell(input_size=D_IN, hidden_size=H, peephole=True)
    peep.load_state_dict(plain.state_dict(), strict=False)  # p_f, p_i, p_o start at zero
    x, s = torch.randn(1, D_IN), _state("lstm")
    s = (s[0][:1], s[1][:1])
    for a, b in zip(peep(x, s), plain(x, s), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    # the forget peephole p_f·C_{t-1} is a per-unit bias shift of the forget gate
    with torch.no_grad():
        peep.p_f.uniform_(-1, 1)
        shifted = LSTMCell(input_size=D_IN, hidden_size=H)
        shifted.load_state_dict(plain.state_dict())
        shifted.W_f.bias += peep.p_f * s[1][0]
    for a, b in zip(peep(x, s), shifted(x, s), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    # the output peephole looks at C_t: it changes h_t but never C_t
    with torch.no_grad():
        peep.p_f.zero_()
        peep.p_o.uniform_(-1, 1)
    h_p, C_p = peep(x, s)
    h_0, C_0 = plain(x, s)
    torch.testing.assert_close(C_p, C_0, **TOL)
    assert (h_p - h_0).abs().max() > 1e-3


def test_coupled_gate_is_lstm_with_input_gate_one_minus_forget():
    """σ(−a) = 1 − σ(a): an LSTM whose input-gate weights are minus its forget-gate weights
    is exactly the coupled cell."""
    coupled = LSTMCell(input_size=D_IN, hidden_size=H, coupled=True)
    lstm = LSTMCell(input_size=D_IN, hidden_size=H)
    assert coupled.W_i is None
    lstm.load_state_dict(coupled.state_dict(), strict=False)
    with torch.no_grad():
        lstm.W_i.weight.copy_(-coupled.W_f.weight)
        lstm.W_i.bias.copy_(-coupled.W_f.bias)
    x, s = torch.randn(B, T, D_IN), _state("lstm")
    torch.testing.assert_close(Recurrent(coupled)(x, s)[0], Recurrent(lstm)(x, s)[0], **TOL)


def test_gru_forms_agree_when_reset_gate_is_open_and_update_gate_interpolates():
    before = GRUCell(input_size=D_IN, hidden_size=H)
    after = GRUCell(input_size=D_IN, hidden_size=H, reset_after=True)
    with torch.no_grad():
        for cell in (before, after):
            cell.W_r.weight.zero_()
            cell.W_r.bias.fill_(100.0)  # r = 1: nothing is reset
        after.W_z.load_state_dict(before.W_z.state_dict())
        after.W_h.weight.copy_(before.W.weight[:, :H])
        after.W_h.bias.zero_()
        after.W_x.weight.copy_(before.W.weight[:, H:])
        after.W_x.bias.copy_(before.W.bias)
    x, h = torch.randn(B, D_IN), _state("gru")
    torch.testing.assert_close(before(x, h), after(x, h), **TOL)
    with torch.no_grad():
        before.W_z.weight.zero_()
        before.W_z.bias.fill_(-100.0)  # z = 0: h_t = h_{t-1} (Olah's convention)
    torch.testing.assert_close(before(x, h), h, atol=1e-6, rtol=0)


def test_copy_rejects_mismatched_variants():
    with pytest.raises(ValueError, match="reset_after"):
        copy_from_torch_gru(GRUCell(input_size=D_IN, hidden_size=H), torch.nn.GRU(D_IN, H))
    with pytest.raises(ValueError, match="coupled"):
        copy_from_torch_lstm(
            LSTMCell(input_size=D_IN, hidden_size=H, coupled=True), torch.nn.LSTM(D_IN, H)
        )


def test_gradient_vs_lag_equals_full_jacobian():
    model = SequenceClassifier(kind="lstm", input_size=2, hidden_size=6, num_outputs=2).double()
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    got = gradient_vs_lag(model, x)
    norms = []
    for b in range(3):
        jac = torch.autograd.functional.jacobian(lambda xb: model(xb[None])[1][0, -1], x[b])
        norms.append(jac.pow(2).sum(dim=(0, 2)).sqrt())  # jac: (H, T, D_IN)
    torch.testing.assert_close(got, torch.stack(norms).mean(0), atol=1e-10, rtol=1e-8)


def test_first_bit_task():
    gen = torch.Generator().manual_seed(3)
    x, y = first_bit_batch(gen, 64, 100)
    assert x.shape == (64, 100, 2) and y.shape == (64,)
    torch.testing.assert_close(x[:, 0, 0], (2 * y - 1).float())
    assert (x[:, 0, 1] == 0).all() and (x[:, 1:, 0] == 0).all()
    assert set(x[:, 1:, 1].unique().tolist()) == {-1.0, 1.0}
    x2, y2 = first_bit_batch(torch.Generator().manual_seed(3), 64, 100)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_lstm_learns_first_bit_at_short_lag():
    cfg = LongRangeConfig(T=10, hidden_size=16)
    model = build("lstm", cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        x, y = first_bit_batch(gen, 32, cfg.T)
        loss = torch.nn.functional.cross_entropy(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy(model, *first_bit_batch(gen, 500, cfg.T)) > 0.95


def _run(tmp_path, cfg, seed=0):
    return scratch_run(tmp_path, "lstm", "long_range", cfg, seed=seed)


def test_validation_and_test_sets_are_disjoint_streams_from_training(tmp_path):
    cfg = LongRangeConfig(T=12)
    run = _run(tmp_path, cfg)
    val_x, _ = held_out(run, cfg, VAL_STREAM, 64)
    test_x, _ = held_out(run, cfg, TEST_STREAM, 64)
    train_x, _ = first_bit_batch(step_generator(run.seed, 0), 64, cfg.T)
    assert not torch.equal(val_x, test_x) and not torch.equal(val_x, train_x)
    assert torch.equal(held_out(_run(tmp_path, cfg), cfg, VAL_STREAM, 64)[0], val_x)


def test_learning_rate_is_chosen_on_validation_only():
    """Each model keeps its lr with the best validation accuracy (ties: lower validation
    loss); the test accuracy, were it known, would pick differently here."""
    arms = [
        {"kind": "lstm", "lr": 1e-3, "val_acc": 0.9, "val_loss": 0.3, "test_acc": 0.5},
        {"kind": "lstm", "lr": 3e-3, "val_acc": 0.8, "val_loss": 0.2, "test_acc": 1.0},
        {"kind": "rnn", "lr": 1e-3, "val_acc": 0.5, "val_loss": 0.70, "test_acc": 0.6},
        {"kind": "rnn", "lr": 3e-3, "val_acc": 0.5, "val_loss": 0.69, "test_acc": 0.4},
    ]
    assert select(arms, "lstm")["lr"] == 1e-3
    assert select(arms, "rnn")["lr"] == 3e-3


def test_bench_times_the_experiments_own_training_step(tmp_path):
    cases = PAPER.bench(_run(tmp_path, QUICK))
    assert [c.name for c in cases] == ["long_range lstm", "long_range rnn"]
    for case in cases:
        before = [p.detach().clone() for p in case.model.parameters()]
        assert np.isfinite(case.step(0)["loss"])
        assert any(
            not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True)
        )


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    import json

    args = ["run", "lstm", "--preset", "quick", "--out", str(tmp_path), "--no-publish", "-q"]
    assert main(args) == 0
    paths = sorted(tmp_path.glob("lstm/*/quick-*/results.json"))
    assert [p.parts[-3] for p in paths] == ["equivalence", "long_range"]
    for path in paths:
        results = json.loads(path.read_text())
        assert results["claims"]
        for claim in results["claims"]:
            assert claim["holds"] or not claim["asserted"], claim
