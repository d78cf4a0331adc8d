"""Every layer's backward pass against numeric gradients, in float64 (notes: "Neural
Networks 3", gradient checks; each assignment checks its layers this way).

Each layer is run forward on random inputs, an upstream gradient ``dout`` is drawn, and
the analytic input gradients of its float64 backward pass are compared with centered
differences (:mod:`..gradcheck`, h = 1e-5). The losses and networks are scalar functions,
checked with the scalar form. The sizes are the assignments' small check sizes; the
scores fed to the losses are drawn at the scale of an initialized net (std 1e-3), as the
assignment's softmax check does.

Deviation: the numeric reference evaluates the forward pass in extended precision
(``np.longdouble``). In float64 the round-off of the difference quotient, ~1e-16 · |f| / h,
is 1e-7–1e-6 of the smallest gradient elements, which says nothing about the backward
pass; the float64-reference errors are kept in the run's summary beside the claims.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.cs231n import layers as L
from sutskever30.papers.cs231n.gradcheck import (
    GOOD,
    WRONG,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from sutskever30.papers.cs231n.linear import softmax_loss_vectorized, svm_loss_vectorized
from sutskever30.papers.cs231n.nets import ThreeLayerConvNet, TwoLayerNet

Forward = Callable[..., tuple[np.ndarray, L.Cache]]
Backward = Callable[[np.ndarray, L.Cache], object]


@dataclass(frozen=True)
class GradcheckConfig:
    h: float = 1e-5  # finite-difference step
    threshold: float = GOOD  # the notes: below 1e-7 the gradient is right
    batch: int = 4  # examples per check

    def __post_init__(self) -> None:
        if not 0 < self.h < 1e-2:
            raise ValueError(f"h must be in (0, 1e-2), got {self.h}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.batch < 3:
            # with two examples batchnorm's output is ±1 whatever x is: dx is all round-off
            raise ValueError("batch must be >= 3")


def check_layer(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray],
    rng: np.random.Generator,
    h: float,
    reference_dtype: type = np.float64,
) -> float:
    """Max relative error over the layer's inputs (in ``inputs``' order, the order its
    backward returns them)."""
    out, cache = forward(**inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    ref = {k: v.astype(reference_dtype) for k, v in inputs.items()}
    errors = []
    for (name, value), analytic in zip(ref.items(), grads, strict=True):

        def f(v: np.ndarray, name: str = name) -> np.ndarray:
            return forward(**{**ref, name: v})[0]

        numeric = eval_numerical_gradient_array(f, value, dout.astype(reference_dtype), h)
        errors.append(rel_error(analytic, numeric))
    return max(errors)


def check_scalar(
    loss: Callable[[dict[str, np.ndarray]], tuple[float, dict[str, np.ndarray]]],
    params: dict[str, np.ndarray],
    h: float,
    reference_dtype: type = np.float64,
) -> float:
    """Max relative error of the gradients ``loss(params)`` returns, over every array of
    ``params``; the numeric ones perturb a ``reference_dtype`` copy in place."""
    _, grads = loss(params)
    ref = {k: v.astype(reference_dtype) for k, v in params.items()}
    return max(
        rel_error(grads[name], eval_numerical_gradient(lambda _: loss(ref)[0], ref[name], h))
        for name in params
    )


def layer_specs(
    cfg: GradcheckConfig, rng: np.random.Generator
) -> dict[str, tuple[Forward, Backward, dict[str, np.ndarray]]]:
    """Each layer (and loss) as (forward, backward, inputs), at the assignments' check sizes."""
    n, randn = cfg.batch, rng.standard_normal
    d = 5  # the assignment's batchnorm check: x = 5·randn(4, 5) + 12
    running = L.BatchNormState(randn(d), 1 + rng.random(d))
    mask_seed = int(rng.integers(2**31))
    num_classes = 10
    y = rng.integers(0, num_classes, 50)

    def loss_layer(loss_fn):
        def forward(scores: np.ndarray) -> tuple[np.ndarray, L.Cache]:
            loss, dscores = loss_fn(scores, y)
            return np.asarray(loss), (dscores,)

        return forward, lambda dout, cache: cache[0] * dout

    specs = {
        "affine": (
            L.affine_forward,
            L.affine_backward,
            {"x": randn((n, 2, 3)), "w": randn((6, 5)), "b": randn(5)},
        ),
        "relu": (L.relu_forward, L.relu_backward, {"x": randn((n, 10))}),
        "conv": (
            lambda x, w, b: L.conv_forward(x, w, b, stride=2, pad=1),
            L.conv_backward,
            {"x": randn((n, 3, 7, 7)), "w": randn((4, 3, 3, 3)), "b": randn(4)},
        ),
        "max_pool": (L.max_pool_forward, L.max_pool_backward, {"x": randn((n, 3, 8, 8))}),
    }
    for train in (True, False):
        specs[f"batchnorm_{'train' if train else 'test'}"] = (
            lambda x, gamma, beta, train=train: L.batchnorm_forward(
                x, gamma, beta, running, train=train
            ),
            L.batchnorm_backward,
            {"x": 5 * randn((n, d)) + 12, "gamma": randn(d), "beta": randn(d)},
        )
    specs["spatial_batchnorm"] = (
        lambda x, gamma, beta: L.spatial_batchnorm_forward(
            x, gamma, beta, L.BatchNormState.zeros(3), train=True
        ),
        L.spatial_batchnorm_backward,
        {"x": 5 * randn((2, 3, 4, 5)) + 12, "gamma": randn(3), "beta": randn(3)},
    )
    specs["dropout"] = (
        lambda x: L.dropout_forward(x, p=0.7, train=True, rng=np.random.default_rng(mask_seed)),
        L.dropout_backward,
        {"x": randn((n, 10))},
    )
    specs["affine_relu"] = (
        L.affine_relu_forward,
        L.affine_relu_backward,
        {"x": randn((n, 2, 3)), "w": randn((6, 8)), "b": randn(8)},
    )
    specs["conv_relu_pool"] = (
        lambda x, w, b: L.conv_relu_pool_forward(x, w, b, pad=1),
        L.conv_relu_pool_backward,
        {"x": randn((2, 3, 8, 8)), "w": randn((3, 3, 3, 3)), "b": randn(3)},
    )
    for name, loss_fn in (("softmax_loss", L.softmax_loss), ("svm_loss", L.svm_loss)):
        forward, backward = loss_layer(loss_fn)
        specs[name] = (forward, backward, {"scores": 1e-3 * randn((50, num_classes))})
    return specs


