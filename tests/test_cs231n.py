"""CS231n (NumPy, no autograd): every layer's backward against torch autograd (copied
inputs, float64) and numeric gradients, losses against loop versions and torch, kNN
distances against the two-loop reference, update rules against torch.optim, the Solver
learning, and the quick claims (slow)."""

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.papers.cs231n import layers as L
from sutskever30.papers.cs231n.experiments.gradcheck import (
    GradcheckConfig,
    layer_errors,
    layer_specs,
    network_errors,
)
from sutskever30.papers.cs231n.experiments.knn import KnnConfig
from sutskever30.papers.cs231n.experiments.nets import NetsConfig
from sutskever30.papers.cs231n.gradcheck import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from sutskever30.papers.cs231n.knn import (
    KNearestNeighbor,
    compute_distances_no_loops,
    compute_distances_one_loop,
    compute_distances_two_loops,
    cross_validate,
    nearest_labels,
    vote,
)
from sutskever30.papers.cs231n.linear import (
    LinearClassifier,
    softmax_loss_naive,
    softmax_loss_vectorized,
    svm_loss_naive,
    svm_loss_vectorized,
)
from sutskever30.papers.cs231n.nets import ThreeLayerConvNet, TwoLayerNet
from sutskever30.papers.cs231n.solver import Solver, adam, rmsprop, sgd, sgd_momentum

from .conftest import has_dataset

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sutskever30" / "papers" / "cs231n"
NUMPY_MODULES = ("knn", "linear", "layers", "solver", "gradcheck", "nets")
TIGHT = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def close(ours, theirs, **tol) -> None:
    torch.testing.assert_close(torch.as_tensor(ours), theirs.detach(), **(tol or TIGHT))


