"""Initialization scale: the inits equal torch.nn.init's, the ReLU std recursion, orthogonality,
random-matrix products, the recurrent net against nn.RNN, and the MNIST trainability sweep
(its claims, divergence handling and bench case)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn import init as tinit

from sutskever30.cli import main
from sutskever30.papers.initialization_scale.experiment import PAPER
from sutskever30.papers.initialization_scale.experiments.mnist_depth import (
    QUICK,
    MnistConfig,
    key,
    scores,
    sweep_claims,
    train_gain,
)
from sutskever30.papers.initialization_scale.experiments.rnn_spectral_radius import (
    RNNConfig,
    rnn_norms,
)
from sutskever30.papers.initialization_scale.experiments.signal_propagation import (
    PropagationConfig,
    theory_std,
)
from sutskever30.papers.initialization_scale.model import (
    DEFAULT_GAIN,
    PHI,
    DeepMLP,
    ElmanRNN,
    MLPConfig,
    fan_in_and_fan_out,
    gaussian_expectation,
    glorot_normal_,
    glorot_std,
    glorot_uniform_,
    he_normal_,
    he_std,
    he_uniform_,
    lyapunov_exponents,
    mean_field_std,
    orthogonal_,
    product_singular_values,
    recurrent_matrix,
    spectral_radius,
)

from .scratch import scratch_run

SHAPES = [(64, 32), (32, 64), (16, 8, 3, 3)]


def _pair(shape, seed=1):
    return torch.empty(shape), torch.empty(shape), torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    w = torch.empty(shape)
    assert fan_in_and_fan_out(w) == tinit._calculate_fan_in_and_fan_out(w)


@pytest.mark.parametrize("name", ["relu", "tanh", "linear"])
def test_default_gains_equal_calculate_gain(name):
    assert DEFAULT_GAIN[name] == pytest.approx(tinit.calculate_gain(name), rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 0.5, 5 / 3])
def test_glorot_equals_xavier(shape, gain):
    ours, ref, _ = _pair(shape)
    glorot_uniform_(ours, gain=gain, generator=torch.Generator().manual_seed(3))
    tinit.xavier_uniform_(ref, gain=gain, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    glorot_normal_(ours, gain=gain, generator=torch.Generator().manual_seed(4))
    tinit.xavier_normal_(ref, gain=gain, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "linear"])
def test_he_equals_kaiming(shape, nonlinearity):
    ours, ref, _ = _pair(shape)
    gain = DEFAULT_GAIN[nonlinearity]
    he_normal_(ours, gain=gain, generator=torch.Generator().manual_seed(5))
    tinit.kaiming_normal_(
        ref, nonlinearity=nonlinearity, generator=torch.Generator().manual_seed(5)
    )
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    he_uniform_(ours, gain=gain, generator=torch.Generator().manual_seed(6))
    tinit.kaiming_uniform_(
        ref, nonlinearity=nonlinearity, generator=torch.Generator().manual_seed(6)
    )
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_orthogonal_equals_torch(shape):
    ours, ref, _ = _pair(shape)
    orthogonal_(ours, gain=1.7, generator=torch.Generator().manual_seed(7))
    tinit.orthogonal_(ref, gain=1.7, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_stds_and_bounds_match_torch_formulas_statistically():
    fan_in, fan_out = 400, 300
    w = torch.empty(fan_out, fan_in)
    # the formulas of torch.nn.init's docstrings, typed independently
    assert glorot_std(fan_in, fan_out, 2.0) == pytest.approx(2.0 * math.sqrt(2 / 700), rel=1e-12)
    assert he_std(fan_in) == pytest.approx(tinit.calculate_gain("relu") / 20.0, rel=1e-12)
    he_normal_(w)
    assert float(w.std()) == pytest.approx(he_std(fan_in), rel=0.01)
    bound = math.sqrt(3.0) * glorot_std(fan_in, fan_out)
    glorot_uniform_(w)
    assert float(w.abs().max()) <= bound
    assert float(w.abs().max()) > 0.999 * bound
    assert float(w.std()) == pytest.approx(glorot_std(fan_in, fan_out), rel=0.01)
    ref = tinit.xavier_uniform_(torch.empty(fan_out, fan_in))
    assert float(w.std()) == pytest.approx(float(ref.std()), rel=0.02)


@pytest.mark.parametrize("shape", [(128, 64), (64, 128), (100, 100)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    w = orthogonal_(torch.empty(shape, dtype=torch.float64), gain=2.0)
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T  # (small, small)
    torch.testing.assert_close(
        gram, 4.0 * torch.eye(small, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_quadrature_reproduces_relu_closed_form():
    for q in (0.1, 1.0, 7.0):
        assert gaussian_expectation(lambda h: PHI["relu"](h) ** 2, q) == pytest.approx(
            q / 2, rel=1e-3
        )
    z = torch.randn(2_000_000, dtype=torch.float64)
    mc = float(torch.tanh(1.3 * z).pow(2).mean())
    assert gaussian_expectation(lambda h: PHI["tanh"](h) ** 2, 1.3**2) == pytest.approx(
        mc, rel=3e-3
    )


def test_one_relu_layer_scales_second_moment_by_gain_squared_over_two():
    # E[||W relu(h)||²] = gain²/2 ||h||² exactly in expectation over W, at any width
    n, draws, gain = 64, 4000, 1.3
    h = torch.randn(n, dtype=torch.float64)
    x = torch.relu(h)
    w = torch.randn(draws, n, n, dtype=torch.float64) * (gain / math.sqrt(n))
    out = (w @ x).pow(2).sum(1).mean()  # mean over draws of ||W relu(h)||²
    expected = gain**2 * x.pow(2).sum()
    torch.testing.assert_close(out, expected, rtol=0.02, atol=0)
    assert float(x.pow(2).sum() / h.pow(2).sum()) == pytest.approx(0.5, abs=0.15)


@pytest.mark.parametrize(
    "activation,gain", [("relu", 1.0), ("relu", math.sqrt(2)), ("relu", 1.8), ("tanh", 1.5)]
)
def test_mean_field_recursion_matches_forward_pass(activation, gain):
    """Measured std(h_l) of a 12-layer net (RMS over 8 weight draws) vs the recursion."""
    config = MLPConfig(in_dim=100, width=512, depth=12, activation=activation, gain=gain)
    x = torch.randn(32, 100)
    q = torch.zeros(config.depth)
    for d in range(8):
        _, preacts = DeepMLP(
            config=config, generator=torch.Generator().manual_seed(d)
        ).forward_trace(x)
        q += torch.stack([h.detach().pow(2).mean() for h in preacts]) / 8
    measured = q.sqrt().double()
    predicted = torch.from_numpy(theory_std(config, x))
    torch.testing.assert_close(measured, predicted, rtol=0.15, atol=0)
    if activation == "relu":  # the closed form: factor sqrt(gain²/2) per layer
        ratio = predicted[1:] / predicted[:-1]
        torch.testing.assert_close(ratio, torch.full_like(ratio, gain / math.sqrt(2)))


def test_mean_field_std_relu_closed_form_and_linear():
    torch.testing.assert_close(
        torch.from_numpy(mean_field_std("relu", gain=1.0, q1=4.0, depth=4)),
        torch.tensor([2.0, 2.0 / 2**0.5, 1.0, 2.0 / 2**1.5], dtype=torch.float64),
    )
    assert mean_field_std("linear", gain=2.0, q1=1.0, depth=3).tolist() == [1.0, 2.0, 4.0]


def test_deep_mlp_init_and_shapes():
    config = MLPConfig(in_dim=20, width=300, depth=3, out_dim=7, gain=0.9, init="glorot")
    net = DeepMLP(config=config)
    logits, preacts = net.forward_trace(torch.randn(5, 20))
    assert logits.shape == (5, 7) and [h.shape for h in preacts] == [(5, 300)] * 3
    for layer in [*net.hidden, net.readout]:
        assert torch.count_nonzero(layer.bias) == 0
    assert float(net.hidden[1].weight.detach().std()) == pytest.approx(
        glorot_std(300, 300, 0.9), rel=0.02
    )
    ortho = DeepMLP(config=MLPConfig(in_dim=20, width=30, depth=2, init="orthogonal"))
    w = ortho.hidden[1].weight.detach()
    torch.testing.assert_close(w.T @ w, 2.0 * torch.eye(30), atol=1e-5, rtol=0)


def test_he_mlp_overfits_one_batch():
    torch.manual_seed(0)
    net = DeepMLP(config=MLPConfig(in_dim=32, width=64, depth=10, out_dim=10))
    x, y = torch.randn(32, 32), torch.randint(0, 10, (32,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(300):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_relu_gain_scales_activations_by_m_per_layer_and_gradients_by_m_to_the_depth():
    """ReLU is positively homogeneous: with the same weight draws scaled by m, h_l scales by
    m^l, and every weight gradient of a fixed output direction by m^depth (readout included
    in the scaling: m^(depth-l+1) backwards times m^(l-1) forwards)."""
    depth, m = 12, 0.5
    x = torch.randn(16, 40, dtype=torch.float64)
    g = torch.randn(16, 10, dtype=torch.float64)  # a fixed ∂L/∂logits
    traces, grads = {}, {}
    for scale in (1.0, m):
        config = MLPConfig(in_dim=40, width=64, depth=depth, gain=scale * math.sqrt(2))
        net = DeepMLP(config=config, generator=torch.Generator().manual_seed(0)).double()
        logits, preacts = net.forward_trace(x)
        (logits * g).sum().backward()
        traces[scale] = preacts
        grads[scale] = [layer.weight.grad for layer in net.hidden]
    for layer, (h_small, h_he) in enumerate(zip(traces[m], traces[1.0], strict=True), start=1):
        # float32 draws scaled by different stds: agreement to float32 rounding
        torch.testing.assert_close(h_small, m**layer * h_he, rtol=1e-5, atol=0)
    for g_small, g_he in zip(grads[m], grads[1.0], strict=True):
        torch.testing.assert_close(g_small, m**depth * g_he, rtol=1e-5, atol=0)


def test_recurrent_matrix_has_the_requested_spectral_radius():
    gen = torch.Generator().manual_seed(0)
    for kind in ("gaussian", "orthogonal"):
        for rho in (0.5, 1.0, 1.3):
            w = recurrent_matrix(64, rho=rho, kind=kind, generator=gen)
            assert spectral_radius(w) == pytest.approx(rho, rel=1e-10)


def test_elman_rnn_equals_nn_rnn():
    torch.manual_seed(0)
    w_hh = recurrent_matrix(16, rho=0.9)
    ours = ElmanRNN(w_hh=w_hh, input_size=5, activation="tanh")
    with torch.no_grad():
        ours.b.normal_()
    ref = torch.nn.RNN(5, 16, nonlinearity="tanh", dtype=torch.float64)
    with torch.no_grad():
        ref.weight_hh_l0.copy_(ours.w_hh)
        ref.weight_ih_l0.copy_(ours.w_xh)
        ref.bias_ih_l0.copy_(ours.b)
        ref.bias_hh_l0.zero_()
    x, h0 = torch.randn(12, 3, 5, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64)
    out, _ = ref(x, h0[None])
    torch.testing.assert_close(ours(x, h0)[1:], out, rtol=1e-12, atol=1e-12)


def test_linear_rnn_state_is_matrix_power():
    w = recurrent_matrix(32, rho=1.05)
    h0 = torch.randn(4, 32, dtype=torch.float64)
    states = ElmanRNN(w_hh=w, input_size=1, activation="linear")(
        torch.zeros(30, 4, 1, dtype=torch.float64), h0
    )
    torch.testing.assert_close(states[-1], h0 @ torch.linalg.matrix_power(w, 30).T)


def test_rnn_norms_orthogonal_is_isometric():
    w = recurrent_matrix(32, rho=1.0, kind="orthogonal")
    fwd, bwd = rnn_norms(w, activation="linear", steps=50, h0=torch.randn(3, 32, dtype=w.dtype))
    torch.testing.assert_close(torch.from_numpy(fwd), torch.zeros(51, dtype=torch.float64))
    torch.testing.assert_close(torch.from_numpy(bwd), torch.zeros(51, dtype=torch.float64))


def test_products_orthogonal_flat_gaussian_mean_square_one():
    gen = torch.Generator().manual_seed(0)
    ortho = product_singular_values(64, (1, 30), kind="orthogonal", generator=gen)
    for s in ortho.values():
        torch.testing.assert_close(s, torch.ones(64, dtype=torch.float64), atol=1e-12, rtol=0)
    mean_sq = torch.stack(
        [
            product_singular_values(64, (2,), kind="gaussian", generator=gen)[2].pow(2).mean()
            for _ in range(20)
        ]
    ).mean()
    assert float(mean_sq) == pytest.approx(1.0, abs=0.05)  # E||W2 W1 x||² = ||x||²


def test_lyapunov_exponents_match_qr_iteration():
    """Newman's formula vs the exponents measured by repeated QR of a long product."""
    n, steps = 8, 4000
    gen = torch.Generator().manual_seed(0)
    q = torch.eye(n, dtype=torch.float64)
    logs = torch.zeros(n, dtype=torch.float64)
    for _ in range(steps):
        w = torch.randn(n, n, dtype=torch.float64, generator=gen) / math.sqrt(n)
        q, r = torch.linalg.qr(w @ q)
        logs += torch.diagonal(r).abs().log()
    torch.testing.assert_close(logs / steps, lyapunov_exponents(n), atol=0.03, rtol=0)


