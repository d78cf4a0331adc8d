"""Layers as forward/backward pairs with caches (CS231n assignments 1–2), NumPy only.

Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward(dout, cache)``
returns the gradient of the loss with respect to each input, given ``dout = dL/dout``.
The losses return ``(loss, dscores)`` directly. Images are ``(N, C, H, W)``.

Key equations (the course notes, "Backpropagation, Intuitions" and "Convolutional Networks"):
- affine: ``out = x W + b``; ``dx = dout Wᵀ``, ``dW = xᵀ dout``, ``db = Σ_n dout``.
- convolution as one matrix product (im2col): each receptive field is a row of ``cols``
  (``N·H'·W'`` rows, ``C·HH·WW`` columns), ``out = cols Wᵀ + b``; the backward pass is the
  affine one, folded back onto the image (col2im adds the overlapping fields).
- batchnorm: ``x̂ = (x - μ_B) / sqrt(σ²_B + ε)``, ``y = γ x̂ + β``;
  ``dx = (1/N) / sqrt(σ²_B + ε) · (N dx̂ - Σ dx̂ - x̂ Σ dx̂ x̂)``, ``dx̂ = dy γ``.
- inverted dropout: keep a unit with probability ``p`` and divide it by ``p`` at training
  time, so that test time is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Cache = tuple[Any, ...]


# -- fully connected -----------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """``x`` (N, d_1, ..., d_k) flattened to (N, D); ``w`` (D, M); ``b`` (M,) → (N, M)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    x, w = cache
    x_flat = x.reshape(x.shape[0], -1)  # (N, D)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_flat.T @ dout  # (D, M)
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    return np.maximum(x, 0), (x,)


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (x,) = cache
    return dout * (x > 0)


# -- convolution and pooling ---------------------------------------------------------------


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Spatial output size ``(size + 2 pad - kernel) / stride + 1``; it must be whole."""
    span = size + 2 * pad - kernel
    if span < 0 or span % stride:
        raise ValueError(
            f"kernel {kernel}, stride {stride}, pad {pad} do not tile an input of size {size}"
        )
    return span // stride + 1


def im2col(x: np.ndarray, hh: int, ww: int, stride: int, pad: int) -> np.ndarray:
    """Receptive fields as columns: (C·hh·ww, N·H'·W'), rows ordered (c, i, j) like a
    flattened filter. Filled one kernel offset (i, j) at a time, each a strided slab copy."""
    n, c, h, w = x.shape
    h_out, w_out = out_size(h, hh, stride, pad), out_size(w, ww, stride, pad)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    cols = np.empty((c, hh, ww, n, h_out, w_out), dtype=x.dtype)
    for i in range(hh):
        for j in range(ww):
            cols[:, i, j] = padded[
                :, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride
            ].transpose(1, 0, 2, 3)  # (C, N, H', W')
    return cols.reshape(c * hh * ww, n * h_out * w_out)


def col2im(
    dcols: np.ndarray, x_shape: tuple[int, ...], hh: int, ww: int, stride: int, pad: int
) -> np.ndarray:
    """The adjoint of :func:`im2col`: columns (C·hh·ww, N·H'·W') added back onto the
    fields they were read from, (N, C, H, W)."""
    n, c, h, w = x_shape
    h_out, w_out = out_size(h, hh, stride, pad), out_size(w, ww, stride, pad)
    by_offset = dcols.reshape(c, hh, ww, n, h_out, w_out)
    dpad = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(hh):
        for j in range(ww):
            dpad[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride] += (
                by_offset[:, i, j].transpose(1, 0, 2, 3)
            )
    return dpad[:, :, pad : pad + h, pad : pad + w]


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Cache]:
    """``x`` (N, C, H, W), filters ``w`` (F, C, HH, WW), ``b`` (F,) → (N, F, H', W')."""
    n, _, h, wid = x.shape
    f, _, hh, ww = w.shape
    h_out, w_out = out_size(h, hh, stride, pad), out_size(wid, ww, stride, pad)
    cols = im2col(x, hh, ww, stride, pad)  # (C·HH·WW, N·H'·W')
    out = w.reshape(f, -1) @ cols + b[:, None]  # (F, N·H'·W')
    out = out.reshape(f, n, h_out, w_out).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x.shape, cols, w, stride, pad)


def conv_backward(dout: np.ndarray, cache: Cache, *, input_grad: bool = True) -> tuple:
    """(dx, dw, db); ``input_grad=False`` skips dx (None), which a first layer never uses."""
    x_shape, cols, w, stride, pad = cache
    f, _, hh, ww = w.shape
    dout_mat = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N·H'·W')
    dw = (dout_mat @ cols.T).reshape(w.shape)
    db = dout_mat.sum(axis=1)
    if not input_grad:
        return None, dw, db
    dcols = w.reshape(f, -1).T @ dout_mat  # (C·HH·WW, N·H'·W')
    return col2im(dcols, x_shape, hh, ww, stride, pad), dw, db


def pool_offsets(
    x_shape: tuple[int, ...], ph: int, pw: int, stride: int
) -> list[tuple[slice, slice]]:
    """For each offset (i, j) inside a window, the strided slices that pick element (i, j)
    of every window: ``x[:, :, *offsets[k]]`` is (N, C, H', W')."""
    h_out = out_size(x_shape[2], ph, stride, 0)
    w_out = out_size(x_shape[3], pw, stride, 0)
    return [
        (slice(i, i + stride * h_out, stride), slice(j, j + stride * w_out, stride))
        for i in range(ph)
        for j in range(pw)
    ]


def max_pool_forward(
    x: np.ndarray, *, pool_height: int = 2, pool_width: int = 2, stride: int = 2
) -> tuple[np.ndarray, Cache]:
    """Max over each (pool_height, pool_width) window: (N, C, H, W) → (N, C, H', W').
    A running maximum over the window offsets, each a strided view of every window; ties
    go to the first offset (row-major), as ``argmax``."""
    offsets = pool_offsets(x.shape, pool_height, pool_width, stride)
    out = x[(slice(None), slice(None), *offsets[0])].copy()
    arg = np.zeros(out.shape, dtype=np.int8 if len(offsets) < 128 else np.int64)
    for k, (rows, cols) in enumerate(offsets[1:], start=1):
        candidate = x[:, :, rows, cols]
        better = candidate > out
        np.copyto(out, candidate, where=better)
        arg[better] = k
    return out, (x.shape, arg, offsets)


def max_pool_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """The gradient flows only to each window's maximum."""
    x_shape, arg, offsets = cache
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for k, (rows, cols) in enumerate(offsets):
        dx[:, :, rows, cols] += dout * (arg == k)
    return dx