# -- NumPy only --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", NUMPY_MODULES)
def test_model_modules_import_numpy_only(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= {"__future__", "collections", "dataclasses", "typing", "numpy", "sutskever30"}


def test_importing_the_numpy_modules_loads_no_torch():
    code = (
        "import sys\n"
        + "".join(f"import sutskever30.papers.cs231n.{m}\n" for m in NUMPY_MODULES)
        + "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- layers vs torch autograd ------------------------------------------------------------------


def test_affine_equals_torch(rng):
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    tx, tw, tb = t(x), t(w), t(b)
    ref = tx.reshape(4, -1) @ tw + tb
    ref.backward(torch.tensor(dout))
    close(out, ref)
    for ours, theirs in zip(L.affine_backward(dout, cache), (tx, tw, tb), strict=True):
        close(ours, theirs.grad)


def test_relu_equals_torch(rng):
    x = rng.standard_normal((5, 7))
    out, cache = L.relu_forward(x)
    dout = rng.standard_normal(out.shape)
    tx = t(x)
    ref = F.relu(tx)
    ref.backward(torch.tensor(dout))
    close(out, ref)
    close(L.relu_backward(dout, cache), tx.grad)


@pytest.mark.parametrize("stride,pad,size", [(1, 0, 5), (1, 1, 5), (2, 1, 7), (1, 2, 6)])
def test_conv_equals_torch(rng, stride, pad, size):
    x, w, b = (
        rng.standard_normal((2, 3, size, size)),
        rng.standard_normal((4, 3, 3, 3)),
        rng.standard_normal(4),
    )
    out, cache = L.conv_forward(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    tx, tw, tb = t(x), t(w), t(b)
    ref = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    ref.backward(torch.tensor(dout))
    close(out, ref)
    for ours, theirs in zip(L.conv_backward(dout, cache), (tx, tw, tb), strict=True):
        close(ours, theirs.grad)
    assert L.conv_backward(dout, cache, input_grad=False)[0] is None


@pytest.mark.parametrize("pool,stride,size", [(2, 2, 8), (3, 1, 6), (3, 2, 7), (2, 1, 5)])
def test_max_pool_equals_torch(rng, pool, stride, size):
    x = rng.standard_normal((2, 3, size, size))
    out, cache = L.max_pool_forward(x, pool_height=pool, pool_width=pool, stride=stride)
    dout = rng.standard_normal(out.shape)
    tx = t(x)
    ref = F.max_pool2d(tx, pool, stride)
    ref.backward(torch.tensor(dout))
    close(out, ref)
    close(L.max_pool_backward(dout, cache), tx.grad)


def test_max_pool_routes_the_gradient_to_one_element_per_window():
    x = np.zeros((1, 1, 2, 2))  # a tie: all four equal (as after a ReLU)
    out, cache = L.max_pool_forward(x)
    dx = L.max_pool_backward(np.ones_like(out), cache)
    assert dx.sum() == 1 and dx[0, 0, 0, 0] == 1  # the first, as argmax


def test_batchnorm_train_equals_torch_and_updates_running_stats(rng):
    x, gamma, beta = (
        3 * rng.standard_normal((8, 5)) + 2,
        rng.standard_normal(5),
        rng.standard_normal(5),
    )
    state = L.BatchNormState.zeros(5)
    out, cache = L.batchnorm_forward(x, gamma, beta, state, train=True)
    dout = rng.standard_normal(out.shape)
    tx, tg, tb = t(x), t(gamma), t(beta)
    ref = F.batch_norm(tx, None, None, tg, tb, training=True, eps=state.eps)
    ref.backward(torch.tensor(dout))
    close(out, ref)
    for ours, theirs in zip(L.batchnorm_backward(dout, cache), (tx, tg, tb), strict=True):
        close(ours, theirs.grad)
    np.testing.assert_allclose(state.running_mean, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state.running_var, 0.1 * x.var(axis=0), rtol=1e-12)


def test_batchnorm_test_mode_uses_running_stats_like_torch(rng):
    x, gamma, beta = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), 1 + rng.random(4)
    state = L.BatchNormState(mean.copy(), var.copy())
    out, cache = L.batchnorm_forward(x, gamma, beta, state, train=False)
    dout = rng.standard_normal(out.shape)
    tx, tg, tb = t(x), t(gamma), t(beta)
    ref = F.batch_norm(
        tx, torch.tensor(mean), torch.tensor(var), tg, tb, training=False, eps=state.eps
    )
    ref.backward(torch.tensor(dout))
    close(out, ref)
    for ours, theirs in zip(L.batchnorm_backward(dout, cache), (tx, tg, tb), strict=True):
        close(ours, theirs.grad)
    np.testing.assert_array_equal(state.running_mean, mean)  # test mode does not update


def test_spatial_batchnorm_equals_torch(rng):
    x, gamma, beta = (
        2 * rng.standard_normal((3, 4, 5, 6)) + 1,
        rng.standard_normal(4),
        rng.standard_normal(4),
    )
    out, cache = L.spatial_batchnorm_forward(x, gamma, beta, L.BatchNormState.zeros(4), train=True)
    dout = rng.standard_normal(out.shape)
    tx, tg, tb = t(x), t(gamma), t(beta)
    ref = F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    ref.backward(torch.tensor(dout))
    close(out, ref)
    for ours, theirs in zip(L.spatial_batchnorm_backward(dout, cache), (tx, tg, tb), strict=True):
        close(ours, theirs.grad)


def test_inverted_dropout_keeps_the_expectation_and_is_identity_at_test(rng):
    x = np.ones((400, 500))
    out, cache = L.dropout_forward(x, p=0.3, train=True, rng=rng)
    assert abs((out > 0).mean() - 0.3) < 0.01  # p is the keep probability
    assert abs(out.mean() - 1.0) < 0.02  # E[out] = x: scaled by 1/p at training time
    dout = rng.standard_normal(x.shape)
    tx = t(x)
    (tx * torch.tensor(cache[0])).backward(torch.tensor(dout))
    close(L.dropout_backward(dout, cache), tx.grad)
    test_out, test_cache = L.dropout_forward(x, p=0.3, train=False)
    np.testing.assert_array_equal(test_out, x)
    np.testing.assert_array_equal(L.dropout_backward(dout, test_cache), dout)


def test_softmax_loss_equals_cross_entropy(rng):
    scores, y = 3 * rng.standard_normal((20, 10)), rng.integers(0, 10, 20)
    loss, dscores = L.softmax_loss(scores, y)
    ts = t(scores)
    ref = F.cross_entropy(ts, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    close(dscores, ts.grad)


def test_svm_loss_equals_multi_margin_loss(rng):
    scores, y = rng.standard_normal((20, 10)), rng.integers(0, 10, 20)
    loss, dscores = L.svm_loss(scores, y)
    ts = t(scores)
    # torch averages the hinge terms over classes too: sum over the batch, / N, × C
    ref = F.multi_margin_loss(ts, torch.tensor(y), margin=1.0, reduction="sum") * 10 / 20
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    close(dscores, ts.grad)


def test_initial_softmax_loss_is_ln_c(rng):
    assert L.softmax_loss(np.zeros((7, 10)), rng.integers(0, 10, 7))[0] == pytest.approx(
        math.log(10), rel=1e-14
    )
    assert L.svm_loss(np.zeros((7, 10)), rng.integers(0, 10, 7))[0] == pytest.approx(9.0)


def torch_two_layer(net: TwoLayerNet, x: np.ndarray, y: np.ndarray):
    p = {k: t(v) for k, v in net.params.items()}
    h = F.relu(t(x, False).reshape(len(x), -1) @ p["W1"] + p["b1"])
    loss = F.cross_entropy(h @ p["W2"] + p["b2"], torch.tensor(y))
    loss = loss + 0.5 * net.reg * (p["W1"].square().sum() + p["W2"].square().sum())
    loss.backward()
    return loss, p


def torch_convnet(net: ThreeLayerConvNet, x: np.ndarray, y: np.ndarray):
    p = {k: t(v) for k, v in net.params.items()}
    a = F.max_pool2d(F.relu(F.conv2d(t(x, False), p["W1"], p["b1"], padding=net.pad)), 2, 2)
    h = F.relu(a.reshape(len(x), -1) @ p["W2"] + p["b2"])
    loss = F.cross_entropy(h @ p["W3"] + p["b3"], torch.tensor(y))
    loss = loss + 0.5 * net.reg * sum(p[k].square().sum() for k in ("W1", "W2", "W3"))
    loss.backward()
    return loss, p


def test_nets_equal_torch_autograd(rng):
    x, y = rng.standard_normal((6, 3, 8, 8)), rng.integers(0, 10, 6)
    two = TwoLayerNet(
        input_dim=192, hidden_dim=12, weight_scale=0.1, reg=0.3, dtype=np.float64, rng=rng
    )
    conv = ThreeLayerConvNet(
        input_dim=(3, 8, 8),
        num_filters=4,
        filter_size=3,
        hidden_dim=9,
        weight_scale=0.1,
        reg=0.3,
        dtype=np.float64,
        rng=rng,
    )
    for net, reference in ((two, torch_two_layer), (conv, torch_convnet)):
        loss, grads = net.loss(x, y)
        ref_loss, ref_params = reference(net, x, y)
        assert loss == pytest.approx(ref_loss.item(), rel=1e-12)
        assert set(grads) == set(ref_params)
        for k, v in ref_params.items():
            close(grads[k], v.grad)


# -- numeric gradients ----------------------------------------------------------------------


def test_numeric_gradient_of_known_functions():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(
        eval_numerical_gradient(lambda v: np.sum(v**3), x), 3 * x**2, rtol=1e-8
    )
    df = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(
        eval_numerical_gradient_array(np.sin, x, df), np.cos(x) * df, rtol=1e-8
    )
    np.testing.assert_array_equal(x, [0.5, -1.0, 2.0])  # restored after perturbing
    assert rel_error(np.array([1.0]), np.array([1.0 + 2e-7])) == pytest.approx(1e-7, rel=1e-3)


SPECS = list(layer_specs(GradcheckConfig(), np.random.default_rng(0)))


@pytest.fixture(scope="module")
def layer_rel_errors():
    return layer_errors(GradcheckConfig(), np.random.default_rng(0))


@pytest.mark.parametrize("name", SPECS)
def test_every_layer_matches_numeric_gradient(layer_rel_errors, name):
    assert layer_rel_errors[name] < 1e-7, layer_rel_errors


def test_networks_match_numeric_gradient():
    errors = network_errors(GradcheckConfig(), np.random.default_rng(1))
    assert max(errors.values()) < 1e-7, errors


def test_im2col_and_col2im_are_adjoint(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    cols = L.im2col(x, 3, 2, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert np.sum(cols * c) == pytest.approx(
        np.sum(x * L.col2im(c, x.shape, 3, 2, 2, 1)), rel=1e-12
    )


# -- linear classifiers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "naive,vectorized",
    [(svm_loss_naive, svm_loss_vectorized), (softmax_loss_naive, softmax_loss_vectorized)],
)
def test_vectorized_losses_equal_the_loops(rng, naive, vectorized):
    w, x, y = (
        1e-2 * rng.standard_normal((30, 10)),
        rng.standard_normal((40, 30)),
        rng.integers(0, 10, 40),
    )
    loss_n, dw_n = naive(w, x, y, 0.05)
    loss_v, dw_v = vectorized(w, x, y, 0.05)
    assert loss_v == pytest.approx(loss_n, rel=1e-12)
    np.testing.assert_allclose(dw_v, dw_n, rtol=1e-10, atol=1e-14)


def test_linear_classifier_learns_a_separable_problem(rng):
    centers = 4 * rng.standard_normal((3, 8))
    y = rng.integers(0, 3, 300)
    x = centers[y] + rng.standard_normal((300, 8))
    clf = LinearClassifier(loss="softmax", dim=8, num_classes=3, rng=rng)
    history = clf.train(x, y, learning_rate=0.1, reg=1e-4, num_iters=200, batch_size=50)
    assert history[-1] < 0.5 * history[0]
    assert np.mean(clf.predict(x) == y) > 0.9


# -- kNN -------------------------------------------------------------------------------------


def test_distance_implementations_agree(rng):
    x_train, x = (
        rng.integers(0, 256, (30, 12)).astype(float),
        rng.integers(0, 256, (7, 12)).astype(float),
    )
    ref = compute_distances_two_loops(x_train, x)
    np.testing.assert_allclose(compute_distances_one_loop(x_train, x), ref, rtol=1e-12)
    np.testing.assert_allclose(compute_distances_no_loops(x_train, x), ref, rtol=1e-9, atol=1e-6)


def test_knn_predictions_equal_a_per_row_vote(rng):
    x_train, y_train = rng.standard_normal((50, 6)), rng.integers(0, 4, 50)
    x = rng.standard_normal((20, 6))
    dists = compute_distances_two_loops(x_train, x)
    for k in (1, 3, 7):
        expected = [np.argmax(np.bincount(y_train[np.argsort(d)[:k]], minlength=4)) for d in dists]
        knn = KNearestNeighbor(num_classes=4, chunk=6).train(x_train, y_train)
        np.testing.assert_array_equal(knn.predict(x, k), expected)


def test_vote_breaks_ties_to_the_smallest_label():
    assert vote(np.array([[3, 1, 1, 3], [2, 0, 5, 6]]), 7).tolist() == [1, 0]
    dists = np.array([[0.5, 0.1, 0.9]])
    assert nearest_labels(dists, np.array([7, 8, 9]), 2).tolist() == [[8, 7]]


def test_one_nn_on_its_own_training_set_is_perfect_and_cv_shape(rng):
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    assert (KNearestNeighbor(num_classes=3).train(x, y).predict(x, 1) == y).all()
    acc = cross_validate(x, y, (1, 3), num_folds=4, num_classes=3)
    assert acc.shape == (4, 2) and ((acc >= 0) & (acc <= 1)).all()


# -- update rules vs torch.optim ----------------------------------------------------------------


def _torch_step(opt_cls, w, dw, state, **kwargs):
    p = torch.nn.Parameter(torch.tensor(w))
    opt = opt_cls([p], **kwargs)
    p.grad = torch.tensor(dw)
    if state:
        opt.state[p].update(state)
    opt.step()
    return p.detach().numpy()


def test_sgd_and_momentum_equal_torch(rng):
    w, dw, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours, _ = sgd(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(ours, _torch_step(torch.optim.SGD, w, dw, {}, lr=0.1), rtol=1e-12)
    ours, _ = sgd_momentum(w, dw, {"learning_rate": 0.1, "momentum": 0.9, "velocity": v})
    # torch keeps buf with v = -lr · buf
    ref = _torch_step(
        torch.optim.SGD, w, dw, {"momentum_buffer": torch.tensor(-v / 0.1)}, lr=0.1, momentum=0.9
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_rmsprop_one_step_equals_torch(rng):
    w, dw, cache = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.random((4, 3))
    ours, cfg = rmsprop(
        w, dw, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8, "cache": cache}
    )
    ref = _torch_step(
        torch.optim.RMSprop,
        w,
        dw,
        {"step": torch.tensor(3.0), "square_avg": torch.tensor(cache)},
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    np.testing.assert_allclose(cfg["cache"], 0.99 * cache + 0.01 * dw**2, rtol=1e-12)


@pytest.mark.parametrize("t_before", [0, 5])
def test_adam_one_step_equals_torch(rng, t_before):
    w, dw = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    m, v = (
        (rng.standard_normal((4, 3)), rng.random((4, 3))) if t_before else (np.zeros((4, 3)),) * 2
    )
    config = {
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "m": m,
        "v": v,
        "t": t_before,
    }
    ours, cfg = adam(w, dw, config)
    state = {
        "step": torch.tensor(float(t_before)),
        "exp_avg": torch.tensor(m),
        "exp_avg_sq": torch.tensor(v),
    }
    ref = _torch_step(torch.optim.Adam, w, dw, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert cfg["t"] == t_before + 1


# -- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["sgd_momentum", "rmsprop", "adam"])
def test_solver_overfits_a_small_set(rng, rule):
    x, y = rng.standard_normal((50, 3, 8, 8)), rng.integers(0, 10, 50)
    net = ThreeLayerConvNet(
        input_dim=(3, 8, 8), num_filters=8, filter_size=3, hidden_dim=50, weight_scale=0.05, rng=rng
    )
    data = {"X_train": x, "y_train": y, "X_val": x[:10], "y_val": y[:10]}
    lr = {"sgd_momentum": 0.05, "rmsprop": 3e-3, "adam": 1e-2}[rule]
    solver = Solver(
        net,
        data,
        update_rule=rule,
        optim_config={"learning_rate": lr},
        batch_size=25,
        num_epochs=30,
        seed=0,
    ).train()
    assert solver.loss_history[-1] < 0.2 * solver.loss_history[0]
    assert solver.train_acc_history[-1] == 1.0


def test_solver_is_deterministic(rng):
    x, y = rng.standard_normal((40, 20)), rng.integers(0, 10, 40)
    data = {"X_train": x, "y_train": y, "X_val": x, "y_val": y}
    runs = []
    for _ in range(2):
        net = TwoLayerNet(
            input_dim=20, hidden_dim=8, rng=np.random.default_rng(1), dtype=np.float64
        )
        runs.append(
            Solver(net, data, update_rule="adam", batch_size=10, num_epochs=2, seed=3)
            .train()
            .loss_history
        )
    assert runs[0] == runs[1]


# -- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: GradcheckConfig(h=0.0),
        lambda: GradcheckConfig(batch=2),
        lambda: KnnConfig(num_folds=1),
        lambda: KnnConfig(k_choices=(0, 1)),
        lambda: KnnConfig(course_low=0.3, course_high=0.2),
        lambda: NetsConfig(update_rule="lbfgs"),
        lambda: NetsConfig(filter_size=4),
        lambda: NetsConfig(learning_rates=()),
        lambda: NetsConfig(num_train=49_500, num_val=1_000),
    ],
)
def test_configs_reject_meaningless_values(make):
    with pytest.raises(ValueError):
        make()


def test_layers_reject_shapes_that_do_not_tile(rng):
    with pytest.raises(ValueError):
        L.conv_forward(
            rng.standard_normal((1, 1, 6, 6)),
            rng.standard_normal((1, 1, 3, 3)),
            np.zeros(1),
            stride=2,
        )
    with pytest.raises(ValueError):
        L.dropout_forward(np.ones(3), p=0.0, train=True, rng=rng)


# -- quick claims (slow) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs231n")
    assert (
        main(
            ["run", "cs231n", "--out", str(out), "-q", "--no-publish", "--results", str(out / "r")]
        )
        == 0
    )
    claims = {}
    for results in out.glob("cs231n/*/*/results.json"):
        claims |= {c["id"]: c for c in json.loads(results.read_text())["claims"] if c["asserted"]}
    return claims


@pytest.mark.skipif(not has_dataset("cifar10"), reason="no CIFAR-10 copy")
@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        "layers_backward_match_numeric",
        "networks_backward_match_numeric",
        "knn_accuracy_in_course_band",
        "initial_softmax_loss_ln10",
        "two_layer_net_beats_knn",
        "convnet_beats_two_layer_net",
    ],
)
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