def test_configs_validate():
    with pytest.raises(ValueError):
        PropagationConfig(relu_scales=(1.0, 2.0))
    with pytest.raises(ValueError):
        MnistConfig(scales=(1.0,))
    with pytest.raises(ValueError, match="sweet_band"):
        MnistConfig(scales=(0.5, 1.0, 1.2))
    with pytest.raises(ValueError):
        RNNConfig(rhos=(0.5, 2.0))
    with pytest.raises(ValueError):
        MLPConfig(gain=-1.0)


def _run(tmp_path, cfg, experiment="mnist_depth"):
    return scratch_run(tmp_path, "initialization_scale", experiment, cfg)


def _verdicts(tmp_path, accs: dict[float, float]) -> dict[str, bool]:
    cfg = MnistConfig(scales=tuple(accs))
    run = _run(tmp_path, cfg)
    sweep_claims(run, cfg, {s: {"test_acc": a} for s, a in accs.items()})
    return {c.id: c.as_dict()["holds"] for c in run.claims}


def test_sweep_claims_read_the_curve(tmp_path):
    peaked = {0.25: 0.11, 0.5: 0.11, 0.71: 0.8, 1.0: 0.95, 1.41: 0.0, 2.0: 0.0}
    assert _verdicts(tmp_path, peaked) == {"sweet_spot": True, "both_ends_fail": True}
    # the best gain outside the band (0.5×), and a large end that trains
    shifted = {0.25: 0.11, 0.5: 0.97, 0.71: 0.9, 1.0: 0.95, 1.41: 0.9, 2.0: 0.9}
    assert _verdicts(tmp_path, shifted) == {"sweet_spot": False, "both_ends_fail": False}
    assert key(0.354) == "acc_0p354" and key(1.0) == "acc_1"