# -- batch normalization and dropout ---------------------------------------------------------


@dataclass
class BatchNormState:
    """Running averages for test time, updated in place by training-mode forward passes:
    ``running = momentum · running + (1 - momentum) · batch statistic`` (the course's
    convention; PyTorch's ``momentum`` is ``1 -`` this one, and it keeps the unbiased
    variance)."""

    running_mean: np.ndarray
    running_var: np.ndarray
    momentum: float = 0.9
    eps: float = 1e-5

    @classmethod
    def zeros(cls, d: int, *, dtype: Any = np.float64, **kwargs: float) -> BatchNormState:
        return cls(np.zeros(d, dtype=dtype), np.zeros(d, dtype=dtype), **kwargs)


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, state: BatchNormState, *, train: bool
) -> tuple[np.ndarray, Cache]:
    """``x`` (N, D): normalize each feature by the batch's statistics (training) or by the
    running averages (test), then scale by ``gamma`` and shift by ``beta``."""
    if train:
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        state.running_mean[...] = state.momentum * state.running_mean + (1 - state.momentum) * mu
        state.running_var[...] = state.momentum * state.running_var + (1 - state.momentum) * var
    else:
        mu, var = state.running_mean, state.running_var
    inv_std = 1.0 / np.sqrt(var + state.eps)
    x_hat = (x - mu) * inv_std
    return gamma * x_hat + beta, (x_hat, gamma, inv_std, train)


def batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """The simplified closed form (batch statistics depend on every row of ``x``)."""
    x_hat, gamma, inv_std, train = cache
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx_hat = dout * gamma
    if not train:  # fixed statistics: an elementwise affine map
        return dx_hat * inv_std, dgamma, dbeta
    n = dout.shape[0]
    dx = (inv_std / n) * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, state: BatchNormState, *, train: bool
) -> tuple[np.ndarray, Cache]:
    """Batchnorm of (N, C, H, W) with statistics per channel over (N, H, W)."""
    n, c, h, w = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(-1, c)  # (N·H·W, C)
    out, cache = batchnorm_forward(rows, gamma, beta, state, train=train)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    n, c, h, w = dout.shape
    drows = dout.transpose(0, 2, 3, 1).reshape(-1, c)
    dx, dgamma, dbeta = batchnorm_backward(drows, cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def dropout_forward(
    x: np.ndarray, *, p: float, train: bool, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, Cache]:
    """Inverted dropout with keep probability ``p`` (the course's convention; PyTorch's ``p``
    is the drop probability ``1 - p``)."""
    if not 0 < p <= 1:
        raise ValueError(f"keep probability p must be in (0, 1], got {p}")
    if not train:
        return x, (None,)
    if rng is None:
        raise ValueError("training-mode dropout needs a random generator")
    mask = ((rng.random(x.shape) < p) / p).astype(x.dtype)
    return x * mask, (mask,)


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (mask,) = cache
    return dout if mask is None else dout * mask


# -- losses ----------------------------------------------------------------------------------


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy ``-log softmax(s)_y`` over the batch, and its gradient.
    ``scores`` (N, C), ``y`` (N,) integer labels."""
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)  # for numerical stability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()  # a NumPy scalar of the scores' precision
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return loss, dscores / n


def svm_loss(scores: np.ndarray, y: np.ndarray, delta: float = 1.0) -> tuple[float, np.ndarray]:
    """Multiclass hinge loss ``Σ_{j≠y} max(0, s_j - s_y + Δ)``, mean over the batch."""
    n = scores.shape[0]
    margins = np.maximum(0, scores - scores[np.arange(n), y][:, None] + delta)  # (N, C)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    dscores = (margins > 0).astype(scores.dtype)
    dscores[np.arange(n), y] = -dscores.sum(axis=1)
    return loss, dscores / n


# -- "sandwich" layers ------------------------------------------------------------------------


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def conv_relu_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, pad: int, pool: int = 2
) -> tuple[np.ndarray, Cache]:
    """conv (stride 1) → ReLU → ``pool``×``pool`` max-pool of stride ``pool``."""
    a, conv_cache = conv_forward(x, w, b, stride=1, pad=pad)
    r, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(r, pool_height=pool, pool_width=pool, stride=pool)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: Cache, *, input_grad: bool = True) -> tuple:
    conv_cache, relu_cache, pool_cache = cache
    dr = max_pool_backward(dout, pool_cache)
    return conv_backward(relu_backward(dr, relu_cache), conv_cache, input_grad=input_grad)