def layer_errors(
    cfg: GradcheckConfig, rng: np.random.Generator, reference_dtype: type = np.longdouble
) -> dict[str, float]:
    """Max relative error of every layer and loss, keyed by name."""
    return {
        name: check_layer(forward, backward, inputs, rng, cfg.h, reference_dtype)
        for name, (forward, backward, inputs) in layer_specs(cfg, rng).items()
    }


def network_errors(
    cfg: GradcheckConfig, rng: np.random.Generator, reference_dtype: type = np.longdouble
) -> dict[str, float]:
    """The linear classifiers' dW and both networks' parameter gradients (with reg), on a
    batch of random 3×8×8 images."""
    n, num_classes = cfg.batch, 10
    x, y = rng.standard_normal((n, 3, 8, 8)), rng.integers(0, num_classes, n)
    x_flat = x.reshape(n, -1)
    errors = {}
    for name, loss_fn in (
        ("linear_svm", svm_loss_vectorized),
        ("linear_softmax", softmax_loss_vectorized),
    ):

        def linear(params, loss_fn=loss_fn) -> tuple[float, dict[str, np.ndarray]]:
            value, dw = loss_fn(params["W"], x_flat.astype(params["W"].dtype), y, 0.1)
            return value, {"W": dw}

        w = 1e-3 * rng.standard_normal((x_flat.shape[1], num_classes))
        errors[name] = check_scalar(linear, {"W": w}, cfg.h, reference_dtype)
    two = TwoLayerNet(
        input_dim=x_flat.shape[1],
        hidden_dim=10,
        num_classes=num_classes,
        weight_scale=1e-1,
        reg=0.1,
        dtype=np.float64,
        rng=rng,
    )
    conv = ThreeLayerConvNet(
        input_dim=(3, 8, 8),
        num_filters=3,
        filter_size=3,
        hidden_dim=7,
        num_classes=num_classes,
        weight_scale=1e-1,
        reg=0.1,
        dtype=np.float64,
        rng=rng,
    )
    for name, net in (("two_layer_net", two), ("three_layer_convnet", conv)):

        def net_loss(params, net=net) -> tuple[float, dict[str, np.ndarray]]:
            net.params, net.dtype = params, params["W1"].dtype
            return net.loss(x, y)

        errors[name] = check_scalar(net_loss, dict(net.params), cfg.h, reference_dtype)
    return errors


def plot_errors(run: Run, errors: dict[str, float], cfg: GradcheckConfig) -> None:
    fig, (ax,) = plots.figure(width=7.0, height=4.0)
    names = list(errors)
    values = np.maximum([errors[k] for k in names], 1e-16)
    ax.barh(names, values, color="tab:blue")
    ax.axvline(cfg.threshold, color="tab:green", ls="--", label=f"good: < {cfg.threshold:g}")
    ax.axvline(WRONG, color="tab:red", ls=":", label=f"wrong: > {WRONG:g}")
    ax.set_xscale("log")
    ax.set_xlabel("max relative error, analytic vs numeric gradient (float64)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    plots.save(fig, run.plot_path("gradcheck.png"))


def run_gradcheck(run: Run, cfg: GradcheckConfig) -> None:
    layers = layer_errors(cfg, np.random.default_rng(run.seed))
    nets = network_errors(cfg, np.random.default_rng(run.seed + 1))
    run.summary["rel_errors"] = {**layers, **nets}
    # the same checks with a float64 reference: round-off of the difference quotient, not
    # the backward pass, sets these (README: Gradient checks)
    run.summary["rel_errors_float64_reference"] = {
        **layer_errors(cfg, np.random.default_rng(run.seed), np.float64),
        **network_errors(cfg, np.random.default_rng(run.seed + 1), np.float64),
    }
    plot_errors(run, {**layers, **nets}, cfg)
    paper = "notes, gradient checks: relative error < 1e-7 is good, > 1e-2 is probably wrong"
    run.claim(
        "layers_backward_match_numeric",
        f"every layer's and loss's float64 backward pass matches centered differences: max "
        f"relative error < {cfg.threshold:g}",
        paper,
        {**layers, "threshold": cfg.threshold},
        f"max({', '.join(layers)}) < threshold",
    )
    run.claim(
        "networks_backward_match_numeric",
        f"the linear classifiers' and both networks' float64 parameter gradients match "
        f"centered differences: max relative error < {cfg.threshold:g}",
        paper,
        {**nets, "threshold": cfg.threshold},
        f"max({', '.join(nets)}) < threshold",
    )


EXPERIMENT = Experiment(
    name="gradcheck",
    description="every layer's, loss's and net's backward pass vs numeric gradients (float64)",
    presets={
        "smoke": GradcheckConfig(batch=3),
        "quick": GradcheckConfig(),
        "full": GradcheckConfig(batch=8),
    },
    run=run_gradcheck,
    quick_minutes=0.15,
)