def test_a_non_finite_output_is_never_a_correct_prediction():
    net = DeepMLP(config=MLPConfig(in_dim=8, width=16, depth=2))
    x, y = torch.randn(50, 8), torch.zeros(50, dtype=torch.int64)
    with torch.no_grad():
        net.readout.weight.zero_()
        net.readout.bias.copy_(torch.arange(10.0, 0.0, -1.0))  # always predicts class 0
    assert scores(net, x, y)["test_acc"] == 1.0
    with torch.no_grad():
        net.hidden[0].weight[0, 0] = float("nan")
    assert scores(net, x, y)["test_acc"] == 0.0


def test_a_diverging_gain_is_recorded_not_raised(tmp_path):
    cfg = MnistConfig(depth=6, width=32, scales=(0.5, 1.0, 4.0), steps=20, final_window=10)
    x = torch.randn(256, 784)
    data = {"train": (x, torch.randint(0, 10, (256,))), "test": (x[:64], torch.zeros(64).long())}
    run = _run(tmp_path, cfg)
    big = train_gain(run, cfg, 8.0, data)
    assert big["diverged_at"] is not None and big["diverged_at"] < cfg.steps
    assert big["train_loss"] is None and big["test_acc"] == 0.0
    he = train_gain(run, cfg, 1.0, data)
    assert he["diverged_at"] is None and math.isfinite(he["train_loss"])


def test_bench_times_the_experiments_own_training_step(tmp_path):
    (case,) = PAPER.bench(_run(tmp_path, QUICK))
    before = [p.detach().clone() for p in case.model.parameters()]
    assert math.isfinite(case.step(0)["loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True))


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    assert (
        main(
            [
                "run",
                "initialization_scale",
                "--preset",
                "quick",
                "--out",
                str(tmp_path),
                "-q",
                "--no-publish",
            ]
        )
        == 0
    )
    for path in tmp_path.glob("initialization_scale/*/quick-*/results.json"):
        for claim in json.loads(path.read_text())["claims"]:
            if claim["asserted"]:
                assert claim["holds"], claim
    assert len(list(tmp_path.glob("initialization_scale/*/quick-*/results.json"))) == 4
