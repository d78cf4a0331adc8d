"""The assignments' networks, built from :mod:`layers` (NumPy, no autograd).

- :class:`TwoLayerNet`: affine → ReLU → affine → softmax (assignment 1).
- :class:`ThreeLayerConvNet`: conv → ReLU → 2×2 max-pool → affine → ReLU → affine →
  softmax (assignment 2); the convolution keeps the spatial size (stride 1, pad
  ``(filter_size - 1) / 2``).

Both hold ``params`` (weights drawn from N(0, weight_scale²), biases zero) and a
``loss(x, y)`` that returns the class scores without ``y`` and ``(loss, grads)`` with it;
the loss is the softmax cross-entropy plus ``0.5 · reg · Σ‖W‖²`` (the assignment's ½).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sutskever30.papers.cs231n.layers import (
    affine_backward,
    affine_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    softmax_loss,
)


def l2_penalty(params: dict[str, np.ndarray], reg: float, names: tuple[str, ...]) -> float:
    """``0.5 · reg · Σ‖W‖²``, as a NumPy scalar of the weights' precision."""
    return 0.5 * reg * sum(np.sum(params[n] ** 2) for n in names)


class TwoLayerNet:
    def __init__(
        self,
        *,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
        rng: np.random.Generator,
    ) -> None:
        self.reg = reg
        self.dtype = dtype
        self.params = {
            "W1": weight_scale * rng.standard_normal((input_dim, hidden_dim)),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b2": np.zeros(num_classes),
        }
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}

    def loss(self, x: np.ndarray, y: np.ndarray | None = None):
        p = self.params
        h, h_cache = affine_relu_forward(x.astype(self.dtype, copy=False), p["W1"], p["b1"])
        scores, s_cache = affine_forward(h, p["W2"], p["b2"])  # (N, C)
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += l2_penalty(p, self.reg, ("W1", "W2"))
        grads: dict[str, np.ndarray] = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, s_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dh, h_cache)
        grads["W1"] += self.reg * p["W1"]
        grads["W2"] += self.reg * p["W2"]
        return loss, grads


class ThreeLayerConvNet:
    def __init__(
        self,
        *,
        input_dim: tuple[int, int, int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
        rng: np.random.Generator,
    ) -> None:
        if filter_size % 2 == 0:
            raise ValueError("filter_size must be odd to keep the spatial size")
        c, h, w = input_dim
        if h % 2 or w % 2:
            raise ValueError("input height and width must be even for the 2x2 pool")
        self.reg = reg
        self.dtype = dtype
        self.pad = (filter_size - 1) // 2
        pooled = num_filters * (h // 2) * (w // 2)
        params = {
            "W1": weight_scale * rng.standard_normal((num_filters, c, filter_size, filter_size)),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * rng.standard_normal((pooled, hidden_dim)),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b3": np.zeros(num_classes),
        }
        self.params = {k: v.astype(dtype) for k, v in params.items()}

    def loss(self, x: np.ndarray, y: np.ndarray | None = None):
        p = self.params
        x = x.astype(self.dtype, copy=False)
        a1, c1 = conv_relu_pool_forward(x, p["W1"], p["b1"], pad=self.pad)  # (N, F, H/2, W/2)
        a2, c2 = affine_relu_forward(a1, p["W2"], p["b2"])  # (N, hidden)
        scores, c3 = affine_forward(a2, p["W3"], p["b3"])  # (N, C)
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += l2_penalty(p, self.reg, ("W1", "W2", "W3"))
        grads: dict[str, np.ndarray] = {}
        da2, grads["W3"], grads["b3"] = affine_backward(dscores, c3)
        da1, grads["W2"], grads["b2"] = affine_relu_backward(da2, c2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(da1, c1, input_grad=False)
        for name in ("W1", "W2", "W3"):
            grads[name] += self.reg * p[name]
        return loss, grads
